#!/usr/bin/env python
"""Which speech recogniser should a fine-tuned classifier's pipeline run? Raw audio -> label through
`pipeline("audio-text-classification")` on a labelled split, once per recogniser, against the split's own transcripts.

For each split and each `--recognisers` spec (an `audiolang.load_asr` spec, passed to the pipeline per call as
`asr=`), the pipeline classifies every clip of the split from its audio alone, and one record gives:

- `accuracy`: the share of clips whose predicted label (the model's `id2label` name) is the split's label
  (`--label_column_name`: a `ClassLabel` column is read by its names, a string column as it is, an integer column through
  the model's `id2label`; rows labelled -1 or None, e.g. non-directed speech for `intent`, are dropped first);
- `clips_per_second`, `real_time_factor` (wall seconds per second of audio), `seconds`: the whole split after one
  unmeasured warm-up batch (which loads the recogniser: `warmup_seconds`); clips are decoded before timing;
- `wer`: the recogniser's word error rate against the split's manual transcripts (`--reference_text_column`), when
  the split has them.

`pocketsphinx` decodes with the domain language model the model folder records (its training or inference
recogniser), else the one the corpus records (`asr_lm/`), else pocketsphinx's general English model: `asr_kwargs_from`
says which. A record per `--transcript_columns` column that the split has (`recogniser="transcripts:<column>"`) gives
the accuracy with the split's own transcripts given (`transcript=`): for the corpus' `asr_text`, the transcripts the
model was fine-tuned on; for `text`, the manual ones.

Records are printed as JSON lines and appended to `--output_file` (default
`benchmarks/results/bench_recognisers.jsonl`), each with the git commit (and whether the working tree had changes).

    python benchmarks/bench_recognisers.py --model_name_or_path out/finetune/intent-pretrained \\
        --dataset_path out/corpus-default-seed0 --label_column_name intent --max_samples 100
    python benchmarks/bench_recognisers.py ... --splits test test_natural --recognisers pocketsphinx whisper-tiny.en
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS  # noqa: E402

from audiolang.data.asr import audio_to_array  # noqa: E402
from audiolang.metrics.asr import word_error_rate  # noqa: E402
from audiolang.pipelines import (  # noqa: E402
    TASK,
    AudioTextClassificationPipeline,
    corpus_asr,
    saved_asr_config,
    saved_inference_asr_config,
)

NAME = "bench_recognisers"
DEFAULT_RECOGNISERS = ("pocketsphinx", "whisper-tiny.en", "whisper-base")
REPOSITORY = Path(__file__).resolve().parent.parent


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_name_or_path", required=True, help="a fine-tuned classifier folder")
    parser.add_argument(
        "--dataset_path",
        type=Path,
        required=True,
        help="a `save_to_disk` folder of splits (e.g. a corpus written by run_build_corpus.py)",
    )
    parser.add_argument(
        "--split", "--splits", dest="splits", nargs="+", default=["test"], help="the split(s) to classify"
    )
    parser.add_argument("--label_column_name", default="intent")
    parser.add_argument("--audio_column_name", default="audio")
    parser.add_argument(
        "--recognisers",
        nargs="*",
        default=list(DEFAULT_RECOGNISERS),
        help="audiolang.load_asr specs, each run as the pipeline's asr=",
    )
    parser.add_argument(
        "--transcript_columns",
        nargs="*",
        default=["asr_text", "text"],
        help="columns of transcripts to classify with as references (those the split lacks are skipped)",
    )
    parser.add_argument(
        "--reference_text_column",
        default="text",
        help="the manual transcripts the recognisers' WER is measured against (skipped when absent)",
    )
    parser.add_argument(
        "--max_samples",
        type=int,
        default=None,
        help="a seeded sample of N labelled rows per split (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the seed of the --max_samples sample")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output_file", type=Path, default=RESULTS / f"{NAME}.jsonl")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.max_samples is not None and args.max_samples < 1:
        parser.error(f"--max_samples must be >= 1, got {args.max_samples}")
    return args


def git_commit() -> dict[str, Any]:
    """The commit the benchmark ran at, and whether the working tree differed from it."""

    def git(*command: str) -> str:
        result = subprocess.run(
            ["git", *command], cwd=REPOSITORY, capture_output=True, text=True, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {"commit": commit or None, "dirty": bool(git("status", "--porcelain")) if commit else None}


def load_splits(path: Path) -> Any:
    """The dataset's splits: an audiolang corpus through `load_corpus` (which checks it is complete and undamaged),
    any other `save_to_disk` folder through `load_from_disk`."""
    from datasets import DatasetDict, load_from_disk

    from audiolang.data import load_corpus
    from audiolang.data.corpus import MARKER

    data = load_corpus(path) if (path / MARKER).is_file() else load_from_disk(str(path))
    if not isinstance(data, DatasetDict):
        raise ValueError(f"{str(path)!r} holds a single split; save a DatasetDict (splits by name).")
    return data


def label_names(split: Any, column: str, id2label: dict[int, str]) -> list[str | None]:
    """Each row's label as a name the model can predict; None for an unlabelled row (-1 or None)."""
    from datasets import ClassLabel

    feature = split.features[column]
    names: list[str | None] = []
    for value in split[column]:
        if value is None or (isinstance(value, int) and value < 0):
            names.append(None)
        elif isinstance(feature, ClassLabel):
            names.append(feature.int2str(value))
        elif isinstance(value, str):
            names.append(value)
        elif int(value) in id2label:
            names.append(id2label[int(value)])
        else:
            raise ValueError(
                f"label {value!r} of --label_column_name {column!r} is not one of the model's ids {sorted(id2label)}."
            )
    return names


def prepare_split(
    data: Any, name: str, args: argparse.Namespace, id2label: dict[int, str], rate: int
) -> dict:
    """The split's labelled rows (a seeded sample of `--max_samples`), decoded at the model's rate."""
    from datasets import Audio

    split = data[name]
    for column in (args.audio_column_name, args.label_column_name):
        if column not in split.column_names:
            raise ValueError(f"split {name!r} has no column {column!r}; it has {split.column_names}.")
    labels = label_names(split, args.label_column_name, id2label)
    keep = [i for i, label in enumerate(labels) if label is not None]
    if not keep:
        raise ValueError(f"split {name!r} has no labelled row in {args.label_column_name!r}.")
    unknown = sorted({labels[i] for i in keep} - set(id2label.values()))
    if unknown:
        raise ValueError(
            f"split {name!r} has label(s) {unknown} that the model does not know (its labels: "
            f"{sorted(id2label.values())}): is --label_column_name {args.label_column_name!r} the column it was "
            "fine-tuned on?"
        )
    split = split.select(keep)
    labels = [labels[i] for i in keep]
    if args.max_samples is not None and split.num_rows > args.max_samples:
        positions = np.random.default_rng(args.seed).permutation(split.num_rows)[: args.max_samples].tolist()
        split = split.select(positions)
        labels = [labels[i] for i in positions]
    if isinstance(split.features[args.audio_column_name], Audio):
        split = split.cast_column(args.audio_column_name, Audio(sampling_rate=rate))
    clips = []
    for value in split[args.audio_column_name]:
        samples, sampling_rate = audio_to_array(value)
        clips.append({"raw": samples, "sampling_rate": sampling_rate})
    columns = split.column_names
    return {
        "clips": clips,
        "labels": labels,
        "audio_seconds": sum(clip["raw"].size / clip["sampling_rate"] for clip in clips),
        "transcripts": {c: split[c] for c in args.transcript_columns if c in columns},
        "references": split[args.reference_text_column] if args.reference_text_column in columns else None,
    }


def recogniser_kwargs(spec: str, model: str, dataset_path: Path) -> tuple[dict[str, Any], str]:
    """`load_asr` keyword arguments for `spec`, and where they come from: pocketsphinx takes the domain language
    model of the model folder's records, else of the corpus; other recognisers take none."""
    if spec != "pocketsphinx":
        return {}, "none"
    for source, record in (
        ("model folder (training recogniser)", saved_asr_config(model)),
        ("model folder (inference recogniser)", saved_inference_asr_config(model)),
        ("corpus", corpus_asr(dataset_path)),
    ):
        if record is not None and record[0] == "pocketsphinx" and record[1].get("lm_path"):
            return record[1], source
    return {}, "pocketsphinx's general English model"


def timed_run(
    classifier: AudioTextClassificationPipeline, clips: list, batch_size: int, **call: Any
) -> tuple:
    """`(results, warm-up seconds, seconds)`: one unmeasured batch (loads the recogniser), then every clip."""
    warm = {k: v[:batch_size] if k == "transcript" else v for k, v in call.items()}
    start = time.perf_counter()
    classifier(clips[:batch_size], batch_size=batch_size, **warm)
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    results = classifier(clips, batch_size=batch_size, **call)
    return results, warmup, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    data = load_splits(args.dataset_path)
    missing = [name for name in args.splits if name not in data]
    if missing:
        raise ValueError(f"split(s) {missing} not in {str(args.dataset_path)!r}, which has {sorted(data)}.")
    classifier = pipeline(
        TASK,
        model=args.model_name_or_path,
        pipeline_class=AudioTextClassificationPipeline,
        device=args.device,
    )
    id2label = {int(i): name for i, name in classifier.model.config.id2label.items()}
    context = {
        "benchmark": NAME,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **git_commit(),
        "model": args.model_name_or_path,
        "architecture": type(classifier.model).__name__,
        "dataset": str(args.dataset_path),
        "label_column": args.label_column_name,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "device": args.device,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    args.output_file.parent.mkdir(parents=True, exist_ok=True)
    records = []

    def record(**fields: Any) -> None:
        line = {**context, **fields}
        print(json.dumps(line), flush=True)
        with args.output_file.open("a") as f:
            f.write(json.dumps(line) + "\n")
        records.append(line)

    for split_name in args.splits:
        split = prepare_split(data, split_name, args, id2label, classifier.sampling_rate)
        clips, labels, audio_seconds = split["clips"], split["labels"], split["audio_seconds"]
        runs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        for spec in args.recognisers:
            kwargs, source = recogniser_kwargs(spec, args.model_name_or_path, args.dataset_path)
            runs.append((spec, {"asr": (spec, kwargs)}, {"asr_kwargs_from": source}))
        for column, texts in split["transcripts"].items():
            runs.append((f"transcripts:{column}", {"transcript": texts}, {}))
        for name, call, extra in runs:
            results, warmup, seconds = timed_run(classifier, clips, args.batch_size, **call)
            correct = sum(r["label"] == label for r, label in zip(results, labels, strict=True))
            if "asr" in call and split["references"] is not None:
                heard = [result["transcript"] for result in results]
                extra["wer"] = round(word_error_rate(split["references"], heard), 4)
            record(
                split=split_name,
                recogniser=name,
                clips=len(clips),
                audio_seconds=round(audio_seconds, 1),
                accuracy=round(correct / len(clips), 4),
                correct=correct,
                clips_per_second=round(len(clips) / seconds, 2),
                real_time_factor=round(seconds / audio_seconds, 4),
                seconds=round(seconds, 2),
                warmup_seconds=round(warmup, 2),
                **extra,
            )
    return records


if __name__ == "__main__":
    main()
