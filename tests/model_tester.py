"""Per-family testers for the common model suite (`test_modeling_common.py`), in the spirit of transformers'
`ModelTester` classes: a tiny config without dropout, seeded padded inputs, and the model classes to check, each
with the targets that make its forward compute a loss and the outputs that belong to one row.

Also the padded frame batches that the CTAL and lrat tests share (`frame_batch`, `row_alone`) and the tiny Whisper
config of the Whisper-tower tests (`whisper_config`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from transformers import (
    AutoModel,
    AutoModelForAudioXVector,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    PreTrainedConfig,
    WhisperConfig,
)

from audiolang import (
    CtalConfig,
    CtalForPreTraining,
    CtalForSequenceClassification,
    CtalForXVector,
    CtalModel,
    DsclapConfig,
    DsclapForSequenceClassification,
    DsclapModel,
    LratConfig,
    LratForPreTraining,
    LratForSequenceClassification,
    LratForXVector,
    LratModel,
    TurboConfig,
    TurboForSequenceClassification,
    TurboModel,
)

Batch = dict[str, torch.Tensor]
NUM_LABELS = 3
# The frame families' vocabulary; `<s>` = 0, pad = 1, `</s>` = 2, mask = 4 as in their tokenizer, words from 5.
FRAME_VOCAB = 64
FRAME_PAD = 1


# --- inputs --------------------------------------------------------------------------------------------------------


def frame_batch(
    text_lengths: tuple[int, ...], frame_counts: tuple[int, ...], seed: int = 0, vocab_size: int = FRAME_VOCAB
) -> Batch:
    """CTAL / lrat inputs: right-padded `<s> ... </s>` texts and 160-dim frame sequences of the given lengths, the
    padding filled with junk so that a leak would show."""
    generator = torch.Generator().manual_seed(seed)
    batch, max_text, max_frames = len(text_lengths), max(text_lengths), max(frame_counts)
    input_ids = torch.full((batch, max_text), FRAME_PAD)
    attention_mask = torch.zeros(batch, max_text, dtype=torch.long)
    input_features = 5 * torch.randn(batch, max_frames, 160, generator=generator)  # junk in the padding
    audio_attention_mask = torch.zeros(batch, max_frames, dtype=torch.long)
    for row, (length, frames) in enumerate(zip(text_lengths, frame_counts, strict=True)):
        input_ids[row, :length] = torch.randint(5, vocab_size, (length,), generator=generator)
        input_ids[row, 0], input_ids[row, length - 1] = 0, 2
        attention_mask[row, :length] = 1
        input_features[row, :frames] = torch.randn(frames, 160, generator=generator)
        audio_attention_mask[row, :frames] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "input_features": input_features,
        "audio_attention_mask": audio_attention_mask,
    }


# Which inputs are padded, and how: `{input: (the mask that marks its real steps, the time axis)}`.
FRAME_PADDING = {
    "input_ids": ("attention_mask", 1),
    "attention_mask": ("attention_mask", 1),
    "input_features": ("audio_attention_mask", 1),
    "audio_attention_mask": ("audio_attention_mask", 1),
}


def row_alone(batch: Batch, row: int, padding: dict[str, tuple[str, int]] = FRAME_PADDING) -> Batch:
    """Row `row` of a padded batch, without its padding; inputs that `padding` does not name keep their length."""
    alone = {}
    for key, value in batch.items():
        value = value[row : row + 1]
        if key in padding:
            mask, axis = padding[key]
            value = value.narrow(axis, 0, int(batch[mask][row].sum()))
        alone[key] = value
    return alone


def _lengths(generator: torch.Generator, batch_size: int, low: int, high: int) -> list[int]:
    """Seeded lengths in `[low, high]`, the last row the longest, so that every other row is padded."""
    lengths = torch.randint(low, high, (batch_size,), generator=generator).tolist()
    lengths[-1] = high
    return lengths


def _text(generator: torch.Generator, lengths: list[int], vocab_size: int) -> Batch:
    """BERT-style `[CLS] ... [SEP]` token ids (0 = `[PAD]`, 2 / 3 = `[CLS]` / `[SEP]`), right-padded."""
    input_ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, length in enumerate(lengths):
        input_ids[row, :length] = torch.randint(5, vocab_size, (length,), generator=generator)
        input_ids[row, 0], input_ids[row, length - 1] = 2, 3
        attention_mask[row, :length] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": torch.zeros_like(input_ids),
    }


def waveform_inputs(batch_size: int, seed: int) -> Batch:
    """Raw-waveform dual-encoder inputs (wav2vec2 tower, BERT text): 0.2-0.5 s clips zero-padded as
    `DsclapFeatureExtractor` pads them (the convolution stem reads across the padding, so its value matters)."""
    generator = torch.Generator().manual_seed(seed)
    samples = _lengths(generator, batch_size, 3_200, 8_000)
    input_values = torch.zeros(batch_size, max(samples))
    audio_attention_mask = torch.zeros(batch_size, max(samples), dtype=torch.long)
    for row, length in enumerate(samples):
        input_values[row, :length] = 0.1 * torch.randn(length, generator=generator)
        audio_attention_mask[row, :length] = 1
    text = _text(generator, _lengths(generator, batch_size, 3, 8), vocab_size=100)
    return {"input_values": input_values, "audio_attention_mask": audio_attention_mask, **text}


def spectrogram_inputs(batch_size: int, seed: int) -> Batch:
    """Whisper-tower inputs: `(batch, 80, frames)` log-mel spectrograms of 21-50 frames (odd and even counts, for
    both ends of the stride-2 convolution) with junk in the padding, which the encoder masks."""
    generator = torch.Generator().manual_seed(seed)
    frames = _lengths(generator, batch_size, 21, 50)
    input_features = 3 + torch.randn(batch_size, 80, max(frames), generator=generator)  # junk in the padding
    audio_attention_mask = torch.zeros(batch_size, max(frames), dtype=torch.long)
    for row, count in enumerate(frames):
        input_features[row, :, :count] = torch.randn(80, count, generator=generator)
        audio_attention_mask[row, :count] = 1
    text = _text(generator, _lengths(generator, batch_size, 3, 8), vocab_size=100)
    return {"input_features": input_features, "audio_attention_mask": audio_attention_mask, **text}


def frame_inputs(batch_size: int, seed: int) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    text_lengths = _lengths(generator, batch_size, 3, 8)
    frame_counts = _lengths(generator, batch_size, 20, 50)
    return frame_batch(tuple(text_lengths), tuple(frame_counts), seed=seed)


DUAL_ENCODER_TEXT_PADDING = {
    "input_ids": ("attention_mask", 1),
    "attention_mask": ("attention_mask", 1),
    "token_type_ids": ("attention_mask", 1),
}
WAVEFORM_PADDING = {
    "input_values": ("audio_attention_mask", 1),
    "audio_attention_mask": ("audio_attention_mask", 1),
    **DUAL_ENCODER_TEXT_PADDING,
}
SPECTROGRAM_PADDING = {
    "input_features": ("audio_attention_mask", 2),
    "audio_attention_mask": ("audio_attention_mask", 1),
    **DUAL_ENCODER_TEXT_PADDING,
}


# --- targets ---------------------------------------------------------------------------------------------------------


def class_labels(inputs: Batch, generator: torch.Generator) -> Batch:
    return {"labels": torch.randint(NUM_LABELS, (len(inputs["input_ids"]),), generator=generator)}


def _token_labels(input_ids: torch.Tensor, mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The ids of about a third of the real tokens (the second of each row always) and -100 elsewhere."""
    chosen = (torch.rand(input_ids.shape, generator=generator) < 0.3) & mask.bool()
    chosen[:, 1] = True
    return input_ids.masked_fill(~chosen, -100)


def _frame_labels(inputs: Batch, generator: torch.Generator) -> Batch:
    """Reconstruction targets on about a third of the frames, padding included (which the loss must skip)."""
    features = inputs["input_features"]
    return {
        "audio_labels": torch.randn(features.shape, generator=generator),
        "audio_labels_mask": torch.rand(features.shape[:2], generator=generator) < 0.3,
    }


def ctal_pretraining_targets(inputs: Batch, generator: torch.Generator) -> Batch:
    return {
        "labels": _token_labels(inputs["input_ids"], inputs["attention_mask"], generator),
        **_frame_labels(inputs, generator),
    }


def lrat_pretraining_targets(inputs: Batch, generator: torch.Generator) -> Batch:
    """Targets of every loss part: the cross-modal denoising and the intra-modal (IDAE) passes."""
    idae = _frame_labels(inputs, generator)
    return {
        **ctal_pretraining_targets(inputs, generator),
        "idae_input_ids": inputs["input_ids"],
        "idae_attention_mask": inputs["attention_mask"],
        "idae_labels": _token_labels(inputs["input_ids"], inputs["attention_mask"], generator),
        "idae_input_features": inputs["input_features"],
        "idae_audio_attention_mask": inputs["audio_attention_mask"],
        "idae_audio_labels": idae["audio_labels"],
        "idae_audio_labels_mask": idae["audio_labels_mask"],
    }


def no_targets(inputs: Batch, generator: torch.Generator) -> Batch:
    return {}


# --- configs ---------------------------------------------------------------------------------------------------------


def whisper_config(**overrides: Any) -> WhisperConfig:
    """A tiny multilingual-shaped Whisper (2 encoder layers, 64 wide) with the real 80 mel bins and 30 s table."""
    kwargs = {
        "d_model": 64,
        "encoder_layers": 2,
        "decoder_layers": 1,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 128,
        "decoder_ffn_dim": 128,
        "num_mel_bins": 80,
        "max_source_positions": 1500,
        "vocab_size": 100,
        "max_target_positions": 32,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "decoder_start_token_id": 1,
    }
    return WhisperConfig(**{**kwargs, **overrides})


_NO_WAV2VEC2_DROPOUT = {
    "hidden_dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "feat_proj_dropout": 0.0,
}
_NO_BERT_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def dsclap_config(**overrides: Any) -> DsclapConfig:
    """The tiny preset without dropout; `audio_config` / `text_config` overrides are merged into the preset's."""
    audio = {**_NO_WAV2VEC2_DROPOUT, **overrides.pop("audio_config", {})}
    text = {**_NO_BERT_DROPOUT, **overrides.pop("text_config", {})}
    overrides.setdefault("classifier_dropout", 0.0)
    return DsclapConfig.from_preset("tiny", audio_config=audio, text_config=text, **overrides)


def dsclap_whisper_config(**overrides: Any) -> DsclapConfig:
    return DsclapConfig.from_audio_text_configs(
        whisper_config(),
        dsclap_config().text_config,
        preset="tiny",
        classifier_dropout=0.0,
        num_labels=NUM_LABELS,
        **overrides,
    )


def turbo_config(**overrides: Any) -> TurboConfig:
    # `hidden_dropout` is written into both encoders and FC_a / FC_t; with it at 0 Turbo's two passes are equal.
    return TurboConfig.from_preset(
        "tiny",
        hidden_dropout=0.0,
        audio_config=_NO_WAV2VEC2_DROPOUT,
        text_config=_NO_BERT_DROPOUT,
        num_labels=NUM_LABELS,
        **overrides,
    )


_FRAME_FAMILY_DEFAULTS = {
    "vocab_size": FRAME_VOCAB,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "classifier_dropout": 0.0,
    "max_position_embeddings": 32,
    "num_labels": NUM_LABELS,
}


def ctal_config(**overrides: Any) -> CtalConfig:
    return CtalConfig.from_preset("tiny", **{**_FRAME_FAMILY_DEFAULTS, "max_audio_frames": 128, **overrides})


def lrat_config(**overrides: Any) -> LratConfig:
    defaults = {"max_audio_frames": 200, "text_translation_length": 10, "audio_translation_length": 60}
    return LratConfig.from_preset("tiny", **{**_FRAME_FAMILY_DEFAULTS, **defaults, **overrides})


# --- testers ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCase:
    """One model class of a family.

    Attributes:
        model_class: The class under test.
        auto_class: The Auto class that loads it from a saved folder.
        targets: `targets(inputs, generator)`: the extra forward arguments that make it compute its loss.
        row_outputs: The outputs with one entry per row, for padding invariance: `{name: the input mask that gives
            the row's length along axis 1}`, None for one vector per row.
    """

    model_class: type
    auto_class: type
    targets: Callable[[Batch, torch.Generator], Batch]
    row_outputs: dict[str, str | None]

    @property
    def id(self) -> str:
        return self.model_class.__name__


@dataclass(frozen=True)
class FamilyTester:
    """A family's tiny config factory, its seeded padded inputs and the model classes the common suite checks."""

    name: str
    make_config: Callable[..., PreTrainedConfig]
    make_inputs: Callable[[int, int], Batch]
    padding: dict[str, tuple[str, int]]
    cases: tuple[ModelCase, ...]

    def prepare_inputs(self, batch_size: int = 3, seed: int = 0) -> Batch:
        return self.make_inputs(batch_size, seed)

    def targets(self, case: ModelCase, inputs: Batch, seed: int = 0) -> Batch:
        return case.targets(inputs, torch.Generator().manual_seed(seed))

    def build(self, case: ModelCase, seed: int = 0, **overrides: Any) -> Any:
        torch.manual_seed(seed)
        return case.model_class(self.make_config(**overrides))

    def row_alone(self, inputs: Batch, row: int) -> Batch:
        return row_alone(inputs, row, self.padding)


_DUAL_ENCODER_ROWS = {"audio_embeds": None, "text_embeds": None}
_CLASSIFIER_ROWS = {"logits": None, "audio_embeds": None, "text_embeds": None}
_FUSION_ROWS = {"logits": None, "embeddings": None}
_BOTH_STREAMS = {
    "text_last_hidden_state": "attention_mask",
    "audio_last_hidden_state": "audio_attention_mask",
}


def _dsclap_cases() -> tuple[ModelCase, ...]:
    return (
        ModelCase(DsclapModel, AutoModel, no_targets, _DUAL_ENCODER_ROWS),
        ModelCase(
            DsclapForSequenceClassification,
            AutoModelForSequenceClassification,
            class_labels,
            {"logits": None},
        ),
    )


TESTERS = (
    FamilyTester(
        "dsclap",
        partial(dsclap_config, num_labels=NUM_LABELS),
        waveform_inputs,
        WAVEFORM_PADDING,
        _dsclap_cases(),
    ),
    FamilyTester(
        "dsclap-whisper", dsclap_whisper_config, spectrogram_inputs, SPECTROGRAM_PADDING, _dsclap_cases()
    ),
    FamilyTester(
        "turbo",
        turbo_config,
        waveform_inputs,
        WAVEFORM_PADDING,
        (
            ModelCase(
                TurboModel, AutoModel, lambda inputs, generator: {"return_loss": True}, _DUAL_ENCODER_ROWS
            ),
            ModelCase(
                TurboForSequenceClassification,
                AutoModelForSequenceClassification,
                class_labels,
                _CLASSIFIER_ROWS,
            ),
        ),
    ),
    FamilyTester(
        "ctal",
        ctal_config,
        frame_inputs,
        FRAME_PADDING,
        (
            ModelCase(CtalModel, AutoModel, no_targets, _BOTH_STREAMS),
            ModelCase(
                CtalForPreTraining,
                AutoModelForPreTraining,
                ctal_pretraining_targets,
                {"prediction_logits": "attention_mask", "audio_predictions": "audio_attention_mask"},
            ),
            ModelCase(
                CtalForSequenceClassification, AutoModelForSequenceClassification, class_labels, _FUSION_ROWS
            ),
            ModelCase(CtalForXVector, AutoModelForAudioXVector, class_labels, _FUSION_ROWS),
        ),
    ),
    FamilyTester(
        "lrat",
        lrat_config,
        frame_inputs,
        FRAME_PADDING,
        (
            ModelCase(
                LratModel,
                AutoModel,
                no_targets,
                {
                    **_BOTH_STREAMS,
                    "text_unimodal_last_hidden_state": "attention_mask",
                    "audio_unimodal_last_hidden_state": "audio_attention_mask",
                },
            ),
            ModelCase(
                LratForPreTraining,
                AutoModelForPreTraining,
                lrat_pretraining_targets,
                {
                    "prediction_logits": "attention_mask",
                    "audio_predictions": "audio_attention_mask",
                },
            ),
            ModelCase(
                LratForSequenceClassification, AutoModelForSequenceClassification, class_labels, _FUSION_ROWS
            ),
            ModelCase(LratForXVector, AutoModelForAudioXVector, class_labels, _FUSION_ROWS),
        ),
    ),
)
