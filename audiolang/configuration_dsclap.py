"""DSCLAP model configuration (Liu et al., "DSCLAP: Domain-Specific Contrastive Language-Audio Pre-Training")."""

import copy
from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .presets import merge_preset

__all__ = [
    "DSCLAP_CLASSIFIER_INPUTS",
    "DSCLAP_PRESETS",
    "DsclapConfig",
    "audio_text_config_kwargs",
    "validate_audio_freezing",
]

# What `DsclapForSequenceClassification` classifies: both pooled towers concatenated (the paper's fusion), or one
# tower alone, the single-modality baselines every fused score is reported beside.
DSCLAP_CLASSIFIER_INPUTS = ("audio_text", "text", "audio")


# The paper's encoders, which are also `DsclapConfig()`'s defaults: wav2vec2-base (the defaults of `Wav2Vec2Config`,
# also Turbo's audio encoder) and TinyBERT 4L-312D (huawei-noah/TinyBERT_General_4L_312D).
WAV2VEC2_BASE_CONFIG: dict[str, Any] = {
    # LayerDrop skips whole layers at random, which leaves their parameters without gradient and breaks
    # DistributedDataParallel without `find_unused_parameters` (and with gradient checkpointing).
    "layerdrop": 0.0,
}
_PAPER_TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 30522,
    "hidden_size": 312,
    "num_hidden_layers": 4,
    "num_attention_heads": 12,
    "intermediate_size": 1200,
    "max_position_embeddings": 512,
}

# Named architectures. Sub-config dicts are keyword arguments of the nested transformers configs; anything not
# listed keeps that config's default.
DSCLAP_PRESETS: dict[str, dict[str, Any]] = {
    # The paper does not state the projection width; 512 follows CLIP/CLAP.
    "paper": {
        "audio_config": {"model_type": "wav2vec2", **WAV2VEC2_BASE_CONFIG},
        "text_config": {"model_type": "bert", **_PAPER_TEXT_CONFIG},
        "projection_dim": 512,
    },
    # The demo's CPU-trainable model (~0.9M-parameter audio encoder): wav2vec2's real strides and layer-norm
    # convolutions as in "tiny", wide enough to learn words from a few thousand clips. 32 convolution channels:
    # 64 cost 1.7x the step time on 2 CPU cores for little gain at this data size. The text side is usually
    # replaced by a pretrained encoder (run_pretrain.py's default: all-MiniLM-L6-v2).
    "small": {
        "audio_config": {
            "model_type": "wav2vec2",
            "hidden_size": 128,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "intermediate_size": 512,
            "conv_dim": [32, 32, 32, 32, 32, 32, 32],
            "feat_extract_norm": "layer",
            "conv_bias": True,
            "num_conv_pos_embeddings": 32,
            "num_conv_pos_embedding_groups": 8,
            "layerdrop": 0.0,
            "mask_time_prob": 0.0,
        },
        "text_config": {
            "model_type": "bert",
            "vocab_size": 30522,
            "hidden_size": 128,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "intermediate_size": 512,
            "max_position_embeddings": 128,
        },
        "projection_dim": 128,
    },
    # A 1M-parameter model (nearly all of it the token embedding) for CPU tests. It keeps wav2vec2's
    # real convolution strides (one frame per 20 ms) and BERT's uncased vocabulary size, so it runs on the same
    # inputs as the paper preset.
    "tiny": {
        "audio_config": {
            "model_type": "wav2vec2",
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "conv_dim": [16, 16, 16, 16, 16, 16, 16],
            # Layer-norm convolutions (wav2vec2-large-lv60 style) instead of wav2vec2-base's group norm: group norm
            # normalises the first convolution over time, padding included, so a clip would embed differently
            # alone and inside a padded batch. With layer norm, padding is invisible (tested).
            "feat_extract_norm": "layer",
            "conv_bias": True,
            "num_conv_pos_embeddings": 16,
            "num_conv_pos_embedding_groups": 4,
            "layerdrop": 0.0,
            # SpecAugment's 10-frame masks would hide a large share of the demo's short clips.
            "mask_time_prob": 0.0,
        },
        "text_config": {
            "model_type": "bert",
            "vocab_size": 30522,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 64,
        },
        "projection_dim": 16,
    },
}


def validate_audio_freezing(config: PreTrainedConfig) -> None:
    """Reject a `num_frozen_audio_layers` outside `[0, audio_config.num_hidden_layers]` (DSCLAP and Turbo)."""
    num_layers = config.audio_config.num_hidden_layers
    if not 0 <= config.num_frozen_audio_layers <= num_layers:
        raise ValueError(
            f"`num_frozen_audio_layers` must be in [0, {num_layers}] (the audio encoder's layers), got "
            f"{config.num_frozen_audio_layers}."
        )


def audio_text_config_kwargs(
    presets: dict[str, dict[str, Any]],
    preset: str | None,
    audio_config: PreTrainedConfig,
    text_config: PreTrainedConfig,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """The keyword arguments of a dual-encoder config around two existing encoder configs: the fields of `preset`
    (none when `None`) other than its encoder configs, then `overrides`. The encoder configs are copied, so that
    the new config's changes (Turbo's dropout) do not reach the models they came from."""
    if preset is not None and preset not in presets:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {sorted(presets)}.")
    preset_fields = copy.deepcopy(presets[preset]) if preset is not None else {}
    return {
        **{key: value for key, value in preset_fields.items() if key not in ("audio_config", "text_config")},
        "audio_config": copy.deepcopy(audio_config),
        "text_config": copy.deepcopy(text_config),
        **overrides,
    }


@strict
class DsclapConfig(PreTrainedConfig):
    r"""Configuration of a DSCLAP dual encoder: any transformers audio encoder + any text encoder, mean pooling,
    linear projections to a joint space and a learnable temperature.

    Args:
        audio_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the audio encoder, of any model type that takes raw `input_values` (wav2vec2, hubert, wavlm,
            data2vec-audio, ...) or spectrogram `input_features` (whisper: its encoder only, taking any length up
            to 30 s with padding masked). A dict needs a `model_type` key unless it is wav2vec2. Defaults to the
            paper's wav2vec2-base. Its `use_weighted_layer_sum` (transformers' field of the audio config) pools a
            learned softmax-weighted sum of all the encoder's hidden states instead of the last one.
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the text encoder (any BERT-like encoder). A dict needs a `model_type` key unless it is BERT.
            Defaults to the paper's TinyBERT (4 layers, 312 wide).
        projection_dim (`int`, *optional*, defaults to 512):
            Width of the joint audio-text embedding space.
        logit_scale_init_value (`float`, *optional*, defaults to 1/0.07):
            Initial logit multiplier, i.e. 1 / initial temperature. The model stores its *log* in the `logit_scale`
            parameter, as CLIP does, and clamps the exponential at 100 when it is used.
        contrastive_weight (`float`, *optional*, defaults to 0.5):
            Weight lambda of the symmetric InfoNCE terms `L_a + L_t` (Eq. 8).
        matching_weight (`float`, *optional*, defaults to 0.5):
            Weight gamma of the language-audio matching terms `L_a* + L_t*` (Eq. 8).
        num_hard_negatives (`int`, *optional*, defaults to 1):
            K, the size of the pool of most similar non-matching items from which each anchor's hard negative is
            taken: 1 = the hardest one; K > 1 = one drawn uniformly from the top K.
        max_text_length (`int`, *optional*, defaults to 16):
            Token limit for transcripts (the paper's value); the processor truncates to it.
        max_audio_samples (`int`, *optional*, defaults to 80000):
            Sample limit for waveforms (5 s at 16 kHz, the paper's value); the processor rejects longer clips unless
            asked to truncate.
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout before the classifier of `DsclapForSequenceClassification`.
        classifier_inputs (`str`, *optional*, defaults to `"audio_text"`):
            What the classifier of `DsclapForSequenceClassification` reads: `"audio_text"` (the mean-pooled audio and
            text states concatenated), `"text"` (the text tower alone) or `"audio"` (the audio tower alone). With one
            tower, the other is neither run nor trained (its weights stay in the model, so checkpoints load the same
            way): the text-only and audio-only baselines of a fused classifier. `DsclapModel` ignores it.
        freeze_audio_encoder (`bool`, *optional*, defaults to `False`):
            Keep the audio encoder's weights fixed (paper, Table 4).
        freeze_text_encoder (`bool`, *optional*, defaults to `False`):
            Keep the text encoder's weights fixed (paper, Table 4).
        freeze_audio_feature_encoder (`bool`, *optional*, defaults to `False`):
            Keep the audio encoder's convolution stem fixed (wav2vec2's feature encoder, Whisper's two
            convolutions).
        num_frozen_audio_layers (`int`, *optional*, defaults to 0):
            Keep the audio encoder's lowest this many transformer layers fixed. The stem below them stays trainable
            unless `freeze_audio_feature_encoder` is set too.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of the projections and the classifier.

    Example:

    ```python
    >>> from audiolang import DsclapConfig, DsclapModel
    >>> config = DsclapConfig.from_preset("tiny")
    >>> model = DsclapModel(config)
    >>> config.audio_config.model_type, config.text_config.model_type
    ('wav2vec2', 'bert')
    ```
    """

    model_type = "dsclap"
    # Trainer's predictions keep logits and embeddings; the encoder states would be padded and concatenated across
    # the whole evaluation set for nothing.
    keys_to_ignore_at_inference = ["text_model_output", "audio_model_output"]
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(
            config_class=AutoConfig, model_type="wav2vec2", init_kwargs=WAV2VEC2_BASE_CONFIG
        ),
        "text_config": SubConfigSpec(
            config_class=AutoConfig, model_type="bert", init_kwargs=_PAPER_TEXT_CONFIG
        ),
    }

    audio_config: PreTrainedConfig | dict | None = None
    text_config: PreTrainedConfig | dict | None = None
    projection_dim: int = 512
    logit_scale_init_value: float | int = 1 / 0.07
    contrastive_weight: float | int = 0.5
    matching_weight: float | int = 0.5
    num_hard_negatives: int = 1
    max_text_length: int = 16
    max_audio_samples: int = 80_000
    classifier_dropout: float | int = 0.1
    classifier_inputs: str = "audio_text"
    freeze_audio_encoder: bool = False
    freeze_text_encoder: bool = False
    freeze_audio_feature_encoder: bool = False
    num_frozen_audio_layers: int = 0
    initializer_range: float = 0.02

    def validate_dsclap(self) -> None:
        """Part of `@strict` validation: reject values that would only fail later, inside a training step."""
        positive = {
            "projection_dim": self.projection_dim,
            "logit_scale_init_value": self.logit_scale_init_value,
            "num_hard_negatives": self.num_hard_negatives,
            "max_text_length": self.max_text_length,
            "max_audio_samples": self.max_audio_samples,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"`{name}` must be positive, got {value}.")
        if self.contrastive_weight < 0 or self.matching_weight < 0:
            raise ValueError(
                f"`contrastive_weight` and `matching_weight` must be >= 0, got {self.contrastive_weight} and "
                f"{self.matching_weight}."
            )
        if not 0 <= self.classifier_dropout < 1:
            raise ValueError(f"`classifier_dropout` must be in [0, 1), got {self.classifier_dropout}.")
        if self.classifier_inputs not in DSCLAP_CLASSIFIER_INPUTS:
            raise ValueError(
                f"`classifier_inputs` must be one of {DSCLAP_CLASSIFIER_INPUTS}, got {self.classifier_inputs!r}."
            )
        validate_audio_freezing(self)

    @classmethod
    def from_audio_text_configs(
        cls,
        audio_config: PreTrainedConfig,
        text_config: PreTrainedConfig,
        preset: str | None = None,
        **kwargs: Any,
    ) -> "DsclapConfig":
        """Build a DSCLAP config around two existing encoder configs (e.g. `AutoConfig.from_pretrained(...)`): the
        other fields come from `preset` (`DSCLAP_PRESETS`, e.g. its `projection_dim`; the defaults when `None`),
        then `kwargs`."""
        return cls(**audio_text_config_kwargs(DSCLAP_PRESETS, preset, audio_config, text_config, kwargs))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "DsclapConfig":
        """Build the config of a named architecture from `DSCLAP_PRESETS` (`"paper"`, `"small"` or `"tiny"`).

        `overrides` replace top-level fields; an `audio_config` / `text_config` dict is *merged* into the preset's,
        e.g. `DsclapConfig.from_preset("tiny", audio_config={"hidden_dropout": 0.0}, num_hard_negatives=4)`.
        """
        return cls(**merge_preset(DSCLAP_PRESETS, name, "DSCLAP", cls.sub_configs_defaults, overrides))


# Makes `save_pretrained` write an `auto_map` and copy this module next to the checkpoint, so that it loads with
# `trust_remote_code=True` where audiolang is not installed.
DsclapConfig.register_for_auto_class()
