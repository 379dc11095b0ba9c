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

if TYPE_CHECKING:
    from datasets import Dataset

    from .audio_text_classification import AudioTextClassificationPipeline

logger = logging.getLogger(__name__)

# What `audio_files` collects: the containers that soundfile (libsndfile >= 1.1), the pipeline's decoder, reads.
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif")
OUTPUT_FORMATS = ("jsonl", "csv")
_SHARD_FILE = "predictions.jsonl"


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """The audio files under `folder` (recursively, `AUDIO_EXTENSIONS`), in sorted order."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--audio_dir {str(root)!r} is not a folder.")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
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
) -> Path:
    """Write the predictions of one shard (`inputs` and `ids` are that shard's rows) to
    `shard_dir(work_dir, shard_index, num_shards)`, renamed into place once complete; a finished shard is skipped.
    Returns the shard's folder."""
    final = shard_dir(work_dir, shard_index, num_shards)
    if final.is_dir():
        logger.info("shard %d of %d is already in %s: skipping it", shard_index, num_shards, final)
        return final
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    records = predict(pipe, inputs, ids, batch_size, desc=f"shard {shard_index + 1}/{num_shards}")
    with open(tmp / _SHARD_FILE, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, final)
    return final


def merge_predictions(work_dir: str | os.PathLike, num_shards: int, output_file: str | os.PathLike) -> Path:
    """Join the finished shards, in order, into `output_file` (JSON lines, or CSV for a `.csv` name: one `score_<label>`
    column per class) and return its path. Raises ValueError naming the shards that are not finished."""
    missing = missing_shards(work_dir, num_shards)
    if missing:
        raise ValueError(
            f"{len(missing)} of {num_shards} shards are not finished (indices {missing}): predict them first."
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
