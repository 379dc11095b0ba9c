"""What the dual-encoder families (DSCLAP, Turbo) share: building an audio and a text encoder of any transformers
type, encoding + masked mean pooling each modality, freezing, and building a model from two pretrained encoders.

The audio tower is any transformers speech encoder whose main input is raw waveforms (`input_values`: wav2vec2,
HuBERT, WavLM, data2vec-audio, ...) or spectrograms (`input_features`: Whisper, wav2vec2-BERT, ...), as long as it
maps its input mask to a frame mask (`_get_feature_vector_attention_mask`). One code path serves both: the model
passes the audio under the encoder's own `main_input_name`. Encoder-decoder speech models contribute their encoder,
replaced by a padding-aware variant where transformers' own ignores masks (`_AUDIO_ENCODER_CLASSES`).

A flat sibling of the modeling modules (imports nothing from `audiolang`), so that it travels with a checkpoint
loaded through `trust_remote_code=True`.
"""

import inspect
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import logging

from .pooling import masked_mean_pool
from .whisper_encoder import VariableLengthWhisperEncoder

logger = logging.get_logger(__name__)

__all__ = [
    "AUDIO_INPUT_NAMES",
    "DualEncoderMixin",
    "as_audio_encoder",
    "audio_encoder_layers",
    "build_audio_encoder",
    "load_audio_encoder",
    "min_audio_input_length",
    "output_flags",
    "text_encoder_kwargs",
]

# The main input names of the audio towers the dual encoders take: raw waveforms and spectrograms.
AUDIO_INPUT_NAMES = ("input_values", "input_features")

# Encoder-only replacements, by model type, for the encoders of encoder-decoder speech models: transformers'
# `WhisperEncoder` takes exactly 30 s and ignores masks, `VariableLengthWhisperEncoder` takes the padded batch.
_AUDIO_ENCODER_CLASSES: dict[str, type[PreTrainedModel]] = {"whisper": VariableLengthWhisperEncoder}


def build_audio_encoder(config: PreTrainedConfig) -> PreTrainedModel:
    """A randomly initialised audio tower for `config`: its `_AUDIO_ENCODER_CLASSES` entry, else `AutoModel`'s."""
    encoder_class = _AUDIO_ENCODER_CLASSES.get(config.model_type)
    return encoder_class(config) if encoder_class is not None else AutoModel.from_config(config)


def load_audio_encoder(name_or_path: str, **kwargs: Any) -> PreTrainedModel:
    """The pretrained audio tower of a checkpoint (hub id or folder); `kwargs` go to `from_pretrained`.

    A checkpoint with a task head (`Wav2Vec2ForCTC`) contributes its base model; a full Whisper checkpoint
    (`WhisperForConditionalGeneration`, e.g. one converted from CTranslate2) contributes its encoder, weights copied
    key for key into a `VariableLengthWhisperEncoder`, and the decoder is dropped.
    """
    return as_audio_encoder(AutoModel.from_pretrained(name_or_path, **kwargs))


def as_audio_encoder(model: PreTrainedModel) -> PreTrainedModel:
    """`model` as an audio tower: its `_AUDIO_ENCODER_CLASSES` replacement (same weights, config and dtype) for an
    encoder-decoder speech model such as Whisper, else `model` itself."""
    encoder_class = _AUDIO_ENCODER_CLASSES.get(model.config.model_type)
    if encoder_class is None or isinstance(model, encoder_class):
        return model
    return encoder_class.from_model(model)


def text_encoder_kwargs(config: PreTrainedConfig) -> dict[str, Any]:
    """`add_pooling_layer=False` for text encoders that have a pooler (BERT, RoBERTa, ...).

    The dual encoders mean-pool the last hidden states, so a `[CLS]` pooler would be dead weight that never gets a
    gradient, which DistributedDataParallel rejects unless `find_unused_parameters` is on.
    """
    model_class = AutoModel._model_mapping[type(config)]
    if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters:
        return {"add_pooling_layer": False}
    return {}


def output_flags(output_attentions: bool | None, output_hidden_states: bool | None) -> dict[str, bool]:
    """The output flags that were set, so that unset ones fall back to each encoder's own config."""
    flags = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
    return {name: value for name, value in flags.items() if value is not None}


def audio_encoder_layers(audio_model: PreTrainedModel) -> nn.ModuleList:
    """The transformer layers of an audio tower, lowest first: `encoder.layers` (wav2vec2 family) or `layers`
    (Whisper's encoder)."""
    layers = getattr(getattr(audio_model, "encoder", audio_model), "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(
            f"Cannot find the transformer layers of the {type(audio_model).__name__} audio encoder (`encoder.layers` "
            "or `layers`), so `num_frozen_audio_layers` cannot be applied: set it to 0."
        )
    return layers


def min_audio_input_length(audio_model: PreTrainedModel) -> int:
    """The fewest input steps (samples of `input_values`, frames of `input_features`) from which the audio tower
    makes one output frame: wav2vec2's convolution stem needs 400 samples (25 ms), Whisper's encoder one mel frame.
    """
    lengths = torch.arange(1, 1 + 2**17)
    frames = audio_model._get_feat_extract_output_lengths(lengths)
    return int(lengths[frames >= 1][0])


class DualEncoderMixin:
    """Encoder construction, pooled encoding and freezing for `PreTrainedModel`s whose config nests `audio_config`
    and `text_config`. The encoders live as `audio_model` and `text_model` (and the optional layer weights as
    `audio_layer_weights`), so that checkpoints of the families that use this mixin share those keys (a DSCLAP
    checkpoint's encoders load into a Turbo classifier)."""

    config: PreTrainedConfig
    config_class: type[PreTrainedConfig]
    audio_model: PreTrainedModel
    text_model: PreTrainedModel
    audio_layer_weights: nn.Parameter | None

    def _build_encoders(
        self,
        config: PreTrainedConfig,
        audio_model: PreTrainedModel | None,
        text_model: PreTrainedModel | None,
    ) -> None:
        audio_model = (
            build_audio_encoder(config.audio_config) if audio_model is None else as_audio_encoder(audio_model)
        )
        if text_model is None:
            text_model = AutoModel.from_config(config.text_config, **text_encoder_kwargs(config.text_config))
        if audio_model.main_input_name not in AUDIO_INPUT_NAMES or not hasattr(
            audio_model, "_get_feature_vector_attention_mask"
        ):
            raise ValueError(
                f"`audio_config` is a {config.audio_config.model_type!r} encoder ({type(audio_model).__name__}), "
                f"but {config.model_type} needs a raw-waveform encoder (`input_values`: wav2vec2, hubert, wavlm, "
                "data2vec-audio, ...) or a spectrogram encoder (`input_features`: whisper, ...) that maps its input "
                "mask to a frame mask."
            )
        # The encoders share the composite config's sub-configs, so that later changes (attention implementation,
        # output flags) reach them, as in VisionTextDualEncoderModel.
        config.audio_config._attn_implementation = audio_model.config._attn_implementation
        config.text_config._attn_implementation = text_model.config._attn_implementation
        audio_model.config = config.audio_config
        text_model.config = config.text_config
        self.audio_model = audio_model
        self.text_model = text_model
        # The model's main input is its audio tower's, which Trainer and the pipelines read.
        self.main_input_name = audio_model.main_input_name
        self.audio_layer_weights = None
        if getattr(config.audio_config, "use_weighted_layer_sum", False):
            # Softmax weights over the embedding output and every layer's output, as in
            # Wav2Vec2ForSequenceClassification: middle layers carry speaker and emotion better than the last.
            num_states = config.audio_config.num_hidden_layers + 1
            self.audio_layer_weights = nn.Parameter(torch.full((num_states,), 1.0 / num_states))
        # Parameters an encoder keeps fixed by design (Whisper's position table). Loading a checkpoint makes every
        # parameter trainable again, so `_apply_encoder_freezing` restores these.
        self._fixed_parameter_names = {
            name for name, parameter in self.named_parameters() if not parameter.requires_grad
        }

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # Equal layer weights, which a checkpoint saved without `use_weighted_layer_sum` lacks.
        super()._init_weights(module)
        if isinstance(module, DualEncoderMixin) and module.audio_layer_weights is not None:
            init.constant_(module.audio_layer_weights, 1.0 / module.audio_layer_weights.numel())

    def _audio_input(
        self, input_values: torch.Tensor | None, input_features: torch.Tensor | None
    ) -> torch.Tensor:
        """The audio under the name the audio tower reads, or a `ValueError` naming what is missing."""
        expected = self.audio_model.main_input_name
        given = {"input_values": input_values, "input_features": input_features}
        if given[expected] is None:
            other = next(name for name in given if name != expected)
            mismatch = (
                f"; got `{other}`, which a {'spectrogram' if other == 'input_features' else 'raw-waveform'} "
                f"encoder reads: use the processor saved with this model"
                if given[other] is not None
                else ""
            )
            raise ValueError(
                f"`{expected}` is required: pass the processor's audio output (the "
                f"{self.config.audio_config.model_type} audio encoder reads `{expected}`){mismatch}."
            )
        return given[expected]

    def _check_audio_lengths(
        self, audio_input: torch.Tensor, audio_attention_mask: torch.Tensor | None
    ) -> None:
        """A `ValueError` naming the first clip too short for one output frame of the audio tower; otherwise a
        padded clip would silently pool to zeros, and an unpadded one fail inside a convolution."""
        if audio_attention_mask is not None:
            lengths = audio_attention_mask.sum(-1)
        else:
            # Time is the last axis of waveforms `(batch, samples)` and of Whisper's `(batch, mel bins, frames)`.
            lengths = torch.full((audio_input.shape[0],), audio_input.shape[-1])
        too_short = (self.audio_model._get_feat_extract_output_lengths(lengths) < 1).nonzero()
        if len(too_short) > 0:
            row = int(too_short[0])
            name = self.audio_model.main_input_name
            unit = "samples" if name == "input_values" else "frames"
            raise ValueError(
                f"Clip {row} has {int(lengths[row])} {unit} of `{name}`, fewer than the "
                f"{min_audio_input_length(self.audio_model)} the {self.config.audio_config.model_type} audio encoder "
                f"needs for one output frame: drop such short clips, or pad them with silence."
            )

    def _encode_audio(
        self,
        input_values: torch.Tensor | None,
        input_features: torch.Tensor | None,
        audio_attention_mask: torch.Tensor | None,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
    ) -> BaseModelOutputWithPooling:
        """Run the audio encoder and mean-pool its last hidden states (or, with `use_weighted_layer_sum`, the
        softmax-weighted sum of all its hidden states) over the real frames (`pool_audio_states`)."""
        audio_input = self._audio_input(input_values, input_features)
        self._check_audio_lengths(audio_input, audio_attention_mask)
        if self.audio_layer_weights is not None:
            output_hidden_states = True
        outputs = self.audio_model(
            **{self.audio_model.main_input_name: audio_input},
            attention_mask=audio_attention_mask,
            **output_flags(output_attentions, output_hidden_states),
        )
        hidden_states = outputs.last_hidden_state
        pooled_states = hidden_states
        if self.audio_layer_weights is not None:
            weights = self.audio_layer_weights.softmax(dim=-1)
            pooled_states = torch.einsum("l,lbtd->btd", weights, torch.stack(outputs.hidden_states))
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states,
            pooler_output=self.pool_audio_states(pooled_states, audio_attention_mask),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def pool_audio_states(
        self, hidden_states: torch.Tensor, audio_attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """`(batch, dim)`: the masked mean over each clip's real frames of audio-tower states `(batch, frames, dim)`,
        e.g. any entry of the tower's `hidden_states`, pooled exactly as the model pools its own audio embedding.

        The input mask from the feature extractor (`audio_attention_mask`: samples for waveforms, mel frames for
        spectrograms) becomes a frame mask through the encoder's own `_get_feature_vector_attention_mask` (its
        convolution arithmetic); without a mask every frame counts.
        """
        frame_mask = None
        if audio_attention_mask is not None:
            frame_mask = self.audio_model._get_feature_vector_attention_mask(
                hidden_states.shape[1], audio_attention_mask
            )
        return masked_mean_pool(hidden_states, frame_mask)

    def _encode_text(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
    ) -> BaseModelOutputWithPooling:
        """Run the text encoder and mean-pool its last hidden states over the real tokens."""
        if input_ids is None:
            raise ValueError("`input_ids` is required: pass the processor's (or tokenizer's) text output.")
        # Only forwarded when given: encoders such as DistilBERT take neither argument.
        optional = {"token_type_ids": token_type_ids, "position_ids": position_ids}
        outputs = self.text_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            **{name: value for name, value in optional.items() if value is not None},
            **output_flags(output_attentions, output_hidden_states),
        )
        hidden_states = outputs.last_hidden_state
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states,
            pooler_output=masked_mean_pool(hidden_states, attention_mask),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def _encode_pair(
        self,
        input_values: torch.Tensor | None,
        input_features: torch.Tensor | None,
        audio_attention_mask: torch.Tensor | None,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
    ) -> tuple[BaseModelOutputWithPooling, BaseModelOutputWithPooling]:
        """`(audio_outputs, text_outputs)` of `_encode_audio` and `_encode_text` on a batch of both modalities."""
        audio_outputs = self._encode_audio(
            input_values, input_features, audio_attention_mask, output_attentions, output_hidden_states
        )
        text_outputs = self._encode_text(
            input_ids, attention_mask, token_type_ids, position_ids, output_attentions, output_hidden_states
        )
        return audio_outputs, text_outputs

    def _apply_encoder_freezing(self) -> None:
        """Fix the encoder weights the config asks for: `freeze_audio_encoder` / `freeze_text_encoder` (a whole
        encoder), `freeze_audio_feature_encoder` (the audio tower's convolution stem) and `num_frozen_audio_layers`
        (its lowest transformer layers)."""
        config = self.config
        self.audio_model.requires_grad_(not config.freeze_audio_encoder)
        self.text_model.requires_grad_(not config.freeze_text_encoder)
        if config.freeze_audio_feature_encoder:
            if not hasattr(self.audio_model, "freeze_feature_encoder"):
                raise ValueError(
                    f"`freeze_audio_feature_encoder` is set, but the {type(self.audio_model).__name__} audio encoder "
                    "has no convolutional feature encoder to freeze (`freeze_feature_encoder`): unset it."
                )
            self.audio_model.freeze_feature_encoder()
        if config.num_frozen_audio_layers > 0:
            audio_encoder_layers(self.audio_model)[: config.num_frozen_audio_layers].requires_grad_(False)
        for name, parameter in self.named_parameters():
            if name in self._fixed_parameter_names:
                parameter.requires_grad_(False)

    @staticmethod
    def _refreeze_loaded(loaded: Any) -> Any:
        """Re-apply the config's encoder freezing to what `PreTrainedModel.from_pretrained` returned (a model, or a
        tuple with `output_loading_info=True`): loading replaces every parameter by a new trainable one, which would
        silently undo the freezing done in `__init__`."""
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model._apply_encoder_freezing()
        return loaded

    @classmethod
    def from_audio_text_pretrained(
        cls,
        audio_model_name_or_path: str | None,
        text_model_name_or_path: str | None,
        preset: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Build the model from a pretrained audio encoder and a pretrained text encoder.

        The encoders keep their weights; everything else (projections, temperature, layer weights, classifier) is
        newly initialised. Each path is a hub id or a local folder. A checkpoint with a task head (`Wav2Vec2ForCTC`)
        contributes its base encoder; a full Whisper checkpoint (`WhisperForConditionalGeneration`) its encoder,
        and the decoder is dropped. Either path may be `None`: that encoder is then built from `preset` (or the
        family's default config) with random weights.

        The model is built from its final config and the encoder weights are copied in, so that every config field
        reaches the encoders (Turbo's `hidden_dropout`, the freezing switches) and the model is in torch's default
        dtype whatever the checkpoints' (a converted Whisper may be float16).

        Args:
            audio_model_name_or_path: The audio encoder checkpoint (wav2vec2, hubert, wavlm, whisper, ...).
            text_model_name_or_path: The text encoder checkpoint (BERT-like).
            preset: A name of the family's presets whose fields other than the encoder configs (e.g.
                `projection_dim`) the config takes; the family's defaults when `None`.
            kwargs: Keyword arguments prefixed with `audio_` or `text_` go to that encoder's `from_pretrained`
                (e.g. `audio_attn_implementation="eager"`, `audio_use_weighted_layer_sum=True`); the others update
                the config (e.g. `projection_dim=256`, `num_hard_negatives=4`, `num_frozen_audio_layers=2`).

        Example:

        ```python
        >>> model = DsclapModel.from_audio_text_pretrained(
        ...     "openai/whisper-base", "huawei-noah/TinyBERT_General_4L_312D", preset="paper", num_frozen_audio_layers=2
        ... )
        ```
        """
        audio_kwargs = {
            key[len("audio_") :]: kwargs.pop(key) for key in list(kwargs) if key.startswith("audio_")
        }
        text_kwargs = {
            key[len("text_") :]: kwargs.pop(key) for key in list(kwargs) if key.startswith("text_")
        }
        encoders: dict[str, PreTrainedModel] = {}
        if audio_model_name_or_path is not None:
            encoders["audio"] = load_audio_encoder(audio_model_name_or_path, **audio_kwargs)
        if text_model_name_or_path is not None:
            text_config = text_kwargs.pop("config", None) or AutoConfig.from_pretrained(
                text_model_name_or_path
            )
            encoders["text"] = AutoModel.from_pretrained(
                text_model_name_or_path, config=text_config, **text_encoder_kwargs(text_config), **text_kwargs
            )
        defaults = cls.config_class.from_preset(preset) if preset is not None else cls.config_class()
        sub_configs = {
            f"{modality}_config": encoders[modality].config
            if modality in encoders
            else getattr(defaults, name)
            for modality, name in (("audio", "audio_config"), ("text", "text_config"))
        }
        config = cls.config_class.from_audio_text_configs(**sub_configs, preset=preset, **kwargs)
        for modality, encoder in encoders.items():
            getattr(config, f"{modality}_config")._attn_implementation = encoder.config._attn_implementation
        model = cls(config)
        for modality, encoder in encoders.items():
            # In place, so the freezing applied in `__init__` stays.
            getattr(model, f"{modality}_model").load_state_dict(encoder.state_dict())
        new = sorted(
            {name.split(".")[0] for name, _ in model.named_parameters()} - {"audio_model", "text_model"}
        )
        logger.warning(
            "%s newly initialised: train the model (e.g. run_scripts/run_pretrain.py) before using its outputs.",
            ", ".join(f"`{name}`" for name in new),
        )
        return model
