"""Turbo model configuration (Zhang et al., "Turbo your multi-modal classification with contrastive learning")."""

import copy
from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .configuration_dsclap import (
    DSCLAP_PRESETS,
    WAV2VEC2_BASE_CONFIG,
    audio_text_config_kwargs,
    validate_audio_freezing,
)
from .presets import merge_preset

__all__ = ["TURBO_OBJECTIVES", "TURBO_PRESETS", "TurboConfig"]

# `turbo`: lambda * CE + (1 - lambda) * (two in-modal + four cross-modal InfoNCE terms over two dropout passes);
# `cross`: the paper's "+CL_cross" baseline, lambda * CE + (1 - lambda) * one cross-modal InfoNCE, one pass;
# `vanilla`: the paper's "Vanilla" baseline, plain CE on the concatenation, one pass.
TURBO_OBJECTIVES = ("turbo", "cross", "vanilla")

# The names under which transformers encoders keep the dropout after their feed-forward/hidden layers: wav2vec2-style,
# BERT-style, and Whisper/BART-style configs.
_HIDDEN_DROPOUT_ATTRIBUTES = ("hidden_dropout", "hidden_dropout_prob", "dropout")

# `small` and `tiny` reuse DSCLAP's encoders, so that a DSCLAP checkpoint of the same preset drops into Turbo.
TURBO_PRESETS: dict[str, dict[str, Any]] = {
    # The paper's encoders (Sec. 3.2): wav2vec 2.0-base and BERT-base (BertConfig's defaults), both 768 wide.
    "paper": {
        "audio_config": {"model_type": "wav2vec2", **WAV2VEC2_BASE_CONFIG},
        "text_config": {"model_type": "bert"},
        "joint_dim": 768,
    },
    "small": {
        "audio_config": copy.deepcopy(DSCLAP_PRESETS["small"]["audio_config"]),
        "text_config": copy.deepcopy(DSCLAP_PRESETS["small"]["text_config"]),
        "joint_dim": 128,
    },
    "tiny": {
        "audio_config": copy.deepcopy(DSCLAP_PRESETS["tiny"]["audio_config"]),
        "text_config": copy.deepcopy(DSCLAP_PRESETS["tiny"]["text_config"]),
        "joint_dim": 16,
    },
}


@strict
class TurboConfig(PreTrainedConfig):
    r"""Configuration of a Turbo audio-text classifier: any transformers audio encoder + any text encoder, masked
    mean pooling, fully-connected layers FC_a / FC_t into a joint space, and a linear classifier on
    `h_a ⊕ h_t`.

    Args:
        audio_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the audio encoder, of any type that takes raw `input_values` (wav2vec2, hubert, wavlm, ...) or
            spectrogram `input_features` (whisper: its encoder only, any length up to 30 s with padding masked).
            Defaults to wav2vec 2.0-base, the paper's. Its `use_weighted_layer_sum` pools a learned softmax-weighted
            sum of all the encoder's hidden states instead of the last one.
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the text encoder (any BERT-like encoder). Defaults to BERT-base, the paper's.
        joint_dim (`int`, *optional*, defaults to 768):
            d, the width of the joint space of `h_a = FC_a(e_a)` and `h_t = FC_t(e_t)` (Eq. 1). The paper does not
            state it; 768 keeps the width of its encoders.
        hidden_dropout (`float`, *optional*, defaults to 0.2):
            The dropout whose two independent masks make Turbo's two views (Sec. 2.1): written into the encoders'
            hidden dropout (`hidden_dropout` for wav2vec2-style, `hidden_dropout_prob` for BERT-style, `dropout` for
            Whisper configs) and applied after FC_a / FC_t. The paper's value. `None` leaves the encoders' own
            values (and uses 0.1 after the FC layers).
        temperature (`float`, *optional*, defaults to 0.05):
            tau of Eq. 2-3, fixed. The paper does not state it; 0.05 is SimCSE's, whose dropout-twice idea Turbo
            builds on.
        classification_weight (`float`, *optional*, defaults to 0.5):
            lambda of Eq. 6: `lambda * CE + (1 - lambda) * contrastive`. The paper's value; 1 gives plain CE.
        objective (`str`, *optional*, defaults to `"turbo"`):
            `"turbo"` (CE + the six InfoNCE terms of Eq. 4 from two forward passes), `"cross"` (the paper's
            "+CL_cross" baseline: CE + one cross-modal InfoNCE, one pass) or `"vanilla"` (plain CE, one pass).
        max_text_length (`int`, *optional*, defaults to 64):
            Token limit for transcripts; the processor truncates to it.
        max_audio_samples (`int`, *optional*, defaults to 160000):
            Sample limit for waveforms (10 s at 16 kHz); the processor rejects longer clips unless asked to
            truncate.
        freeze_audio_encoder (`bool`, *optional*, defaults to `False`):
            Keep the audio encoder's weights fixed.
        freeze_text_encoder (`bool`, *optional*, defaults to `False`):
            Keep the text encoder's weights fixed.
        freeze_audio_feature_encoder (`bool`, *optional*, defaults to `False`):
            Keep the audio encoder's convolution stem fixed (wav2vec2's feature encoder, Whisper's two
            convolutions).
        num_frozen_audio_layers (`int`, *optional*, defaults to 0):
            Keep the audio encoder's lowest this many transformer layers fixed. The stem below them stays trainable
            unless `freeze_audio_feature_encoder` is set too.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of FC_a, FC_t and the classifier.

    Example:

    ```python
    >>> from audiolang import TurboConfig, TurboForSequenceClassification
    >>> config = TurboConfig.from_preset("tiny", num_labels=4, objective="cross")
    >>> model = TurboForSequenceClassification(config)
    ```
    """

    model_type = "turbo"
    # Trainer's predictions keep the logits and the joint embeddings; the per-batch scalars and encoder states would
    # only be concatenated across the evaluation set for nothing.
    keys_to_ignore_at_inference = [
        "text_model_output",
        "audio_model_output",
        "classification_loss",
        "contrastive_loss",
        "audio_in_modal_loss",
        "text_in_modal_loss",
        "cross_modal_loss",
    ]
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(
            config_class=AutoConfig, model_type="wav2vec2", init_kwargs=WAV2VEC2_BASE_CONFIG
        ),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert"),
    }

    audio_config: PreTrainedConfig | dict | None = None
    text_config: PreTrainedConfig | dict | None = None
    joint_dim: int = 768
    hidden_dropout: float | int | None = 0.2
    temperature: float | int = 0.05
    classification_weight: float | int = 0.5
    objective: str = "turbo"
    max_text_length: int = 64
    max_audio_samples: int = 160_000
    freeze_audio_encoder: bool = False
    freeze_text_encoder: bool = False
    freeze_audio_feature_encoder: bool = False
    num_frozen_audio_layers: int = 0
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.hidden_dropout is not None:
            for sub_config in (self.audio_config, self.text_config):
                for name in _HIDDEN_DROPOUT_ATTRIBUTES:
                    if hasattr(sub_config, name):
                        setattr(sub_config, name, self.hidden_dropout)

    @property
    def fc_dropout(self) -> float:
        """Dropout after FC_a / FC_t."""
        return 0.1 if self.hidden_dropout is None else self.hidden_dropout

    def validate_turbo(self) -> None:
        """Part of `@strict` validation: reject values that would only fail later, inside a training step."""
        if self.objective not in TURBO_OBJECTIVES:
            raise ValueError(f"`objective` must be one of {TURBO_OBJECTIVES}, got {self.objective!r}.")
        for name in ("joint_dim", "temperature", "max_text_length", "max_audio_samples"):
            if getattr(self, name) <= 0:
                raise ValueError(f"`{name}` must be positive, got {getattr(self, name)}.")
        if not 0 <= self.classification_weight <= 1:
            raise ValueError(f"`classification_weight` must be in [0, 1], got {self.classification_weight}.")
        if self.hidden_dropout is not None and not 0 <= self.hidden_dropout < 1:
            raise ValueError(f"`hidden_dropout` must be in [0, 1), got {self.hidden_dropout}.")
        validate_audio_freezing(self)

    @classmethod
    def from_audio_text_configs(
        cls,
        audio_config: PreTrainedConfig,
        text_config: PreTrainedConfig,
        preset: str | None = None,
        **kwargs: Any,
    ) -> "TurboConfig":
        """Build a Turbo config around two existing encoder configs (e.g. those of a DSCLAP checkpoint): the other
        fields come from `preset` (`TURBO_PRESETS`, e.g. its `joint_dim`; the defaults when `None`), then
        `kwargs`."""
        return cls(**audio_text_config_kwargs(TURBO_PRESETS, preset, audio_config, text_config, kwargs))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "TurboConfig":
        """Build the config of a named architecture from `TURBO_PRESETS` (`"paper"`, `"small"` or `"tiny"`);
        `audio_config` / `text_config` dict overrides are merged into the preset's."""
        return cls(**merge_preset(TURBO_PRESETS, name, "Turbo", cls.sub_configs_defaults, overrides))


TurboConfig.register_for_auto_class()
