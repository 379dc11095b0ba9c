"""Data collators: turn ``datasets`` rows (decoded audio + text [+ label]) into model batches.

Like transformers' ``DataCollatorWithPadding``, a collator runs in the ``DataLoader`` (its workers too),
so decoding and padding happen per batch and only for the rows of that batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature

from ..data.asr import audio_to_array


@dataclass
class DataCollatorForAudioText:
    """Collate (audio, text[, label]) rows with a joint audio+text processor (e.g. ``DsclapProcessor``).

    Args:
        processor: called as ``processor(audio=..., text=..., sampling_rate=..., truncate_audio=...,
            return_tensors="pt")``.
        audio_column: a decoded ``datasets.Audio`` column (or ``{"array", "sampling_rate"}`` dicts).
        text_column: the transcripts (``asr_text`` for ASR-transcribed input, ``text`` for manual).
        label_column: if set, its values become ``labels`` (int64 for classes, float32 for regression).
        sampling_rate: the rate the processor expects; rows at another rate are an error, not resampled
            (cast the column with ``Audio(sampling_rate=...)`` to resample once, in ``datasets``).
        truncate_audio: crop clips longer than the processor's ``max_audio_samples`` (the DSCLAP paper's
            80,000-sample limit is such a crop) instead of raising.
        empty_text: what an empty transcript is encoded as. A recogniser that heard no words is real
            evidence (often far-field talk), so the row is kept; the default is the tokenizer's unknown
            token. Pre-training should drop such rows instead (``drop_empty_transcripts``): identical
            empty texts would be false negatives of each other.
    """

    processor: Any
    audio_column: str = "audio"
    text_column: str = "asr_text"
    label_column: str | None = None
    sampling_rate: int = 16_000
    truncate_audio: bool = True
    empty_text: str | None = None

    def __call__(self, features: Sequence[dict[str, Any]]) -> BatchFeature:
        audio = []
        for i, row in enumerate(features):
            array, rate = audio_to_array(row[self.audio_column])
            if rate != self.sampling_rate:
                raise ValueError(
                    f"row {i} of the batch: `{self.audio_column}` is sampled at {rate} Hz, expected "
                    f"{self.sampling_rate}; cast the column with datasets.Audio(sampling_rate={self.sampling_rate})"
                )
            audio.append(np.asarray(array, dtype=np.float32))
        placeholder = self.empty_text or self.processor.tokenizer.unk_token
        text = [row[self.text_column] if row[self.text_column].strip() else placeholder for row in features]
        batch = self.processor(
            audio=audio,
            text=text,
            sampling_rate=self.sampling_rate,
            truncate_audio=self.truncate_audio,
            return_tensors="pt",
        )
        if self.label_column is not None:
            labels = [row[self.label_column] for row in features]
            dtype = torch.float32 if isinstance(labels[0], float) else torch.long
            batch["labels"] = torch.tensor(labels, dtype=dtype)
        return batch
