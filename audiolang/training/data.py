"""Dataset preparation shared by the run scripts: transcripts, lengths, task labels, few-shot subsets, k folds."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, load_from_disk

from ..data.asr import load_asr, transcribe_dataset

logger = logging.getLogger(__name__)

SAMPLING_RATE = 16_000

# Fine-tuning tasks of the embedded corpus: label column, and whether rows without a label (-1) exist.
TASKS: dict[str, str] = {
    "directed": "directed",
    "intent": "intent",
    "emotion": "emotion",
    "valence": "valence",
    "speaker": "speaker_id",
}
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
    """Rows and label names for a fine-tuning task; adds a ``labels`` column.

    ``intent`` keeps device-directed rows only (passenger talk has no intent); ``speaker`` maps speaker ids
    to class indices over the given rows; ``valence`` is regression (label names None).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    column = TASKS[task]
    if task == "intent":
        dataset = dataset.filter(lambda y: y >= 0, input_columns=["intent"], desc="directed rows only")
    if task == "speaker":
        any_split = next(iter(dataset.values())) if isinstance(dataset, DatasetDict) else dataset
        names = sorted(set(any_split[column]))
        dataset = dataset.map(
            lambda s: {"labels": names.index(s)}, input_columns=[column], desc="speaker labels"
        )
        return dataset, names
    dataset = dataset.map(lambda y: {"labels": y}, input_columns=[column], desc=f"{task} labels")
    any_split = next(iter(dataset.values())) if isinstance(dataset, DatasetDict) else dataset
    feature = any_split.features[column]
    return dataset, (list(feature.names) if isinstance(feature, ClassLabel) else None)


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
