#!/usr/bin/env python
"""Predict with a saved audiolang classifier: a label, every class's score and the transcript read, per clip, for a
dataset split or a folder of audio files, to JSON lines or CSV.

Built on the ``audio-text-classification`` pipeline: clips are transcribed by the recogniser the model folder records
(the one that made its training transcripts; ``--asr`` overrides it), or read with a dataset's ``--text_column``.

    python run_scripts/run_predict.py --model_name_or_path out/dsclap-intent --dataset_path out/corpus \
        --split test --output_file out/predictions.jsonl
    python run_scripts/run_predict.py --model_name_or_path out/dsclap-intent --audio_dir recordings/ \
        --output_file out/predictions.csv
    # one shard per process (torchrun sets RANK/WORLD_SIZE; shard 0 waits for the others, then merges):
    torchrun --nproc_per_node 4 run_scripts/run_predict.py ... --output_file out/predictions.jsonl
    # or by hand, e.g. one shard per machine, then the merge:
    python run_scripts/run_predict.py ... --shard_index 1 --num_shards 8
    python run_scripts/run_predict.py --output_file out/predictions.jsonl --num_shards 8 --merge_only

Shards (contiguous rows) are written to ``<output_file>.shards/`` only once complete and skipped on a re-run, as in
``run_transcribe.py``; the merge writes ``--output_file`` in row order and removes them. An existing
``--output_file`` is refused unless ``--overwrite_output_file``. Each record holds ``id`` (the row's index in the
split, or the file's path), ``label``, ``score``, ``scores`` (CSV: a ``score_<label>`` column per class) and
``transcript``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from datasets import DatasetDict
from transformers import HfArgumentParser, pipeline

from audiolang.pipelines import TASK, AudioTextClassificationPipeline
from audiolang.pipelines.prediction import (
    audio_files,
    dataset_inputs,
    merge_predictions,
    output_format,
    predict_shard,
    shard_rows,
)
from audiolang.training import (
    DatasetArguments,
    ShardArguments,
    cast_audio_column,
    configure_logging,
    data_folder,
    load_raw_splits,
    ready_to_merge,
)

logger = logging.getLogger("run_predict")


@dataclass
class PredictArguments:
    output_file: str = field(metadata={"help": "Where the predictions go: a .jsonl or .csv file."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A fine-tuned classifier folder (or hub id)."}
    )
    audio_dir: str | None = field(
        default=None, metadata={"help": "Predict every audio file under this folder (instead of a dataset)."}
    )
    split: str = field(default="test", metadata={"help": "The dataset split to predict."})
    text_column_name: str | None = field(
        default=None,
        metadata={
            "help": "A dataset column of transcripts to read (default: the recogniser transcribes the clips).",
            "aliases": ["--text_column"],
        },
    )
    asr: str | None = field(
        default=None,
        metadata={"help": "An audiolang.load_asr spec overriding the recogniser the model folder records."},
    )
    batch_size: int = field(default=8, metadata={"help": "Clips per forward pass (and per recogniser call)."})
    device: str | None = field(
        default=None, metadata={"help": "e.g. cpu, cuda:0 (default: the first GPU, or CPU)."}
    )
    overwrite_output_file: bool = field(
        default=False, metadata={"help": "Write over an existing --output_file."}
    )


def main(argv: list[str] | None = None) -> Path | None:
    args, data_args, shards = HfArgumentParser(
        (PredictArguments, DatasetArguments, ShardArguments)
    ).parse_args_into_dataclasses(args=argv)
    configure_logging()
    output_file = Path(args.output_file)
    output_format(output_file)  # a bad name fails before any work
    work_dir = output_file.with_name(f"{output_file.name}.shards")
    if output_file.exists() and not args.overwrite_output_file:
        raise ValueError(
            f"--output_file {str(output_file)!r} exists: choose another file, or pass --overwrite_output_file."
        )
    if not shards.merge_only:
        if args.model_name_or_path is None:
            raise ValueError("--model_name_or_path is required unless --merge_only")
        # This package's pipeline class, rather than the copy a fine-tuned folder carries for `trust_remote_code`.
        classifier = pipeline(
            TASK,
            model=args.model_name_or_path,
            pipeline_class=AudioTextClassificationPipeline,
            device=args.device,
            asr=args.asr,
        )
        inputs, ids = shard_inputs(
            args, data_args, classifier.sampling_rate, shards.shard_index, shards.num_shards
        )
        predict_shard(
            classifier, inputs, ids, work_dir, shards.shard_index, shards.num_shards, args.batch_size
        )
        if not ready_to_merge(work_dir, shards):
            return None
    merged = merge_predictions(work_dir, shards.num_shards, output_file)
    shutil.rmtree(work_dir)
    logger.info("predictions written to %s", merged)
    return merged


def shard_inputs(
    args: PredictArguments, data_args: DatasetArguments, sampling_rate: int, shard_index: int, num_shards: int
) -> tuple:
    """This shard's pipeline inputs and their ids (file paths, or the rows' indices in the split)."""
    if args.audio_dir is not None:
        if data_args.dataset_path or data_args.dataset_name or data_args.data_files or args.text_column_name:
            raise ValueError(
                "--audio_dir predicts files: drop --dataset_path / --dataset_name / --data_files / --text_column_name"
            )
        files = audio_files(args.audio_dir)
        rows = shard_rows(len(files), num_shards, shard_index)
        return [str(files[i]) for i in rows], [str(files[i]) for i in rows]
    data = load_raw_splits(data_args)
    if args.split not in data:
        raise ValueError(f"--split {args.split!r} is not in the dataset, which has {sorted(data)}")
    rows = shard_rows(data[args.split].num_rows, num_shards, shard_index)
    shard = DatasetDict({args.split: data[args.split].select(rows)})
    shard = cast_audio_column(shard, data_args.audio_column_name, sampling_rate, data_folder(data_args))
    return dataset_inputs(
        shard[args.split], sampling_rate, data_args.audio_column_name, args.text_column_name
    ), list(rows)


if __name__ == "__main__":
    main()
