"""Dataset preparation shared by the run scripts: transcripts, lengths, task labels, few-shot subsets, k folds."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, load_from_disk

from ..data.asr import load_asr, transcribe_dataset

logger = logging.getLogger(__name__)

SAMPLING_RATE = 16_000

# The corpus' task names, shorthands for its columns: (label column, task type). `intent` keeps device-directed rows
# only (passenger talk has no intent: -1).
CORPUS_TASKS: dict[str, tuple[str, str]] = {
    "directed": ("directed", "classification"),
    "intent": ("intent", "classification"),
    "emotion": ("emotion", "classification"),
    "valence": ("valence", "regression"),
    "speaker": ("speaker_id", "speaker_verification"),
}
# Their label columns.
TASKS: dict[str, str] = {task: column for task, (column, _) in CORPUS_TASKS.items()}
# `--text_source` of the run scripts: which column holds the transcripts the model reads.
TEXT_COLUMNS: dict[str, str] = {"asr": "asr_text", "manual": "text"}


def load_splits(
    dataset_path: str | None,
    corpus_preset: str = "default",
    corpus_dir: str | None = None,
    corpus_seed: int = 0,
    single_split_name: str = "train",
) -> DatasetDict:
    """The run scripts' data: a ``load_from_disk`` folder (a lone ``Dataset`` becomes ``single_split_name``),
    or, without a path, the embedded corpus (built, or loaded from its cache)."""
    from ..data.corpus import MARKER, build_corpus, load_corpus

    if dataset_path:
        # A corpus folder is checked against what its build wrote; any other folder is loaded as it is.
        data = (
            load_corpus(dataset_path)
            if (Path(dataset_path) / MARKER).is_file()
            else load_from_disk(dataset_path)
        )
        return data if isinstance(data, DatasetDict) else DatasetDict({single_split_name: data})

    return build_corpus(corpus_preset, output_dir=corpus_dir, seed=corpus_seed)


def ensure_transcripts(
    dataset: Dataset,
    text_column: str,
    audio_column: str = "audio",
    asr: str = "pocketsphinx",
    num_proc: int | None = None,
    **asr_kwargs: Any,
) -> Dataset:
    """ASR-transcribing-then-training: if ``text_column`` is missing, transcribe ``audio_column`` into it.

    This is DSCLAP's point: pre-training needs raw audio only. ``asr`` is a ``load_asr`` spec.
    """
    if text_column in dataset.column_names:
        return dataset
    logger.info("no %r column: transcribing %d clips with %s", text_column, dataset.num_rows, asr)
    return transcribe_dataset(
        dataset,
        load_asr(asr, **asr_kwargs),
        audio_column=audio_column,
        output_column=text_column,
        num_proc=num_proc,
    )


def drop_empty_transcripts(dataset: Dataset, text_column: str) -> Dataset:
    """Remove rows whose transcript is empty (for contrastive pre-training; see DataCollatorForAudioText)."""
    kept = dataset.filter(
        lambda t: bool(t.strip()), input_columns=[text_column], desc="drop empty transcripts"
    )
    if kept.num_rows < dataset.num_rows:
        logger.info("dropped %d rows with an empty %r", dataset.num_rows - kept.num_rows, text_column)
    return kept


def add_length_column(
    dataset: Dataset, audio_column: str = "audio", duration_column: str = "duration"
) -> Dataset:
    """Add ``length`` (samples at 16 kHz) for ``train_sampling_strategy="group_by_length"``.

    Uses a stored ``duration`` column when there is one (no decoding); otherwise decodes each clip once.
    """
    if "length" in dataset.column_names:
        return dataset
    if duration_column in dataset.column_names:
        return dataset.map(
            lambda d: {"length": [int(round(x * SAMPLING_RATE)) for x in d]},
            input_columns=[duration_column],
            batched=True,
            desc="lengths",
        )
    from ..data.asr import audio_to_array

    return dataset.map(
        lambda a: {"length": len(audio_to_array(a)[0])}, input_columns=[audio_column], desc="lengths"
    )


def task_dataset(dataset: DatasetDict | Dataset, task: str) -> tuple[DatasetDict | Dataset, list[str] | None]:
    """Rows and label names for one of the corpus' tasks (`CORPUS_TASKS`); adds a ``labels`` column
    (`prepare_labels`, the first split as the training split).

    ``intent`` keeps device-directed rows only (passenger talk has no intent); ``speaker`` maps speaker ids
    to class indices; ``valence`` is regression (label names None).
    """
    if task not in CORPUS_TASKS:
        raise ValueError(
            f"unknown task {task!r}; the corpus' tasks are {sorted(CORPUS_TASKS)}. For another dataset's labels, "
            "pass --label_column_name (and --task_type when it cannot be inferred)"
        )
    column, task_type = CORPUS_TASKS[task]
    if task == "intent":
        dataset = dataset.filter(lambda y: y >= 0, input_columns=["intent"], desc="directed rows only")
    single = isinstance(dataset, Dataset)
    splits = DatasetDict({"rows": dataset}) if single else dataset
    splits, _, names = prepare_labels(splits, column, task_type, train_split=next(iter(splits)))
    return (splits["rows"] if single else splits), names


def few_shot(dataset: Dataset, size: int | None, seed: int) -> Dataset:
    """A seeded random subset of ``size`` rows (Fig. 2's few-shot curves); None or a larger size keeps all."""
    if size is None or size >= dataset.num_rows:
        return dataset
    if size <= 0:
        raise ValueError(f"train_size must be positive, got {size}")
    return dataset.shuffle(seed=seed).select(range(size))


def k_fold_splits(
    pool: Dataset, num_folds: int, seed: int, train_size: int | None = None
) -> list[DatasetDict]:
    """Seeded k-fold cross-validation (Turbo's Sec. 4.1: 8/1/1 with k = 10): fold i is the test set, fold
    (i + 1) mod k the validation set, the other k - 2 folds the training set (`few_shot` of `train_size` rows when
    given). Every row is tested exactly once."""
    if num_folds < 3:
        raise ValueError(
            f"`num_folds` must be >= 3 (one fold tests, the next validates, the rest trains), got {num_folds}"
        )
    if pool.num_rows < num_folds:
        raise ValueError(f"{pool.num_rows} rows cannot make {num_folds} folds")
    order = np.random.default_rng(seed).permutation(pool.num_rows)
    folds = np.array_split(order, num_folds)
    runs = []
    for i in range(num_folds):
        validation = (i + 1) % num_folds
        train = np.concatenate([fold for j, fold in enumerate(folds) if j not in (i, validation)])
        runs.append(
            DatasetDict(
                train=few_shot(pool.select(np.sort(train)), train_size, seed),
                validation=pool.select(np.sort(folds[validation])),
                test=pool.select(np.sort(folds[i])),
            )
        )
    return runs


# The column `add_row_index` adds, which `DataCollatorForAudioText(index_column=...)` names rows by.
ROW_INDEX_COLUMN = "row_index"


def add_row_index(dataset: Dataset, column: str = ROW_INDEX_COLUMN) -> Dataset:
    """Add each row's index in `dataset` as `column`, so that it survives filtering and shuffling: errors at
    collation time then name the dataset's row, not a position in a batch."""
    if column in dataset.column_names:
        return dataset
    return dataset.add_column(column, list(range(dataset.num_rows)))


# --- labels as users have them -------------------------------------------------------------------------------------

# The metric that picks the best checkpoint (`metric_for_best_model`) and whether greater is better, by task: the
# corpus' tasks by name, any other by task type.
BEST_MODEL_METRICS: dict[str, tuple[str, bool]] = {
    "directed": ("accuracy", True),
    "intent": ("accuracy", True),
    "emotion": ("ua", True),
    "valence": ("mae", False),
    "speaker": ("accuracy", True),
    "classification": ("accuracy", True),
    "regression": ("mae", False),
    "speaker_verification": ("accuracy", True),
}


def infer_task_type(feature: Any, column: str) -> str:
    """The task type a label feature implies: `ClassLabel`, strings, booleans or integers -> classification;
    floats -> regression."""
    from datasets import Value

    if isinstance(feature, ClassLabel):
        return "classification"
    if isinstance(feature, Value):
        if feature.dtype in ("string", "large_string", "bool") or feature.dtype.startswith(("int", "uint")):
            return "classification"
        if feature.dtype.startswith("float"):
            return "regression"
    raise ValueError(
        f"cannot tell the task type from the label column {column!r} ({feature!r}): pass --task_type "
        "classification or regression"
    )


def _unlabelled_rows(values: list, feature: Any) -> list[int]:
    missing = -1 if isinstance(feature, ClassLabel) else None
    return [
        i for i, value in enumerate(values) if value is None or (missing is not None and value == missing)
    ]


def _label_name(value: Any, feature: Any) -> str:
    return feature.int2str(value) if isinstance(feature, ClassLabel) else str(value)


def prepare_labels(
    splits: DatasetDict,
    label_column: str,
    task_type: str | None = None,
    train_split: str = "train",
    label_names: Sequence[str] | None = None,
    unlabelled_splits: Sequence[str] = (),
) -> tuple[DatasetDict, str, list[str] | None]:
    """Add the `labels` column the models train on, from the user's `label_column`; return `(splits, task_type,
    label_names)`.

    `task_type` is inferred from the column's feature in `train_split` when None (`infer_task_type`).
    Classification: the class names are `label_names` when given (a trained model's `id2label`), else the
    `ClassLabel` names, else the sorted distinct values of the training split (strings, or integers and booleans
    written as strings); `labels` is each row's index among them. Regression: `labels` is the float value, label
    names None. Speaker verification: classes are the training split's speakers; `unlabelled_splits` (the trial
    split of unseen speakers) are left without `labels`.

    Clear errors, naming what exists: a missing column, an unlabelled row (None, or -1 in a `ClassLabel`), a label
    of another split that the training split never has (or that `label_names` lacks).
    """
    for name, split in splits.items():
        if label_column not in split.column_names:
            raise ValueError(
                f"--label_column_name {label_column!r} is not a column of split {name!r}, which has "
                f"{split.column_names}"
            )
        if split.num_rows == 0:
            raise ValueError(f"split {name!r} is empty")
        if name in unlabelled_splits:
            continue
        rows = _unlabelled_rows(split[label_column], split.features[label_column])
        if rows:
            raise ValueError(
                f"{len(rows)} row(s) of split {name!r} have no label in {label_column!r} (rows "
                f"{rows[:10]}{', ...' if len(rows) > 10 else ''}): label them, or filter them out first"
            )
    reference = train_split if train_split in splits else next(iter(splits))
    feature = splits[reference].features[label_column]
    if task_type is None:
        task_type = infer_task_type(feature, label_column)
    if task_type == "regression":
        labelled = DatasetDict(
            {
                name: split.map(
                    lambda y: {"labels": float(y)}, input_columns=[label_column], desc="regression labels"
                )
                for name, split in splits.items()
            }
        )
        return labelled, task_type, None
    if task_type not in ("classification", "speaker_verification"):
        raise ValueError(
            f"--task_type must be one of classification, regression, speaker_verification, got {task_type!r}"
        )
    if label_names is not None:
        names = [str(name) for name in label_names]
    elif isinstance(feature, ClassLabel) and task_type == "classification":
        names = list(feature.names)
    else:
        values = {_label_name(v, feature) for v in splits[reference][label_column]}
        names = sorted(values, key=lambda v: (int(v), v) if v.lstrip("-").isdigit() else (float("inf"), v))
    index = {name: i for i, name in enumerate(names)}
    labelled = {}
    for name, split in splits.items():
        if name in unlabelled_splits:
            labelled[name] = split
            continue
        split_feature = split.features[label_column]
        unknown = sorted({_label_name(v, split_feature) for v in split[label_column]} - set(index))
        if unknown and task_type == "speaker_verification" and label_names is None:
            # The classifier only knows the training speakers; verification itself is scored on the trial split.
            split = split.filter(
                lambda y, f=split_feature: _label_name(y, f) in index,
                input_columns=[label_column],
                desc="speakers of the training split",
            )
            logger.warning(
                "split %r: the rows of %d speaker(s) the training split does not have (%s) are left out of the "
                "speaker classifier's evaluation",
                name,
                len(unknown),
                ", ".join(unknown[:5]),
            )
            unknown = []
            if split.num_rows == 0:
                raise ValueError(f"split {name!r} has no speaker of the {reference!r} split")
        if unknown:
            source = "the model's labels" if label_names is not None else f"the {reference!r} split"
            raise ValueError(
                f"split {name!r} has label(s) {unknown[:10]} in {label_column!r} that {source} never has "
                f"({len(names)} label(s): {names[:20]}{', ...' if len(names) > 20 else ''}): "
                + (
                    "evaluate with a model trained on them"
                    if label_names is not None
                    else "every class must occur in the training split"
                )
            )
        labelled[name] = split.map(
            lambda y, f=split_feature: {"labels": index[_label_name(y, f)]},
            input_columns=[label_column],
            desc="class labels",
        )
    return DatasetDict(labelled), task_type, names
