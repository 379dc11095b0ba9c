#!/usr/bin/env python
"""Add an ASR transcript column to a ``datasets`` dataset that has an audio column.

The transcribed dataset is saved in ``--output_dir`` itself (``load_from_disk(output_dir)``), with the language model
in ``output_dir/lm`` when ``--build_lm_from_column`` builds one. Resumable and shardable: shard ``i`` of ``n``
(contiguous rows) is written to ``output_dir/.transcribe/shards/<i>-of-<n>`` only once complete, and a shard whose
folder exists is skipped on a re-run. Once every shard exists, shard 0 (or a run with ``--merge_only``) concatenates
them, in row order, saves the result in ``output_dir`` and removes ``.transcribe``. An ``--output_dir`` that holds
anything else is refused.

    # one process, all cores:
    python run_scripts/run_transcribe.py --dataset_path data/my_set --output_dir out/asr \
        --build_lm_from_column text
    # one shard per process (torchrun sets RANK/WORLD_SIZE; shard 0 waits for the others, then merges):
    torchrun --nproc_per_node 4 run_scripts/run_transcribe.py --dataset_path data/my_set --output_dir out/asr
    # or by hand, e.g. one shard per machine, then the merge:
    python run_scripts/run_transcribe.py ... --shard_index 1 --num_shards 8
    python run_scripts/run_transcribe.py --output_dir out/asr --num_shards 8 --merge_only
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict, load_from_disk
from transformers import HfArgumentParser

from audiolang.data.asr import (
    ASRBackend,
    build_pocketsphinx_lm,
    load_asr,
    merge_shards,
    transcribe_shard,
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

logger = logging.getLogger("run_transcribe")
# Shards and the merge in progress, inside --output_dir; removed once the dataset is saved there.
WORK_DIR = ".transcribe"


@dataclass
class TranscribeArguments:
    output_dir: str = field(
        metadata={"help": "Receives the transcribed dataset (load_from_disk) and, if built, lm/."}
    )
    split: str | None = field(
        default=None,
        metadata={
            "help": "The split to transcribe, for a DatasetDict (with --dataset_name / --data_files: default "
            "--train_split_name)."
        },
    )
    output_column: str = field(default="asr_text", metadata={"help": "The new transcript column."})
    asr: str = field(
        default="pocketsphinx",
        metadata={
            "help": "ASR back-end: 'pocketsphinx', 'whisper-base' / 'whisper-tiny.en' (the packaged Whisper), "
            "'whisper:<transformers Whisper folder>', 'faster-whisper:<CTranslate2 model dir>', or a transformers "
            "ASR model (hub id or local folder)."
        },
    )
    lm_path: str | None = field(default=None, metadata={"help": "pocketsphinx: an ARPA language model."})
    dict_path: str | None = field(
        default=None, metadata={"help": "pocketsphinx: its pronunciation dictionary."}
    )
    build_lm_from_column: str | None = field(
        default=None,
        metadata={
            "help": "pocketsphinx: build a domain LM from this text column of the whole dataset (into "
            "output_dir/lm). An LM that contains the very sentences being recognised flatters the WER: for an "
            "honest error rate, build the LM from other text (build_pocketsphinx_lm) and pass --lm_path."
        },
    )
    batch_size: int = field(default=16, metadata={"help": "Rows per ASR call."})
    num_proc: int | None = field(
        default=None,
        metadata={"help": "Worker processes per shard (default: the cores divided by the shards run here)."},
    )


def load_data_split(data_args: DatasetArguments, split: str | None) -> Dataset:
    """The split to transcribe: from `--dataset_path` (`load_split`), or from any `datasets` source
    (`--dataset_name` / `--data_dir` / `--data_files`), its audio column decoded as `datasets.Audio`."""
    if data_args.dataset_path is not None:
        return load_split(data_args.dataset_path, split)
    if not (data_args.dataset_name or data_args.data_files):
        raise ValueError("--dataset_path, --dataset_name or --data_files is required unless --merge_only")
    data = load_raw_splits(data_args)
    name = split or data_args.train_split_name
    if name not in data:
        raise ValueError(f"--split must name one of the splits of the dataset: {sorted(data)}, got {name!r}")
    # Decoded at its own rate here: transcribe_dataset resamples to the recogniser's.
    feature = data[name].features[data_args.audio_column_name]
    rate = getattr(feature, "sampling_rate", None) or 16_000
    return cast_audio_column(
        DatasetDict({name: data[name]}), data_args.audio_column_name, rate, data_folder(data_args)
    )[name]


def load_split(path: str, split: str | None) -> Dataset:
    """The Dataset at ``path``, or its ``split`` when it is a DatasetDict."""
    dataset = load_from_disk(path)
    if isinstance(dataset, DatasetDict):
        if split not in dataset:
            raise ValueError(
                f"--split must name one of the splits of {path}: {sorted(dataset)}, got {split!r}"
            )
        return dataset[split]
    if split is not None:
        raise ValueError(f"{path} holds a single Dataset, not a DatasetDict: drop --split {split}")
    return dataset


def build_asr(args: TranscribeArguments, dataset: Dataset) -> ASRBackend:
    """The back-end named by --asr, with the pocketsphinx LM options applied."""
    kwargs = {k: v for k, v in (("lm_path", args.lm_path), ("dict_path", args.dict_path)) if v is not None}
    if args.build_lm_from_column is not None:
        if args.asr != "pocketsphinx" or kwargs:
            raise ValueError(
                "--build_lm_from_column applies to --asr pocketsphinx without --lm_path/--dict_path"
            )
        if args.build_lm_from_column not in dataset.column_names:
            raise ValueError(
                f"--build_lm_from_column {args.build_lm_from_column!r} is not a column: {dataset.column_names}"
            )
        lm_path, dict_path = build_pocketsphinx_lm(
            dataset[args.build_lm_from_column], Path(args.output_dir) / "lm"
        )
        kwargs = {"lm_path": str(lm_path), "dict_path": str(dict_path)}
    return load_asr(args.asr, **kwargs)


def check_output_dir(args: TranscribeArguments, data_args: DatasetArguments) -> None:
    """The dataset is saved in --output_dir: refuse one that holds anything but this command's own work."""
    output_dir = Path(args.output_dir)
    if data_args.dataset_path is not None and output_dir.resolve() == Path(data_args.dataset_path).resolve():
        raise ValueError("--output_dir is --dataset_path: the transcribed copy would replace the dataset.")
    if not output_dir.is_dir() or (output_dir / WORK_DIR).is_dir():
        return  # a new folder, or one that an earlier run of this command is still filling
    content = sorted(p.name for p in output_dir.iterdir() if p.name != "lm")
    if content:
        raise ValueError(
            f"--output_dir {str(output_dir)!r} is not empty (it holds {', '.join(content[:5])}): the transcribed "
            "dataset is saved there, so choose a new or empty folder (a finished transcription is loaded with "
            "datasets.load_from_disk)."
        )


def main(argv: list[str] | None = None) -> None:
    args, data_args, shards = HfArgumentParser(
        (TranscribeArguments, DatasetArguments, ShardArguments)
    ).parse_args_into_dataclasses(args=argv)
    configure_logging()
    check_output_dir(args, data_args)
    work_dir = Path(args.output_dir) / WORK_DIR

    if not shards.merge_only:
        dataset = load_data_split(data_args, args.split)
        # Under torchrun every rank runs here at once: share the cores instead of oversubscribing them.
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        num_proc = args.num_proc or max(1, (os.cpu_count() or 1) // local_processes)
        transcribe_shard(
            dataset,
            build_asr(args, dataset),
            work_dir,
            shard_index=shards.shard_index,
            num_shards=shards.num_shards,
            audio_column=data_args.audio_column_name,
            output_column=args.output_column,
            batch_size=args.batch_size,
            num_proc=num_proc if num_proc > 1 else None,
        )
        if not ready_to_merge(work_dir, shards):
            return
    merged = merge_shards(work_dir, shards.num_shards)
    load_from_disk(str(merged)).save_to_disk(args.output_dir)
    shutil.rmtree(work_dir)
    logger.info("transcribed dataset saved in %s", args.output_dir)


if __name__ == "__main__":
    main()
