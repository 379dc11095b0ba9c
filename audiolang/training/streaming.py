"""Streaming pre-training: train on more audio than fits on disk, from a `datasets.IterableDataset` read as it goes
(local parquet/arrow shards, or a Hub dataset), never materialised.

What the map-style path does up front happens here per example, lazily, in the order the stream is read:

1. the stream is split across processes with `datasets.distributed.split_dataset_by_node` (whole shards per process
   when their number is a multiple of the world size, otherwise every process reads everything and keeps one
   example in `world_size`);
2. every clip passes the same validator as the up-front check (`audio_checks.audio_problem`): a bad one raises
   (`bad_audio="error"`) or is skipped with a warning (`"skip"`);
3. without a text column, the clips are transcribed in batches by an `audiolang.data.asr` back-end (DSCLAP's point:
   raw audio is enough), and empty transcripts are dropped, as `drop_empty_transcripts` does;
4. clips are decoded for training (the validator has decoded each once already, as the up-front check does), and
   batches are made of clips of similar length (`length_bucketed`).

`StreamingAudioTextTrainer` then feeds each process its own part as it is, where `Trainer` would split it again.
`write_parquet_shards` writes a built split as shards, to try all this on the embedded corpus.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from datasets import Audio, Dataset, Features, IterableDataset, IterableDatasetDict, Value
from datasets.distributed import split_dataset_by_node
from torch.utils.data import DataLoader

from ..data.asr import audio_to_array, load_asr
from .audio_checks import BadAudio, audio_problem
from .data import ROW_INDEX_COLUMN, add_row_index, load_splits
from .lifecycle import BAD_AUDIO_CHOICES
from .trainer import AudioTextTrainer

logger = logging.getLogger(__name__)

T = TypeVar("T")

# transformers' LengthGroupedSampler sorts "megabatches" of 50 batches; the same default window here.
DEFAULT_BUFFER_BATCHES = 50
# The column that `prepare_pretraining_stream` adds: each decoded clip's number of samples.
LENGTH_COLUMN = "length"


def write_parquet_shards(
    dataset: Dataset | Mapping[str, Dataset],
    output_dir: str | Path,
    num_shards: int = 4,
    split: str = "train",
    row_index: bool = True,
) -> dict[str, list[Path]]:
    """Write each split as `num_shards` parquet files (fewer for a split with fewer rows), in the Hub's layout
    `output_dir/data/<split>-00000-of-00004.parquet`, so that `datasets.load_dataset(output_dir, streaming=True)`
    reads them back with their features (the `Audio` column included) and split names.

    Audio stored as paths to local files is embedded into the shards (as `push_to_hub` does), so the folder is
    self-contained. With `row_index`, each row's index in its split is written too (`ROW_INDEX_COLUMN`): errors found
    while streaming then name the row of the data as written.

    Args:
        dataset: a `Dataset` (written as `split`) or a `DatasetDict` / mapping of splits.
    Returns:
        `{split: [shard paths]}`.
    """
    from datasets.table import embed_table_storage

    if num_shards < 1:
        raise ValueError(f"`num_shards` must be >= 1, got {num_shards}")
    splits = dict(dataset) if isinstance(dataset, Mapping) else {split: dataset}
    schemas = {name: data.features for name, data in splits.items()}
    if len({repr(features) for features in schemas.values()}) > 1:
        # load_dataset reads one schema per folder: a split lacking a column would stream it as all None.
        raise ValueError(
            f"the splits have different features ({ {name: list(f) for name, f in schemas.items()} }): datasets "
            "reads one schema per folder, so write them to separate folders"
        )
    written: dict[str, list[Path]] = {}
    for name, data in splits.items():
        if row_index:
            data = add_row_index(data)
        count = max(1, min(num_shards, data.num_rows))
        written[name] = []
        for index in range(count):
            shard = data.shard(num_shards=count, index=index, contiguous=True)
            shard = shard.with_format("arrow").map(embed_table_storage, batched=True, keep_in_memory=True)
            path = Path(output_dir) / "data" / f"{name}-{index:05d}-of-{count:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            shard.with_format(None).to_parquet(str(path))
            written[name].append(path)
    return written


def load_streaming_splits(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    dataset_path: str | None = None,
    corpus_preset: str = "default",
    corpus_dir: str | None = None,
    corpus_seed: int = 0,
    num_shards: int = 1,
) -> IterableDatasetDict:
    """Every split as a stream: `dataset_name` (a Hub id, or a local folder of data files such as the one
    `write_parquet_shards` writes) through `datasets.load_dataset(..., streaming=True)`; otherwise the run scripts'
    map-style data (`load_splits`: a `load_from_disk` folder, or the embedded corpus) read as streams of `num_shards`
    shards each (a multiple of the number of processes lets each read whole shards)."""
    if dataset_name:
        from datasets import load_dataset

        return load_dataset(dataset_name, dataset_config_name, streaming=True)
    splits = load_splits(dataset_path, corpus_preset, corpus_dir, corpus_seed)
    return IterableDatasetDict(
        {
            name: split.to_iterable_dataset(num_shards=max(1, min(num_shards, split.num_rows)))
            for name, split in splits.items()
        }
    )


def stream_head(stream: IterableDataset, num_rows: int | None = None) -> Dataset:
    """The first `num_rows` rows of `stream` (all of them when None) as an in-memory `Dataset` with the same
    features, e.g. a validation split to evaluate on while the training split streams. Audio is copied undecoded."""
    undecoded = stream.decode(False)
    rows = list(undecoded if num_rows is None else undecoded.take(num_rows))
    return Dataset.from_list(rows, features=undecoded.features).cast(stream.features)


def length_bucketed(
    examples: Iterable[T],
    batch_size: int,
    buffer_batches: int = DEFAULT_BUFFER_BATCHES,
    length: Callable[[T], int] = operator.itemgetter(LENGTH_COLUMN),
    rng: np.random.Generator | None = None,
) -> Iterator[T]:
    """Length bucketing in a buffer: the streaming counterpart of transformers' `LengthGroupedSampler`, which needs
    the whole dataset's lengths up front.

    Fills a buffer with `batch_size * buffer_batches` examples, sorts it by `length`, cuts it into chunks of
    `batch_size` consecutive examples, and yields the chunks in an order shuffled by `rng` (sorted order when
    None); then the next buffer. A `DataLoader` that batches the output by `batch_size` thus gets batches of
    clips of similar length (little padding), and the batches do not grow longer in step with the sort. At the end
    of the stream, a chunk of fewer than `batch_size` examples comes last, so that every other batch is still
    exactly one chunk.

    Every example is yielded exactly once. `buffer_batches=1` keeps each batch's examples as the stream groups
    them (sorted within the batch). The buffer holds `batch_size * buffer_batches` examples in memory.
    """
    if batch_size < 1 or buffer_batches < 1:
        raise ValueError(
            f"`batch_size` and `buffer_batches` must be >= 1, got {batch_size} and {buffer_batches}"
        )
    capacity = batch_size * buffer_batches
    buffer: list[T] = []
    for example in examples:
        buffer.append(example)
        if len(buffer) == capacity:
            yield from _sorted_chunks(buffer, batch_size, length, rng)
            buffer = []
    yield from _sorted_chunks(buffer, batch_size, length, rng)


def _sorted_chunks(
    buffer: list[T], batch_size: int, length: Callable[[T], int], rng: np.random.Generator | None
) -> Iterator[T]:
    ordered = sorted(buffer, key=length)
    full = [ordered[i : i + batch_size] for i in range(0, len(ordered) - batch_size + 1, batch_size)]
    rest = ordered[len(full) * batch_size :]
    if rng is not None:
        full = [full[i] for i in rng.permutation(len(full))]
    for chunk in full:
        yield from chunk
    yield from rest


class LengthBucketedStream(torch.utils.data.IterableDataset):
    """A stream re-ordered by `length_bucketed` for batches of `batch_size`; each epoch's chunk order is drawn from
    `(seed, epoch)`. `set_epoch` (which `Trainer` calls through accelerate) is passed on to the wrapped stream, so a
    shuffled `datasets` stream reshuffles too.

    In `DataLoader` workers, each worker buckets the part of the stream that `datasets` gives it.
    """

    def __init__(
        self,
        stream: Iterable[dict[str, Any]],
        batch_size: int,
        buffer_batches: int = DEFAULT_BUFFER_BATCHES,
        seed: int = 0,
        length_column: str = LENGTH_COLUMN,
    ) -> None:
        self.stream = stream
        self.batch_size = batch_size
        self.buffer_batches = buffer_batches
        self.seed = seed
        self.length_column = length_column
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.stream, "set_epoch"):
            self.stream.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        return length_bucketed(
            self.stream, self.batch_size, self.buffer_batches, operator.itemgetter(self.length_column), rng
        )


def prepare_pretraining_stream(
    stream: IterableDataset,
    *,
    batch_size: int,
    audio_column: str = "audio",
    text_column: str = "asr_text",
    sampling_rate: int = 16_000,
    min_samples: int = 1,
    bad_audio: Literal["error", "skip"] = "error",
    asr: str = "pocketsphinx",
    asr_batch_size: int = 16,
    rank: int = 0,
    world_size: int = 1,
    buffer_batches: int = DEFAULT_BUFFER_BATCHES,
    shuffle_buffer_size: int = 0,
    seed: int = 0,
    split: str = "train",
) -> LengthBucketedStream:
    """The training stream of one process: this process's part of `stream`, checked, transcribed where it has no
    `text_column`, decoded (`{"array", "sampling_rate"}` plus its `length` in samples) and length-bucketed for
    batches of `batch_size`. Nothing is read until the stream is iterated.

    Args:
        stream: an `IterableDataset` with known features (`load_dataset(..., streaming=True)` has them).
        sampling_rate: the model's rate; `min_samples`: the shortest clip it takes (see `min_audio_samples`).
        bad_audio: what a bad clip does (`audio_checks`): `"error"` raises a `ValueError` naming it when it is read,
            `"skip"` leaves it out with a warning.
        asr: a `load_asr` spec, used only when `text_column` is missing.
        rank, world_size: this process and the number of processes (`TrainingArguments.process_index` and
            `world_size`).
        buffer_batches: the length-bucketing window in batches (`length_bucketed`).
        shuffle_buffer_size: > 0 shuffles the shards and the examples (`IterableDataset.shuffle`, seeded with `seed`
            on every process, as splitting a shuffled stream needs) before anything else.
        split: the split's name, for error messages.
    """
    if bad_audio not in BAD_AUDIO_CHOICES:
        raise ValueError(f"`bad_audio` must be one of {BAD_AUDIO_CHOICES}, got {bad_audio!r}")
    if stream.features is None:
        raise ValueError(
            f"split {split!r} has unknown features (a stream after an untyped map): pass `features=` to the map"
        )
    if audio_column not in stream.features:
        raise ValueError(f"audio_column {audio_column!r} is not in split {split!r}: {list(stream.features)}")
    if shuffle_buffer_size > 0:
        stream = stream.shuffle(seed=seed, buffer_size=shuffle_buffer_size)
    if world_size > 1:
        if stream.num_shards % world_size:
            logger.warning(
                "split %r has %d shards, not a multiple of %d processes: every process reads, checks and "
                "transcribes every example and keeps one in %d. Write the data in a multiple of %d shards.",
                split,
                stream.num_shards,
                world_size,
                world_size,
                world_size,
            )
        stream = split_dataset_by_node(stream, rank=rank, world_size=world_size)

    feature = stream.features[audio_column]
    # The validator decodes each clip itself, exactly as the up-front check does, so that a file that does not
    # decode is reported rather than raised from inside datasets.
    audio_feature = feature if isinstance(feature, Audio) and feature.decode else None
    if audio_feature is not None:
        stream = stream.cast_column(audio_column, Audio(decode=False))
    stream = stream.filter(
        _check_clip,
        with_indices=True,
        fn_kwargs={
            "audio_column": audio_column,
            "audio_feature": audio_feature,
            "sampling_rate": sampling_rate,
            "min_samples": min_samples,
            "bad_audio": bad_audio,
            "split": split,
        },
    )
    if text_column not in stream.features:
        backend = load_asr(asr)
        logger.info("no %r column: transcribing split %r with %s as it streams", text_column, split, asr)
        stream = stream.map(
            _transcribe,
            input_columns=[audio_column],
            batched=True,
            batch_size=asr_batch_size,
            features=Features({**stream.features, text_column: Value("string")}),
            fn_kwargs={"asr": backend, "audio_feature": audio_feature, "text_column": text_column},
        )
    # Identical empty transcripts would be false negatives of each other (as drop_empty_transcripts says).
    stream = stream.filter(lambda text: bool(text and text.strip()), input_columns=[text_column])
    # Decoded here rather than in the collator: the bucketing needs each clip's length. No `features` are given:
    # the decoded arrays must reach the collator as they are, not be encoded back into an Audio column.
    stream = stream.map(
        _decode_clip,
        input_columns=[audio_column],
        fn_kwargs={"audio_feature": audio_feature, "name": audio_column},
    )
    return LengthBucketedStream(stream, batch_size, buffer_batches, seed)


def _check_clip(
    example: dict[str, Any],
    position: int,
    audio_column: str,
    audio_feature: Audio | None,
    sampling_rate: int,
    min_samples: int,
    bad_audio: str,
    split: str,
) -> bool:
    problem = audio_problem(example[audio_column], audio_feature, sampling_rate, min_samples)
    if not problem:
        return True
    # Rows written by write_parquet_shards carry their index in the split; otherwise the position in this process's
    # part of the stream is all there is.
    row = example.get(ROW_INDEX_COLUMN, position)
    value = example[audio_column]
    clip = BadAudio(split, row, value.get("path") if isinstance(value, Mapping) else None, problem)
    if bad_audio == "error":
        raise ValueError(
            f"bad audio clip in the stream: {clip}\nRepair or remove it, or pass --bad_audio skip to train without "
            "the bad clips."
        )
    logger.warning("skipping bad audio clip (--bad_audio skip): %s", clip)
    return False


def _decoded(
    value: Any, audio_feature: Audio | None, sampling_rate: int | None = None
) -> tuple[np.ndarray, int]:
    if audio_feature is None:
        return audio_to_array(value)
    decoder = audio_feature if sampling_rate is None else Audio(sampling_rate=sampling_rate)
    return audio_to_array(decoder.decode_example(value))


def _transcribe(
    values: list[Any], asr: Any, audio_feature: Audio | None, text_column: str
) -> dict[str, list[str]]:
    arrays = [_decoded(value, audio_feature, asr.sampling_rate)[0] for value in values]
    return {text_column: asr.transcribe(arrays, asr.sampling_rate)}


def _decode_clip(value: Any, audio_feature: Audio | None, name: str) -> dict[str, Any]:
    array, rate = _decoded(value, audio_feature)
    return {name: {"array": array, "sampling_rate": rate}, LENGTH_COLUMN: len(array)}


class StreamingAudioTextTrainer(AudioTextTrainer):
    """`AudioTextTrainer` for a training stream that each process has already cut to its own part
    (`prepare_pretraining_stream`, which uses `split_dataset_by_node`).

    `Trainer` hands an `IterableDataset` to accelerate, which either reads it on process 0 alone and dispatches the
    batches, or splits it once more across processes: either way, with a stream already split per process, part
    of the data would never be read. Here each process batches its own part, and accelerate only places the batches
    on the device. Every batch is full when there are several processes (the last, partial one is dropped): the
    InfoNCE gathers the same number of negatives from every process.
    """

    def get_train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise ValueError("StreamingAudioTextTrainer needs a `train_dataset`.")
        from accelerate.data_loader import prepare_data_loader

        loader = DataLoader(
            self.train_dataset,
            batch_size=self._train_batch_size,
            collate_fn=self._get_collator_with_removed_columns(self.data_collator, description="training"),
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
            persistent_workers=self.args.dataloader_persistent_workers,
            prefetch_factor=self.args.dataloader_prefetch_factor,
            drop_last=self.args.dataloader_drop_last or self.args.world_size > 1,
        )
        return prepare_data_loader(
            loader,
            self.accelerator.device,
            num_processes=1,
            process_index=0,
            put_on_device=self.accelerator.device_placement,
            dispatch_batches=False,
            non_blocking=self.accelerator.non_blocking,
        )
