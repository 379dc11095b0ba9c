"""Reading any `datasets` source for the run scripts (`DatasetArguments`): the Hub or a builder through
`datasets.load_dataset`, a `save_to_disk` folder, or the embedded corpus; the audio column decoded at the model's
rate; and the validation and test splits a one-split dataset lacks, made by a seeded, stratified split."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Audio, Dataset, DatasetDict, Value

from ..data.corpus import MARKER
from .arguments import TASK_TYPES, DatasetArguments
from .data import CORPUS_TASKS, ensure_transcripts, load_splits, prepare_labels

logger = logging.getLogger(__name__)

# The builder `load_dataset` needs for data files given without `--dataset_name`, by extension (as transformers'
# examples infer it).
_BUILDERS = {
    "csv": "csv",
    "tsv": "csv",
    "json": "json",
    "jsonl": "json",
    "parquet": "parquet",
    "arrow": "arrow",
}


def parse_data_files(items: Sequence[str] | None) -> dict[str, list[str]] | None:
    """`--data_files` items as `load_dataset`'s `data_files`: `SPLIT=FILE` items by split, plain `FILE` items in
    'train' (what `load_dataset` does with a bare list)."""
    if not items:
        return None
    files: dict[str, list[str]] = {}
    for item in items:
        split, sep, path = item.partition("=")
        if not sep or not split or os.sep in split:
            split, path = "train", item
        files.setdefault(split, []).append(path)
    return files


def data_folder(args: DatasetArguments) -> Path | None:
    """Where relative audio paths of a table are read from: `--data_dir`, the folder of the first data file, or a
    `--dataset_name` that is a local folder."""
    if args.data_dir:
        return Path(args.data_dir)
    files = parse_data_files(args.data_files)
    if files:
        return Path(next(iter(files.values()))[0]).parent
    if args.dataset_name and Path(args.dataset_name).is_dir():
        return Path(args.dataset_name)
    return None


def data_fingerprint(args: DatasetArguments) -> str:
    """What identifies the data `args` point at, for a run's record (`run_record`): a `save_to_disk` folder by its
    splits' fingerprints and file sizes, data files by name, size and modification time, a Hub dataset by name, the
    embedded corpus by preset and seed. Cheap: nothing is loaded."""
    parts: list = [args.dataset_name, args.dataset_config_name, args.data_dir]
    for split, files in sorted((parse_data_files(args.data_files) or {}).items()):
        for file in files:
            stat = Path(file).stat() if Path(file).is_file() else None
            parts.append([split, file, stat and stat.st_size, stat and stat.st_mtime_ns])
    if args.dataset_path:
        folder = Path(args.dataset_path)
        for file in sorted(folder.rglob("*")):
            if file.name == "state.json":
                parts.append(
                    [str(file.relative_to(folder)), json.loads(file.read_text()).get("_fingerprint")]
                )
            elif file.suffix == ".arrow" and not file.name.startswith("cache-"):
                parts.append([str(file.relative_to(folder)), file.stat().st_size])
    elif not (args.dataset_name or args.data_files):
        parts.append(["corpus", args.corpus_preset, args.corpus_seed, args.corpus_dir])
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def load_raw_splits(args: DatasetArguments) -> DatasetDict:
    """The splits as the source holds them: `--dataset_name` / `--data_files` through `datasets.load_dataset`,
    otherwise `--dataset_path` (`load_from_disk`) or the embedded corpus. A lone `Dataset` becomes the training
    split."""
    if args.dataset_path and (args.dataset_name or args.data_files):
        raise ValueError(
            "--dataset_path and --dataset_name/--data_files both name the data: pass one of them"
        )
    if args.dataset_name or args.data_files:
        from datasets import load_dataset

        data_files = parse_data_files(args.data_files)
        name = args.dataset_name
        if name is None:
            extension = Path(next(iter(data_files.values()))[0]).suffix.lstrip(".").lower()
            if extension not in _BUILDERS:
                raise ValueError(
                    f"--data_files with the extension {extension!r} need --dataset_name naming the builder "
                    f"(one of {sorted(set(_BUILDERS.values()))}, or audiofolder)"
                )
            name = _BUILDERS[extension]
        data = load_dataset(name, args.dataset_config_name, data_dir=args.data_dir, data_files=data_files)
    else:
        try:
            data = load_splits(
                args.dataset_path,
                args.corpus_preset,
                args.corpus_dir,
                args.corpus_seed,
                single_split_name=args.train_split_name,
            )
        except (OSError, ValueError) as error:
            # An audiolang corpus names its damage itself (with the command that rebuilds it).
            plain = args.dataset_path and not (Path(args.dataset_path) / MARKER).is_file()
            damaged = damaged_arrow_files(args.dataset_path) if plain else []
            if not damaged:
                raise
            raise ValueError(
                f"the dataset at {args.dataset_path!r} is damaged: {'; '.join(damaged[:5])}. Save it again from its "
                "source (`Dataset.save_to_disk`), or rebuild it the way it was made."
            ) from error
    if isinstance(data, Dataset):
        data = DatasetDict({args.train_split_name: data})
    empty = [name for name, split in data.items() if split.num_rows == 0]
    if empty:
        raise ValueError(f"split(s) {empty} of the dataset are empty; it has {dict(data.num_rows)}")
    return data


def damaged_arrow_files(folder: str | os.PathLike) -> list[str]:
    """The Arrow files of a `save_to_disk` folder that cannot be read through (cut short, overwritten), each with
    pyarrow's reason."""
    import pyarrow as pa

    damaged = []
    for file in sorted(Path(folder).rglob("*.arrow")):
        try:
            with pa.memory_map(str(file)) as source:
                pa.ipc.open_stream(source).read_all()
        except (OSError, pa.ArrowInvalid) as error:
            damaged.append(f"{file} cannot be read ({type(error).__name__}: {error})")
    return damaged


def cast_audio_column(
    data: DatasetDict, column: str, sampling_rate: int, data_folder: str | os.PathLike | None = None
) -> DatasetDict:
    """Decode `column` at `sampling_rate` through `datasets.Audio`, whatever rate and channel count the files have
    (multi-channel audio is mixed to mono where it is read: `audio_to_array`). A column of file paths becomes an
    `Audio` column, relative paths read from `data_folder` (a CSV's own folder)."""
    out = {}
    for name, split in data.items():
        if column not in split.column_names:
            raise ValueError(
                f"--audio_column_name {column!r} is not a column of split {name!r}, which has "
                f"{split.column_names}"
            )
        feature = split.features[column]
        if isinstance(feature, Audio):
            if feature.sampling_rate != sampling_rate:
                split = split.cast_column(column, Audio(sampling_rate=sampling_rate))
        elif isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
            if data_folder is not None:
                split = split.map(
                    lambda path, folder=Path(data_folder): {
                        column: path if Path(path).is_absolute() else str(folder / path)
                    },
                    input_columns=[column],
                    desc="audio paths",
                )
            # Arrow casts only `string` (not `large_string`, which some builders give) to Audio's struct.
            split = split.cast_column(column, Value("string")).cast_column(
                column, Audio(sampling_rate=sampling_rate)
            )
        else:
            raise ValueError(
                f"--audio_column_name {column!r} of split {name!r} is a {feature!r}: it must be a datasets Audio "
                "column or a column of audio file paths"
            )
        out[name] = split
    return DatasetDict(out)


def _split_off(
    dataset: Dataset, fraction: float, seed: int, stratify: list | None
) -> tuple[Dataset, Dataset]:
    """`(rest, part)`: a seeded random `fraction` of the rows, stratified by `stratify` (the label of each row) when
    every class has at least two rows to share."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(dataset.num_rows)
    if stratify is not None:
        counts = np.unique(np.asarray(stratify), return_counts=True)[1]
        part_rows = int(np.ceil(fraction * dataset.num_rows))
        if counts.min() < 2 or min(part_rows, dataset.num_rows - part_rows) < len(counts):
            # sklearn cannot stratify then: a class of one row, or fewer rows in a part than classes.
            logger.warning(
                "%d rows of %d classes (the smallest has %d): the split is random, not stratified",
                dataset.num_rows,
                len(counts),
                counts.min(),
            )
            stratify = None
    rest, part = train_test_split(indices, test_size=fraction, random_state=seed, stratify=stratify)
    return dataset.select(np.sort(rest)), dataset.select(np.sort(part))


def add_missing_splits(
    data: DatasetDict,
    args: DatasetArguments,
    needed: Sequence[str],
    seed: int,
    stratify_column: str | None = None,
) -> DatasetDict:
    """Make each of `needed` (the validation and/or test split names) that `data` lacks from its training split: a
    seeded split of `--test_split_percentage` / `--validation_split_percentage` of the training rows, stratified by
    `stratify_column` (the label, for classification). The split names stay the user's."""
    missing = [name for name in needed if name not in data]
    if not missing:
        return data
    train_name = args.train_split_name
    if train_name not in data:
        raise ValueError(
            f"--train_split_name {train_name!r} is not a split of the dataset, which has {sorted(data)}"
        )
    percentages = {
        args.test_split_name: args.test_split_percentage,
        args.validation_split_name: args.validation_split_percentage,
    }
    if sum(percentages[name] for name in missing) >= 100 or any(
        not 0 < percentages[name] < 100 for name in missing
    ):
        raise ValueError(
            f"--validation_split_percentage / --test_split_percentage must be in (0, 100) and leave rows to "
            f"train on, got {[percentages[name] for name in missing]} for the missing split(s) {missing}"
        )
    data = DatasetDict(dict(data))
    train = data[train_name]
    remaining = 100.0
    # The test split first, so that the same seed gives the same test rows whether or not validation is made too.
    for name in sorted(missing, key=lambda n: n != args.test_split_name):
        labels = train[stratify_column] if stratify_column is not None else None
        train, data[name] = _split_off(train, percentages[name] / remaining, seed, labels)
        remaining -= percentages[name]
        logger.info(
            "the dataset has no %r split: %d rows of %r (%.0f%%, seed %d%s) make it",
            name,
            data[name].num_rows,
            train_name,
            percentages[name],
            seed,
            f", stratified by {stratify_column!r}" if stratify_column else "",
        )
    data[train_name] = train
    return data


@dataclass
class TaskSpec:
    """What a fine-tuning or evaluation run predicts: `name` picks the metrics (`make_compute_metrics`) and the best
    checkpoint's metric (`BEST_MODEL_METRICS`): one of the corpus' tasks, or the task type for any other labels."""

    name: str
    task_type: str
    label_column: str
    # Rows whose label is this value are not part of the task (the corpus' passenger talk has no intent).
    drop_label: int | None = None


def resolve_task(task: str | None, label_column_name: str | None, task_type: str | None) -> TaskSpec:
    """The task from `--task` (a shorthand for one of the corpus' columns) or `--label_column_name` with
    `--task_type` (any dataset's labels; the type inferred from the column when None). Neither: the corpus'
    device-directedness."""
    if task_type is not None and task_type not in TASK_TYPES:
        raise ValueError(f"--task_type must be one of {list(TASK_TYPES)}, got {task_type!r}")
    if label_column_name is not None:
        if task is not None:
            raise ValueError(
                f"--task {task!r} names one of the corpus' label columns and --label_column_name "
                f"{label_column_name!r} another: pass one of them"
            )
        return TaskSpec(task_type or "", task_type or "", label_column_name)
    task = task or "directed"
    if task not in CORPUS_TASKS:
        raise ValueError(
            f"unknown task {task!r}: --task is a shorthand for the embedded corpus' columns, one of "
            f"{sorted(CORPUS_TASKS)}. For your own dataset's labels pass --label_column_name {task} (and "
            "--task_type classification|regression|speaker_verification when it cannot be inferred)"
        )
    column, corpus_type = CORPUS_TASKS[task]
    if task_type is not None and task_type != corpus_type:
        raise ValueError(f"--task {task} is {corpus_type}; drop --task_type {task_type}")
    return TaskSpec(task, corpus_type, column, drop_label=-1 if task == "intent" else None)


def ensure_text_column(
    data: DatasetDict, text_column: str, audio_column: str, asr: str, num_proc: int | None = None
) -> DatasetDict:
    """Every split with its transcripts in `text_column`: a split without that column is transcribed with the
    recogniser `asr` (a `load_asr` spec), as pre-training does; a transcript that is None is an error naming its
    rows."""
    out = {}
    for name, split in data.items():
        split = ensure_transcripts(split, text_column, audio_column, asr, num_proc=num_proc)
        rows = [i for i, text in enumerate(split[text_column]) if text is None]
        if rows:
            raise ValueError(
                f"{len(rows)} row(s) of split {name!r} have no transcript (None) in {text_column!r} (rows "
                f"{rows[:10]}{', ...' if len(rows) > 10 else ''}): write an empty string for a clip without "
                "words, drop the rows, or drop the column to transcribe every clip with --asr"
            )
        out[name] = split
    return DatasetDict(out)


def load_labelled_splits(
    args: DatasetArguments,
    spec: TaskSpec,
    splits: Sequence[str],
    sampling_rate: int,
    seed: int,
    make_missing: Sequence[str] = (),
    unlabelled_splits: Sequence[str] = (),
    label_names: Sequence[str] | None = None,
) -> tuple[DatasetDict, TaskSpec, list[str] | None]:
    """The named `splits` of the data `args` point at, decoded at `sampling_rate`, with the `labels` column of
    `spec` (`prepare_labels`); the splits of `make_missing` that the data lacks are made from the training split
    (`add_missing_splits`, stratified by label for classification). Returns the splits, the task with its type
    resolved, and the label names (None for regression)."""
    data = load_raw_splits(args)
    available = [name for name in splits if name in data]
    wanted_missing = [name for name in splits if name not in data and name in make_missing]
    missing = [name for name in splits if name not in data and name not in make_missing]
    if missing:
        raise ValueError(f"split(s) {missing} not in the dataset, which has {sorted(data)}")
    if wanted_missing and args.train_split_name not in available:
        available.append(args.train_split_name)
    data = DatasetDict({name: data[name] for name in available if name in data})
    if spec.drop_label is not None:
        data = DatasetDict(
            {
                name: split.filter(
                    lambda y: y != spec.drop_label,
                    input_columns=[spec.label_column],
                    desc=f"rows with a {spec.label_column}",
                )
                for name, split in data.items()
            }
        )
    data, task_type, names = prepare_labels(
        data,
        spec.label_column,
        spec.task_type or None,
        train_split=args.train_split_name,
        label_names=label_names,
        unlabelled_splits=unlabelled_splits,
    )
    if not spec.name:
        spec = TaskSpec(task_type, task_type, spec.label_column)
    if wanted_missing:
        data = add_missing_splits(
            data,
            args,
            wanted_missing,
            seed,
            stratify_column="labels" if task_type == "classification" else None,
        )
    data = DatasetDict({name: data[name] for name in splits})
    return cast_audio_column(data, args.audio_column_name, sampling_rate, data_folder(args)), spec, names
