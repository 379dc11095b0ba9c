"""What the dual-encoder families (DSCLAP, Turbo) share: building an audio and a text encoder of any transformers
type, and encoding + masked mean pooling each modality.

A flat sibling of the modeling modules (imports nothing from `audiolang`), so that it travels with a checkpoint
loaded through `trust_remote_code=True`.
"""

import inspect
from typing import Any

import torch
from transformers import AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .pooling import masked_mean_pool

__all__ = ["DualEncoderMixin", "output_flags", "text_encoder_kwargs"]


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


class DualEncoderMixin:
    """Encoder construction and pooled encoding for `PreTrainedModel`s whose config nests `audio_config` and
    `text_config`. The encoders live as `audio_model` and `text_model`, so that checkpoints of the families that use
    this mixin share their encoder keys (a DSCLAP checkpoint's encoders load into a Turbo classifier)."""

    config: PreTrainedConfig
    audio_model: PreTrainedModel
    text_model: PreTrainedModel

    def _build_encoders(
        self,
        config: PreTrainedConfig,
        audio_model: PreTrainedModel | None,
        text_model: PreTrainedModel | None,
    ) -> None:
        if audio_model is None:
            audio_model = AutoModel.from_config(config.audio_config)
        if text_model is None:
            text_model = AutoModel.from_config(config.text_config, **text_encoder_kwargs(config.text_config))
        if audio_model.main_input_name != "input_values" or not hasattr(
            audio_model, "_get_feature_vector_attention_mask"
        ):
            raise ValueError(
                f"`audio_config` is a {config.audio_config.model_type!r} encoder ({type(audio_model).__name__}), "
                f"but {config.model_type} needs a raw-waveform encoder that takes `input_values` and maps sample "
                "masks to frame masks (wav2vec2, hubert, wavlm, data2vec-audio, ...)."
            )
        # The encoders share the composite config's sub-configs, so that later changes (attention implementation,
        # output flags) reach them, as in VisionTextDualEncoderModel.
        config.audio_config._attn_implementation = audio_model.config._attn_implementation
        config.text_config._attn_implementation = text_model.config._attn_implementation
        audio_model.config = config.audio_config
        text_model.config = config.text_config
        self.audio_model = audio_model
        self.text_model = text_model

    def _encode_audio(
        self,
        input_values: torch.Tensor | None,
        audio_attention_mask: torch.Tensor | None,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
    ) -> BaseModelOutputWithPooling:
        """Run the audio encoder and mean-pool its last hidden states over the real frames.

        The sample mask from the feature extractor becomes a frame mask through the encoder's own
        `_get_feature_vector_attention_mask` (the convolution arithmetic of wav2vec2-style feature encoders).
        """
        if input_values is None:
            raise ValueError("`input_values` is required: pass the processor's audio output.")
        outputs = self.audio_model(
            input_values=input_values,
            attention_mask=audio_attention_mask,
            **output_flags(output_attentions, output_hidden_states),
        )
        hidden_states = outputs.last_hidden_state
        frame_mask = None
        if audio_attention_mask is not None:
            frame_mask = self.audio_model._get_feature_vector_attention_mask(
                hidden_states.shape[1], audio_attention_mask
            )
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states,
            pooler_output=masked_mean_pool(hidden_states, frame_mask),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

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
            input_values, audio_attention_mask, output_attentions, output_hidden_states
        )
        text_outputs = self._encode_text(
            input_ids, attention_mask, token_type_ids, position_ids, output_attentions, output_hidden_states
        )
        return audio_outputs, text_outputs

    def _apply_encoder_freezing(self) -> None:
        """`config.freeze_audio_encoder` / `config.freeze_text_encoder`: fix that encoder's weights."""
        self.audio_model.requires_grad_(not self.config.freeze_audio_encoder)
        self.text_model.requires_grad_(not self.config.freeze_text_encoder)

    @staticmethod
    def _refreeze_loaded(loaded: Any) -> Any:
        """Re-apply the config's encoder freezing to what `PreTrainedModel.from_pretrained` returned (a model, or a
        tuple with `output_loading_info=True`): loading replaces every parameter by a new trainable one, which would
        silently undo the freezing done in `__init__`."""
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model._apply_encoder_freezing()
        return loaded
