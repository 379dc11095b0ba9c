"""Data collators: turn ``datasets`` rows (decoded audio + text [+ label]) into model batches.

Like transformers' ``DataCollatorWithPadding``, a collator runs in the ``DataLoader`` (its workers too),
so decoding and padding happen per batch and only for the rows of that batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from transformers import BatchFeature, DataCollatorForLanguageModeling

from ..data.asr import audio_to_array


@dataclass
class DataCollatorForAudioText:
    """Collate (audio, text[, label]) rows with a joint audio+text processor (e.g. ``DsclapProcessor``).

    Args:
        processor: called as ``processor(audio=..., text=..., sampling_rate=..., truncate_audio=...,
            return_tensors="pt")``.
        audio_column: a decoded ``datasets.Audio`` column (or ``{"array", "sampling_rate"}`` dicts).
        text_column: the transcripts (``asr_text`` for ASR-transcribed input, ``text`` for manual).
            Either column may be None for rows of one modality (lrat's unpaired audio or text): the batch
            then holds only the other modality's keys.
        label_column: if set, its values become ``labels`` (int64 for classes, float32 for regression).
        sampling_rate: the rate the processor expects; rows at another rate are an error, not resampled
            (cast the column with ``Audio(sampling_rate=...)`` to resample once, in ``datasets``).
        truncate_audio: crop clips longer than the processor's ``max_audio_samples`` (the DSCLAP paper's
            80,000-sample limit is such a crop) instead of raising.
        empty_text: what an empty transcript is encoded as. A recogniser that heard no words is real
            evidence (often far-field talk), so the row is kept; the default is the tokenizer's unknown
            token. Pre-training should drop such rows instead (``drop_empty_transcripts``): identical
            empty texts would be false negatives of each other.
        index_column: a column holding each row's index in its dataset (see ``add_row_index``): errors then
            name that row, not the row's position in the batch.
        audio_pooler_output_column: a column of each clip's precomputed audio-tower output
            (``cache_frozen_audio``); rows that have it are batched as ``audio_pooler_output`` and their audio is
            not decoded.
    """

    processor: Any
    audio_column: str | None = "audio"
    text_column: str | None = "asr_text"
    label_column: str | None = None
    sampling_rate: int = 16_000
    truncate_audio: bool = True
    empty_text: str | None = None
    index_column: str | None = None
    audio_pooler_output_column: str | None = "audio_pooler_output"

    def __call__(self, features: Sequence[dict[str, Any]]) -> BatchFeature:
        if self.audio_column is None and self.text_column is None:
            raise ValueError("`audio_column` and `text_column` are both None: name at least one of them.")
        cached = (
            self.audio_pooler_output_column is not None and self.audio_pooler_output_column in features[0]
        )
        audio = (
            None
            if self.audio_column is None or cached
            else [self._audio(features, i) for i in range(len(features))]
        )
        text = None
        if self.text_column is not None:
            placeholder = self.empty_text or self.processor.tokenizer.unk_token
            text = [
                row[self.text_column] if row[self.text_column].strip() else placeholder for row in features
            ]
        try:
            batch = self._process(audio, text)
        except ValueError as error:
            raise self._name_bad_row(features, audio, text, error) from error
        if cached:
            batch["audio_pooler_output"] = torch.tensor(
                np.asarray([row[self.audio_pooler_output_column] for row in features], dtype=np.float32)
            )
        if self.label_column is not None:
            labels = [row[self.label_column] for row in features]
            dtype = torch.float32 if isinstance(labels[0], float) else torch.long
            batch["labels"] = torch.tensor(labels, dtype=dtype)
        return batch

    def _audio(self, features: Sequence[dict[str, Any]], i: int) -> np.ndarray:
        try:
            array, rate = audio_to_array(features[i][self.audio_column])
        except Exception as error:
            raise ValueError(f"{self._row_name(features, i)}: `{self.audio_column}`: {error}") from error
        if rate != self.sampling_rate:
            raise ValueError(
                f"{self._row_name(features, i)}: `{self.audio_column}` is sampled at {rate} Hz, expected "
                f"{self.sampling_rate}; cast the column with datasets.Audio(sampling_rate={self.sampling_rate})"
            )
        return np.asarray(array, dtype=np.float32)

    def _process(self, audio: list[np.ndarray] | None, text: list[str] | None) -> BatchFeature:
        return self.processor(
            audio=audio,
            text=text,
            sampling_rate=self.sampling_rate,
            truncate_audio=self.truncate_audio,
            return_tensors="pt",
        )

    def _row_name(self, features: Sequence[dict[str, Any]], position: int) -> str:
        if self.index_column is not None and self.index_column in features[position]:
            return f"dataset row {features[position][self.index_column]}"
        return f"row {position} of the batch"

    def _name_bad_row(
        self,
        features: Sequence[dict[str, Any]],
        audio: list[np.ndarray] | None,
        text: list[str] | None,
        error: ValueError,
    ) -> ValueError:
        """The processor's error about the batch, about the first row that fails on its own instead: it names
        `audio[4]`, a position that means nothing outside this batch. Only runs once a batch has failed."""
        for position in range(len(features)):
            rows = slice(position, position + 1)
            try:
                self._process(None if audio is None else audio[rows], None if text is None else text[rows])
            except ValueError as row_error:
                return ValueError(f"{self._row_name(features, position)}: {row_error}")
        return error


class AudioSpanMaskingOutput(NamedTuple):
    """What `mask_audio_spans` returns."""

    input_features: torch.Tensor
    """The corrupted features: selected segments zeroed, replaced or kept."""
    targets: torch.Tensor
    """The original features (the input tensor itself, unmodified), the reconstruction targets."""
    mask: torch.Tensor
    """`(batch, frames)` boolean, true on every frame of the selected segments: the frames to reconstruct."""
    span_lengths: torch.Tensor
    """`(batch,)` the segment length C drawn for each row (0 for a row without real frames)."""


def mask_audio_spans(
    input_features: torch.Tensor,
    audio_attention_mask: torch.Tensor | None = None,
    *,
    mask_probability: float = 0.15,
    min_span: int = 20,
    max_span: int = 50,
    zero_probability: float = 0.8,
    replace_probability: float = 0.1,
    replacement: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> AudioSpanMaskingOutput:
    """Segment masking of acoustic frames, CTAL's masked cross-modal acoustic modelling (Sec. 3.2.2).

    Each row's real frames (a right-padded prefix of `audio_attention_mask`) are split into consecutive segments of
    C frames, C drawn uniformly from `[min_span, max_span]` per row; the last segment keeps the remainder (fewer
    than C frames). `mask_probability` of the segments are selected (`floor(p * S + U)` of a row's S segments, U
    uniform in [0, 1), so that every frame is selected with probability exactly p). Each selected segment is set to
    zero with `zero_probability`, replaced with `replace_probability` by as many consecutive original frames copied
    from another, random position of the same row (a row that is one segment long has no other position and stays
    unchanged), and kept unchanged otherwise. As in BERT, all three count as frames to reconstruct. Padding is
    never selected.

    With `replacement`, the replace branch copies the *same* frames of `replacement` instead (lrat's Ĉ on paired data:
    segments of a clip replaced by the same segments of its IDP translation), and only the first
    `replacement.shape[1]` frames of a row can be selected.

    Args:
        input_features: `(batch, frames, feature_size)`.
        audio_attention_mask: `(batch, frames)`, 1 on real frames (a prefix of each row); all frames when `None`.
        replacement: `(batch, frames', feature_size)`, the source of the replace branch (see above).
        generator: Source of randomness (CPU); torch's global generator when `None`.

    Returns an `AudioSpanMaskingOutput`; `input_features` is not modified.
    """
    _check_span_masking(mask_probability, min_span, max_span, zero_probability, replace_probability)
    batch, frames = input_features.shape[:2]
    if audio_attention_mask is None:
        audio_attention_mask = torch.ones(batch, frames, dtype=torch.bool)
    valid = audio_attention_mask.bool().cpu()
    lengths = valid.sum(dim=1)
    if not torch.equal(valid, torch.arange(frames)[None, :] < lengths[:, None]):
        raise ValueError("`audio_attention_mask` must mark a prefix of each row (right padding).")
    if replacement is not None:
        lengths = lengths.clamp(max=replacement.shape[1])

    def draw(high: int) -> int:
        return int(torch.randint(high, (1,), generator=generator))

    corrupted = input_features.clone()
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    span_lengths = torch.zeros(batch, dtype=torch.long)
    for row, length in enumerate(lengths.tolist()):
        if length == 0:
            continue
        span = min_span + draw(max_span - min_span + 1)
        span_lengths[row] = span
        num_segments = math.ceil(length / span)
        num_selected = math.floor(mask_probability * num_segments + float(torch.rand(1, generator=generator)))
        for segment in torch.randperm(num_segments, generator=generator)[:num_selected].tolist():
            start = segment * span
            end = min(start + span, length)
            mask[row, start:end] = True
            branch = float(torch.rand(1, generator=generator))
            if branch < zero_probability:
                corrupted[row, start:end] = 0
            elif branch < zero_probability + replace_probability and replacement is not None:
                corrupted[row, start:end] = replacement[row, start:end].to(corrupted.dtype)
            elif branch < zero_probability + replace_probability and length > end - start:
                # A uniformly drawn start among the other `length - (end - start)` positions.
                source = draw(length - (end - start))
                source += source >= start
                corrupted[row, start:end] = input_features[row, source : source + end - start]
    return AudioSpanMaskingOutput(corrupted, input_features, mask.to(input_features.device), span_lengths)


def _check_span_masking(
    mask_probability: float, min_span: int, max_span: int, zero_probability: float, replace_probability: float
) -> None:
    probabilities = {
        "mask_probability": mask_probability,
        "zero_probability": zero_probability,
        "replace_probability": replace_probability,
    }
    for name, value in probabilities.items():
        if not 0 <= value <= 1:
            raise ValueError(f"`{name}` must be in [0, 1], got {value}.")
    if zero_probability + replace_probability > 1:
        raise ValueError(
            f"`zero_probability + replace_probability` must be <= 1, got {zero_probability + replace_probability}."
        )
    if not 1 <= min_span <= max_span:
        raise ValueError(f"Need 1 <= min_span <= max_span, got min_span={min_span}, max_span={max_span}.")


@dataclass
class DataCollatorForCtalPreTraining:
    """CTAL pre-training batches: (audio, text) rows collated by a `DataCollatorForAudioText`, then masked for
    masked language modelling (MLM) and masked cross-modal acoustic modelling (MCAM), both from one seeded
    generator.

    MLM is transformers' `DataCollatorForLanguageModeling.torch_mask_tokens` (RoBERTa's recipe: 15% of the tokens,
    80% `<mask>`, 10% a random token of the vocabulary, 10% unchanged; special tokens and padding never), MCAM
    `mask_audio_spans`. The batch gets the keys `CtalForPreTraining.forward` takes: masked `input_ids` and
    `input_features`, `labels` (original ids of masked tokens, -100 elsewhere), `audio_labels` (original features)
    and `audio_labels_mask` (frames to reconstruct).

    Args:
        collator: Collates the rows with the processor (e.g. `DataCollatorForAudioText(ctal_processor,
            text_column="asr_text")`); its `processor.tokenizer` provides the mask token, special tokens and
            vocabulary. It must not have a `label_column`: `labels` are the MLM targets here.
        mlm_probability, mask_replace_prob, random_replace_prob: MLM, as in `DataCollatorForLanguageModeling`.
        audio_mask_probability, min_span, max_span, audio_zero_prob, audio_replace_prob: MCAM, as
            `mask_audio_spans`'s `mask_probability`, `min_span`, `max_span`, `zero_probability`,
            `replace_probability`.
        seed: Seeds the collator's own `torch.Generator`, so that a seed gives one fixed sequence of batches; in
            `DataLoader` workers, worker `i` uses `seed + i` (transformers' convention). `None` draws from torch's
            global generator (which `transformers.set_seed` seeds).

    `mask_batch` masks an already collated batch (for datasets that are processed ahead of time).
    """

    collator: DataCollatorForAudioText
    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    audio_mask_probability: float = 0.15
    min_span: int = 20
    max_span: int = 50
    audio_zero_prob: float = 0.8
    audio_replace_prob: float = 0.1
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.collator.label_column is not None:
            raise ValueError(
                f"`collator.label_column` is {self.collator.label_column!r}, but pre-training uses `labels` for the "
                "MLM targets: build the DataCollatorForAudioText without `label_column`."
            )
        # The MCAM arguments fail here rather than at the first batch.
        _check_span_masking(
            self.audio_mask_probability,
            self.min_span,
            self.max_span,
            self.audio_zero_prob,
            self.audio_replace_prob,
        )
        self.tokenizer = self.collator.processor.tokenizer
        self._mlm = DataCollatorForLanguageModeling(
            tokenizer=self.tokenizer,
            mlm_probability=self.mlm_probability,
            mask_replace_prob=self.mask_replace_prob,
            random_replace_prob=self.random_replace_prob,
            seed=self.seed,
        )

    def __call__(self, features: Sequence[dict[str, Any]]) -> BatchFeature:
        return self.mask_batch(self.collator(features))

    def mask_batch(
        self, batch: BatchFeature | dict[str, torch.Tensor]
    ) -> BatchFeature | dict[str, torch.Tensor]:
        """Mask a collated batch with `input_ids`, `attention_mask`, `input_features` and `audio_attention_mask`;
        the masked inputs replace the originals and the targets are added."""
        if self._mlm.seed is not None and self._mlm.generator is None:
            # Created on first use, inside the process (or DataLoader worker) that draws.
            self._mlm.create_rng()
        generator = self._mlm.generator
        input_ids = batch["input_ids"]
        special = torch.isin(input_ids, torch.tensor(self.tokenizer.all_special_ids, device=input_ids.device))
        if "attention_mask" in batch:
            special |= batch["attention_mask"] == 0
        batch["input_ids"], batch["labels"] = self._mlm.torch_mask_tokens(input_ids.clone(), special)
        audio = mask_audio_spans(
            batch["input_features"],
            batch.get("audio_attention_mask"),
            mask_probability=self.audio_mask_probability,
            min_span=self.min_span,
            max_span=self.max_span,
            zero_probability=self.audio_zero_prob,
            replace_probability=self.audio_replace_prob,
            generator=generator,
        )
        batch["input_features"] = audio.input_features
        batch["audio_labels"] = audio.targets
        batch["audio_labels_mask"] = audio.mask
        return batch
