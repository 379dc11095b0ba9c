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

Shards (contiguous rows) are written to ``<output_file>.shards/`` only once complete, each with the fingerprint of
what made it (model, data, arguments), and skipped on a re-run of the same command, as in ``run_transcribe.py``; a
shard of another run is refused (``--overwrite_output_file`` predicts it again), and so is a merge of shards that
do not match. The merge writes ``--output_file`` in row order and removes them. An existing ``--output_file`` is
refused unless ``--overwrite_output_file``. A folder whose classification head was not trained (a pre-trained model)
is refused: fine-tune it first. Every clip is checked before any is predicted (``--bad_audio error|skip``, as in
training), each bad one named by its row or file; truncated files are named in a warning. Each record holds ``id`` (the row's index in the
split, or the file's path), ``label``, ``score``, ``scores`` (CSV: a ``score_<label>`` column per class) and
``transcript``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import Audio, Dataset, DatasetDict
from transformers import AutoModelForSequenceClassification, AutoProcessor, HfArgumentParser, pipeline

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
    BAD_AUDIO_CHOICES,
    ROW_INDEX_COLUMN,
    DatasetArguments,
    ShardArguments,
    add_row_index,
    cast_audio_column,
    check_audio,
    configure_logging,
    data_fingerprint,
    data_folder,
    load_raw_splits,
    min_audio_samples,
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
        default=False,
        metadata={
            "help": "Write over an existing --output_file, and predict again shards made by another run."
        },
    )
    bad_audio: str = field(
        default="error",
        metadata={
            "help": "clips that fail to decode or are empty, silent or too short: 'error' lists them all and stops "
            "before predicting, 'skip' leaves them out of the predictions and logs how many",
            "choices": BAD_AUDIO_CHOICES,
        },
    )

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be >= 1 (clips per forward pass), got {self.batch_size}.")


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
    fingerprint = None
    if not shards.merge_only:
        if args.model_name_or_path is None:
            raise ValueError("--model_name_or_path is required unless --merge_only")
        model = load_trained_classifier(args.model_name_or_path)
        # This package's pipeline class, rather than the copy a fine-tuned folder carries for `trust_remote_code`.
        classifier = pipeline(
            TASK,
            model=model,
            processor=AutoProcessor.from_pretrained(args.model_name_or_path),
            pipeline_class=AudioTextClassificationPipeline,
            device=args.device,
            asr=args.asr,
        )
        inputs, ids = shard_inputs(args, data_args, classifier, shards.shard_index, shards.num_shards)
        fingerprint = prediction_fingerprint(args, data_args, shards.num_shards)
        predict_shard(
            classifier,
            inputs,
            ids,
            work_dir,
            shards.shard_index,
            shards.num_shards,
            args.batch_size,
            fingerprint=fingerprint,
            overwrite=args.overwrite_output_file,
        )
        if not ready_to_merge(work_dir, shards):
            return None
    merged = merge_predictions(work_dir, shards.num_shards, output_file, fingerprint)
    shutil.rmtree(work_dir)
    logger.info("predictions written to %s", merged)
    return merged


# The names transformers gives classes that nobody named (`PreTrainedConfig.id2label`'s default).
_UNNAMED_LABEL = re.compile(r"LABEL_\d+")


def load_trained_classifier(model_name_or_path: str):
    """The folder's sequence classifier, refused when its head was not trained: weights missing from the folder
    (a pre-trained model, whose classifier would be random) or classes without names."""
    model, info = AutoModelForSequenceClassification.from_pretrained(
        model_name_or_path, output_loading_info=True
    )
    fix = (
        f"fine-tune it first (python run_scripts/run_finetune.py --model_name_or_path {model_name_or_path} "
        "--output_dir <folder> ...) and predict with the fine-tuned folder."
    )
    if info["missing_keys"]:
        missing = sorted(info["missing_keys"])
        raise ValueError(
            f"{model_name_or_path!r} has no trained classification head (its weights lack {', '.join(missing[:4])}"
            f"{', ...' if len(missing) > 4 else ''}: a pre-trained model, whose classifier would be random): {fix}"
        )
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if model.config.problem_type != "regression" and all(_UNNAMED_LABEL.fullmatch(str(x)) for x in labels):
        raise ValueError(f"{model_name_or_path!r} names none of its classes (id2label is {labels}): {fix}")
    return model


def prediction_fingerprint(args: PredictArguments, data_args: DatasetArguments, num_shards: int) -> dict:
    """What makes a shard's predictions: the model (its folder, config and weight files), the data and the
    arguments. Shards of different fingerprints are never merged."""
    folder = Path(args.model_name_or_path)
    weights = sorted(
        [f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in folder.glob("*.safetensors") if f.is_file()
    )
    config = (folder / "config.json").read_bytes() if (folder / "config.json").is_file() else b""
    model = hashlib.sha256(json.dumps([weights, config.decode()], default=str).encode()).hexdigest()[:16]
    data = (
        {"audio_dir": str(Path(args.audio_dir).resolve())}
        if args.audio_dir is not None
        else {"dataset": data_fingerprint(data_args), "audio_column_name": data_args.audio_column_name}
    )
    arguments = {
        k: v for k, v in asdict(args).items() if k in ("split", "text_column_name", "asr", "bad_audio")
    }
    return {
        "--model_name_or_path": args.model_name_or_path,
        "model": model,
        **{f"--{k}": v for k, v in {**data, **arguments}.items()},
        "--num_shards": num_shards,
    }


def shard_inputs(
    args: PredictArguments,
    data_args: DatasetArguments,
    classifier: AudioTextClassificationPipeline,
    shard_index: int,
    num_shards: int,
) -> tuple:
    """This shard's pipeline inputs and their ids (file paths, or the rows' indices in the split), every clip checked
    first (`check_audio`, as training does: `--bad_audio`)."""
    sampling_rate = classifier.sampling_rate
    check = {
        "audio_column": data_args.audio_column_name,
        "sampling_rate": sampling_rate,
        "min_samples": min_audio_samples(
            classifier.feature_extractor, getattr(classifier.model, "audio_model", None)
        ),
        "bad_audio": args.bad_audio,
    }
    if args.audio_dir is not None:
        if data_args.dataset_path or data_args.dataset_name or data_args.data_files or args.text_column_name:
            raise ValueError(
                "--audio_dir predicts files: drop --dataset_path / --dataset_name / --data_files / --text_column_name"
            )
        files = audio_files(args.audio_dir)
        rows = shard_rows(len(files), num_shards, shard_index)
        column = data_args.audio_column_name
        clips = Dataset.from_dict({column: [str(files[i]) for i in rows]}).cast_column(
            column, Audio(sampling_rate=sampling_rate)
        )
        kept = check_audio({"--audio_dir": clips}, **check)["--audio_dir"]
        paths = [value["path"] for value in kept.cast_column(column, Audio(decode=False))[column]]
        return paths, paths
    data = load_raw_splits(data_args)
    if args.split not in data:
        raise ValueError(f"--split {args.split!r} is not in the dataset, which has {sorted(data)}")
    rows = shard_rows(data[args.split].num_rows, num_shards, shard_index)
    # Row indices of the whole split: errors and ids name the rows as the user has them, whatever the shard.
    shard = DatasetDict({args.split: add_row_index(data[args.split]).select(rows)})
    shard = cast_audio_column(shard, data_args.audio_column_name, sampling_rate, data_folder(data_args))
    kept = check_audio(shard, **check)[args.split]
    inputs = dataset_inputs(kept, sampling_rate, data_args.audio_column_name, args.text_column_name)
    return inputs, kept[ROW_INDEX_COLUMN]


if __name__ == "__main__":
    main()
