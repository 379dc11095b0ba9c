"""Predictions of an `audio-text-classification` pipeline for a dataset split or a folder of audio files, written to
JSON lines or CSV; shardable across processes and resumable (`run_scripts/run_predict.py` is the front end).

Shard `i` of `n` (contiguous rows, as `Dataset.shard(n, i, contiguous=True)` cuts them) is written as JSON lines to
`shard_dir(work_dir, i, n)/predictions.jsonl` (the folder layout of `run_transcribe.py`) only once complete, so a
re-run skips finished shards; `merge_predictions` joins them, in row order, into the output file.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from ..data.asr import missing_shards, shard_dir
from ..training.lifecycle import describe_differences

if TYPE_CHECKING:
    from datasets import Dataset

    from .audio_text_classification import AudioTextClassificationPipeline

logger = logging.getLogger(__name__)

# What `audio_files` collects: every container the pipeline's `load_audio_file` reads, through soundfile (libsndfile
# >= 1.1) or, for what browsers and phones record, torchcodec (ffmpeg).
AUDIO_EXTENSIONS = (
    ".wav",
    ".flac",
    ".mp3",
    ".ogg",
    ".opus",
    ".aiff",
    ".aif",
    ".m4a",
    ".mp4",
    ".aac",
    ".webm",
)
OUTPUT_FORMATS = ("jsonl", "csv")
_SHARD_FILE = "predictions.jsonl"
# Beside each shard's predictions: what made them (model, data, arguments), so that shards of another run are not
# skipped as done nor merged with this run's.
_SHARD_FINGERPRINT = "fingerprint.json"


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """The audio files under `folder` (recursively, `AUDIO_EXTENSIONS`), in sorted order."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--audio_dir {str(root)!r} is not a folder.")
    found = sorted(p for p in root.rglob("*") if p.is_file())
    files = [p for p in found if p.suffix.lower() in AUDIO_EXTENSIONS]
    if left_out := [p for p in found if p.suffix.lower() not in AUDIO_EXTENSIONS]:
        logger.warning(
            "--audio_dir: %d file(s) left out, not audio by their extension (%s): %s",
            len(left_out),
            ", ".join(AUDIO_EXTENSIONS),
            ", ".join(str(p) for p in left_out[:10]) + (", ..." if len(left_out) > 10 else ""),
        )
    if not files:
        raise ValueError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {str(root)!r}.")
    return files


def shard_rows(num_rows: int, num_shards: int, shard_index: int) -> range:
    """The contiguous rows of shard `shard_index` of `num_shards`: the first `num_rows % num_shards` shards hold one row
    more, as `datasets.Dataset.shard(num_shards, shard_index, contiguous=True)`."""
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, num_shards={num_shards}), got {shard_index}")
    size, extra = divmod(num_rows, num_shards)
    start = shard_index * size + min(shard_index, extra)
    return range(start, start + size + (shard_index < extra))


def dataset_inputs(
    dataset: Dataset, sampling_rate: int, audio_column: str = "audio", text_column: str | None = None
) -> Iterator[dict[str, Any]]:
    """The pipeline's inputs for each row of `dataset`, in order: the clip (an `Audio` column is decoded at
    `sampling_rate`) and, with `text_column`, its transcript (otherwise the pipeline's recogniser transcribes it)."""
    from datasets import Audio

    missing = [c for c in (audio_column, text_column) if c is not None and c not in dataset.column_names]
    if missing:
        raise ValueError(f"column(s) {missing} not in the dataset, which has {dataset.column_names}")
    if isinstance(dataset.features[audio_column], Audio):
        dataset = dataset.cast_column(audio_column, Audio(sampling_rate=sampling_rate))
    for row in dataset.select_columns([c for c in (audio_column, text_column) if c is not None]):
        yield {"audio": row[audio_column], "transcript": None if text_column is None else row[text_column]}


def prediction_record(result: dict[str, Any] | list[dict[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """One clip's result of the pipeline called with `top_k=None` as a flat record: the best `label` and its
    `score`, the `scores` of every class (in the model's label order; absent for regression) and the `transcript`."""
    if isinstance(result, dict):  # regression: one value
        return {"label": result["label"], "score": result["score"], "transcript": result["transcript"]}
    scores = {item["label"]: item["score"] for item in result}
    return {
        "label": result[0]["label"],
        "score": result[0]["score"],
        "scores": {label: scores[label] for label in labels},
        "transcript": result[0]["transcript"],
    }


def predict(
    pipe: AudioTextClassificationPipeline,
    inputs: Iterable[Any],
    ids: Sequence[Any],
    batch_size: int = 8,
    desc: str = "predicting",
) -> Iterator[dict[str, Any]]:
    """Run `pipe` over `inputs` (one per id, in order) with a progress bar; yield `{"id": ..., **prediction_record}`."""
    config = pipe.model.config
    labels = [config.id2label[i] for i in range(config.num_labels)]
    results = pipe((item for item in inputs), batch_size=batch_size, top_k=None)
    for id_, result in tqdm(zip(ids, results, strict=True), total=len(ids), desc=desc, unit="clip"):
        yield {"id": id_, **prediction_record(result, labels)}


def predict_shard(
    pipe: AudioTextClassificationPipeline,
    inputs: Iterable[Any],
    ids: Sequence[Any],
    work_dir: str | os.PathLike,
    shard_index: int = 0,
    num_shards: int = 1,
    batch_size: int = 8,
    fingerprint: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the predictions of one shard (`inputs` and `ids` are that shard's rows) to
    `shard_dir(work_dir, shard_index, num_shards)`, renamed into place once complete, with the `fingerprint` of what
    made them (model, data, arguments). A finished shard of the same fingerprint is skipped; one of another is
    refused, or predicted again with `overwrite`. Returns the shard's folder."""
    final = shard_dir(work_dir, shard_index, num_shards)
    if final.is_dir():
        differing = _shard_differences(final, fingerprint)
        if not differing:
            logger.info("shard %d of %d is already in %s: skipping it", shard_index, num_shards, final)
            return final
        if not overwrite:
            raise ValueError(
                f"shard {shard_index} of {num_shards} in {str(final)!r} was made by another run (it differs in "
                f"{', '.join(differing)}): pass --overwrite_output_file to predict it again."
            )
        logger.info(
            "shard %d of %d in %s was made by another run: predicting it again",
            shard_index,
            num_shards,
            final,
        )
        shutil.rmtree(final)
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    records = predict(pipe, inputs, ids, batch_size, desc=f"shard {shard_index + 1}/{num_shards}")
    with open(tmp / _SHARD_FILE, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    (tmp / _SHARD_FINGERPRINT).write_text(json.dumps(fingerprint or {}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, final)
    return final


def _shard_differences(folder: Path, fingerprint: dict[str, Any] | None) -> list[str]:
    """How the run that made a finished shard differs from `fingerprint` (none when no fingerprint is asked for)."""
    if fingerprint is None:
        return []
    recorded = _read_fingerprint(folder)
    if recorded is None:
        return [f"its {_SHARD_FINGERPRINT} (missing or unreadable)"]
    return describe_differences(recorded, fingerprint)


def _read_fingerprint(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / _SHARD_FINGERPRINT).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def merge_predictions(
    work_dir: str | os.PathLike,
    num_shards: int,
    output_file: str | os.PathLike,
    fingerprint: dict[str, Any] | None = None,
) -> Path:
    """Join the finished shards, in order, into `output_file` (JSON lines, or CSV for a `.csv` name: one `score_<label>`
    column per class) and return its path. Raises ValueError naming the shards that are not finished, and those
    made by another run than shard 0 (or than `fingerprint`, when given): their predictions do not belong together."""
    missing = missing_shards(work_dir, num_shards)
    if missing:
        raise ValueError(
            f"{len(missing)} of {num_shards} shards are not finished (indices {missing}): predict them first."
        )
    folders = [shard_dir(work_dir, i, num_shards) for i in range(num_shards)]
    against = "this run" if fingerprint is not None else "shard 0"
    if fingerprint is None:
        fingerprint = _read_fingerprint(folders[0])
    mismatched = [
        f"shard {i}: {', '.join(differing)}"
        for i, folder in enumerate(folders)
        if (differing := _shard_differences(folder, fingerprint))
    ]
    if mismatched:
        raise ValueError(
            f"{len(mismatched)} shard(s) of {str(work_dir)!r} were made by another run than {against} "
            f"({'; '.join(mismatched)}): predict them again with the same model, data and arguments "
            "(--overwrite_output_file), then merge."
        )
    records = (
        json.loads(line)
        for i in range(num_shards)
        for line in (shard_dir(work_dir, i, num_shards) / _SHARD_FILE)
        .read_text(encoding="utf-8")
        .splitlines()
    )
    output = Path(output_file)
    tmp = output.with_name(f".tmp-{output.name}")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        _write_records(records, f, output_format(output))
    os.replace(tmp, output)
    return output


def output_format(path: str | os.PathLike) -> str:
    """`"csv"` for a `.csv` file, `"jsonl"` for `.jsonl` / `.json`."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    raise ValueError(f"--output_file {str(path)!r}: name a .jsonl (JSON lines) or .csv file.")


def _write_records(records: Iterable[dict[str, Any]], f: Any, fmt: str) -> None:
    if fmt == "jsonl":
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    writer = None
    for record in records:
        scores = record.pop("scores", {})
        row = {**record, **{f"score_{label}": score for label, score in scores.items()}}
        if writer is None:
            writer = csv.DictWriter(f, fieldnames=list(row))
            writer.writeheader()
        writer.writerow(row)
