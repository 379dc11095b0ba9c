"""PyTorch Turbo: audio-text classification with in-modal and cross-modal contrastive learning from two dropout
forward passes (Zhang et al., Interspeech 2023).

`TurboModel` is the dual encoder of Fig. 1: any transformers speech encoder and any text encoder, masked mean
pooling, and fully-connected layers FC_a / FC_t (followed by dropout) into a joint space of width d.
`TurboForSequenceClassification` adds the linear classifier on `h_a ⊕ h_t` (Eq. 5) and trains with
`lambda * CE + (1 - lambda) * l_Turbo` (Eq. 6), where `l_Turbo` is the sum of two in-modal and four cross-modal
InfoNCE terms over the two passes' embeddings (Eq. 2-4, `audiolang.losses.turbo_loss`, negatives gathered from every
process). The paper's two baselines are `objective="vanilla"` and `objective="cross"`.

The encoders sit under the same names as DSCLAP's (`audio_model`, `text_model`), so the encoders of a pre-trained
DSCLAP checkpoint load directly: `TurboForSequenceClassification.from_pretrained(dsclap_folder, num_labels=...)`.
"""

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput, logging
from transformers.utils.generic import can_return_tuple

from .auto_map import FamilyAutoMapMixin
from .configuration_turbo import TurboConfig
from .dual_encoder import DualEncoderMixin
from .losses import global_info_nce, turbo_loss

logger = logging.get_logger(__name__)

__all__ = [
    "TurboForSequenceClassification",
    "TurboModel",
    "TurboOutput",
    "TurboPreTrainedModel",
    "TurboSequenceClassifierOutput",
]


def _to_tuple(output: ModelOutput) -> tuple[Any, ...]:
    return tuple(value.to_tuple() if isinstance(value, ModelOutput) else value for value in output.values())


@dataclass
class TurboOutput(ModelOutput):
    r"""Output of [`TurboModel`]; the first seven fields have CLAP's names and order.

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            The objective's contrastive loss (`l_Turbo` of Eq. 4 for `"turbo"`, one cross-modal InfoNCE for
            `"cross"`), returned when `return_loss` is set.
        logits_per_audio (`torch.Tensor` of shape `(audio_batch_size, text_batch_size)`):
            `cosine(audio_embeds, text_embeds) / temperature`.
        logits_per_text (`torch.Tensor` of shape `(text_batch_size, audio_batch_size)`):
            The transpose of `logits_per_audio`.
        text_embeds (`torch.Tensor` of shape `(text_batch_size, joint_dim)`):
            L2-normalised `h_t` of the (first) forward pass.
        audio_embeds (`torch.Tensor` of shape `(audio_batch_size, joint_dim)`):
            L2-normalised `h_a` of the (first) forward pass.
        text_model_output, audio_model_output (`BaseModelOutputWithPooling`):
            The encoders' outputs (first pass); `pooler_output` is the masked mean of `last_hidden_state`.
        audio_in_modal_loss, text_in_modal_loss (`torch.Tensor` of shape `()`, *optional*):
            `l_in^a`, `l_in^t` (Eq. 2), objective `"turbo"` only.
        cross_modal_loss (`torch.Tensor` of shape `()`, *optional*):
            The sum of the cross-modal InfoNCE terms (four for `"turbo"`, one for `"cross"`).
    """

    loss: torch.Tensor | None = None
    logits_per_audio: torch.Tensor | None = None
    logits_per_text: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    audio_embeds: torch.Tensor | None = None
    text_model_output: BaseModelOutputWithPooling | None = None
    audio_model_output: BaseModelOutputWithPooling | None = None
    audio_in_modal_loss: torch.Tensor | None = None
    text_in_modal_loss: torch.Tensor | None = None
    cross_modal_loss: torch.Tensor | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        return _to_tuple(self)


@dataclass
class TurboSequenceClassifierOutput(ModelOutput):
    r"""Output of [`TurboForSequenceClassification`].

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            `lambda * classification_loss + (1 - lambda) * contrastive_loss` (Eq. 6); plain CE for `"vanilla"`.
            Returned when `labels` are given.
        logits (`torch.Tensor` of shape `(batch_size, num_labels)`):
            Classification scores of the first forward pass (before softmax).
        audio_embeds, text_embeds (`torch.Tensor` of shape `(batch_size, joint_dim)`):
            L2-normalised joint-space embeddings `h_a`, `h_t` of the first pass (for alignment/uniformity analysis).
        classification_loss (`torch.Tensor` of shape `()`, *optional*):
            The CE (or regression) loss on the first pass's logits.
        contrastive_loss (`torch.Tensor` of shape `()`, *optional*):
            `l_Turbo` (Eq. 4) for `"turbo"`, the cross-modal InfoNCE for `"cross"`; absent for `"vanilla"`.
        audio_in_modal_loss, text_in_modal_loss, cross_modal_loss (`torch.Tensor` of shape `()`, *optional*):
            The parts of `contrastive_loss`, as in [`TurboOutput`].
        text_model_output, audio_model_output (`BaseModelOutputWithPooling`):
            The encoders' outputs of the first pass.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    audio_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    classification_loss: torch.Tensor | None = None
    contrastive_loss: torch.Tensor | None = None
    audio_in_modal_loss: torch.Tensor | None = None
    text_in_modal_loss: torch.Tensor | None = None
    cross_modal_loss: torch.Tensor | None = None
    text_model_output: BaseModelOutputWithPooling | None = None
    audio_model_output: BaseModelOutputWithPooling | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        return _to_tuple(self)


@dataclass
class _Pass:
    """One forward pass through both encoders and FC layers."""

    audio_hidden: torch.Tensor  # h_a, after FC_a and dropout
    text_hidden: torch.Tensor  # h_t
    audio_outputs: BaseModelOutputWithPooling
    text_outputs: BaseModelOutputWithPooling

    @property
    def audio_embeds(self) -> torch.Tensor:
        return F.normalize(self.audio_hidden, dim=-1)

    @property
    def text_embeds(self) -> torch.Tensor:
        return F.normalize(self.text_hidden, dim=-1)


@dataclass
class _ContrastiveParts:
    loss: torch.Tensor
    audio_in_modal_loss: torch.Tensor | None
    text_in_modal_loss: torch.Tensor | None
    cross_modal_loss: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor | None]:
        return {
            "audio_in_modal_loss": self.audio_in_modal_loss,
            "text_in_modal_loss": self.text_in_modal_loss,
            "cross_modal_loss": self.cross_modal_loss,
        }


class TurboPreTrainedModel(FamilyAutoMapMixin, DualEncoderMixin, PreTrainedModel):
    """Weight initialisation, the joint-space forward pass and the contrastive objectives shared by the Turbo
    models. Both hold `audio_model`, `text_model`, `audio_fc`, `text_fc`, so checkpoints load into each other."""

    config_class = TurboConfig
    config: TurboConfig
    base_model_prefix = "turbo"
    main_input_name = "input_values"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True

    def _build_joint_space(self, config: TurboConfig, audio_model, text_model) -> None:
        self._build_encoders(config, audio_model, text_model)
        self.audio_fc = nn.Linear(config.audio_config.hidden_size, config.joint_dim)
        self.text_fc = nn.Linear(config.text_config.hidden_size, config.joint_dim)
        self.joint_dropout = nn.Dropout(config.fc_dropout)

    def _forward_pass(
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
    ) -> _Pass:
        audio_outputs, text_outputs = self._encode_pair(
            input_values,
            input_features,
            audio_attention_mask,
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            output_attentions,
            output_hidden_states,
        )
        return _Pass(
            audio_hidden=self.joint_dropout(self.audio_fc(audio_outputs.pooler_output)),
            text_hidden=self.joint_dropout(self.text_fc(text_outputs.pooler_output)),
            audio_outputs=audio_outputs,
            text_outputs=text_outputs,
        )

    def _contrastive_loss(self, first: _Pass, second_pass: Any) -> _ContrastiveParts:
        """The objective's contrastive part. `second_pass()` runs the second forward pass; it is only called for
        `"turbo"` in training mode. In eval mode dropout is off, so the second view would equal the first: the
        first is reused, which keeps evaluation to one deterministic pass while reporting the same formula."""
        if first.audio_hidden.shape[0] != first.text_hidden.shape[0]:
            raise ValueError(
                f"Got {first.audio_hidden.shape[0]} clips and {first.text_hidden.shape[0]} transcripts: Turbo's "
                "losses need one transcript per clip, in the same order."
            )
        scale = 1.0 / self.config.temperature
        if self.config.objective == "cross":
            cross = global_info_nce(first.audio_embeds, first.text_embeds, scale)
            return _ContrastiveParts(
                loss=cross, audio_in_modal_loss=None, text_in_modal_loss=None, cross_modal_loss=cross
            )
        second = second_pass() if self.training else first
        parts = turbo_loss(
            first.audio_embeds, first.text_embeds, second.audio_embeds, second.text_embeds, scale
        )
        return _ContrastiveParts(
            loss=parts.loss,
            audio_in_modal_loss=parts.audio_in_modal_loss,
            text_in_modal_loss=parts.text_in_modal_loss,
            cross_modal_loss=parts.cross_loss_11
            + parts.cross_loss_12
            + parts.cross_loss_21
            + parts.cross_loss_22,
        )

    def _compares_two_passes(self) -> bool:
        """Whether the training loss compares two dropout passes (objective `"turbo"` in training mode)."""
        return self.config.objective == "turbo" and self.training

    def contrastive_embeddings(
        self,
        input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """`(h_a, h_t)` of the first pass, then of the second when the loss compares two (`"turbo"` in training):
        the joint-space states the loss reads, before normalisation. With `contrastive_loss_from_embeddings`, it lets
        `audiolang.training.gradient_cached_backward` train on a batch larger than the activation memory allows
        (GradCache, Gao et al. 2021); the two passes of a row run back to back, so replaying the random state of a
        micro-batch replays both dropout views."""
        inputs = (
            input_values,
            input_features,
            audio_attention_mask,
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
        )
        passes = [self._forward_pass(*inputs, None, None)]
        if self._compares_two_passes():
            passes.append(self._forward_pass(*inputs, None, None))
        return tuple(hidden for p in passes for hidden in (p.audio_hidden, p.text_hidden))

    @staticmethod
    def _passes_from_embeddings(embeddings: tuple[torch.Tensor, ...]) -> list[_Pass]:
        return [
            _Pass(audio_hidden=audio, text_hidden=text, audio_outputs=None, text_outputs=None)
            for audio, text in zip(embeddings[0::2], embeddings[1::2], strict=True)
        ]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any) -> Any:
        """`PreTrainedModel.from_pretrained`, which also accepts a DSCLAP checkpoint (its encoders are loaded, the
        Turbo layers newly initialised, `kwargs` update the `TurboConfig`), then the config's encoder freezing
        (loading replaces every parameter by a new trainable one, which would silently undo it)."""
        if _model_type(pretrained_model_name_or_path, kwargs) == "dsclap":
            return cls.from_dsclap_pretrained(pretrained_model_name_or_path, **kwargs)
        return cls._refreeze_loaded(super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs))

    @classmethod
    def from_dsclap_pretrained(cls, dsclap_name_or_path: str, **kwargs: Any) -> "TurboPreTrainedModel":
        """A Turbo model whose encoders are those of a (pre-trained) DSCLAP checkpoint: DSCLAP pre-training +
        Turbo fine-tuning. `kwargs` update the `TurboConfig` (e.g. `num_labels=4, objective="cross"`); the
        encoder configs, and so the architecture, come from the checkpoint. FC_a, FC_t and the classifier are
        newly initialised (DSCLAP's projections serve its contrastive head, not this one). `audio_config` /
        `text_config` given as partial dicts update the checkpoint's encoder configs, as `from_pretrained` merges them
        (e.g. `audio_config={"use_weighted_layer_sum": True}` adds learned layer weights, equal at first)."""
        from .modeling_dsclap import DsclapModel  # only needed for this conversion

        # Encoder-config updates shape the encoders (and the layer weights), so they go to the DSCLAP model loaded.
        encoder_updates = {
            name: kwargs.pop(name) for name in ("audio_config", "text_config") if name in kwargs
        }
        dsclap = DsclapModel.from_pretrained(dsclap_name_or_path, **encoder_updates)
        config = TurboConfig.from_audio_text_configs(
            dsclap.config.audio_config, dsclap.config.text_config, **kwargs
        )
        # Built from the Turbo config, so that the encoders get its hidden dropout; then DSCLAP's weights of what
        # both families hold (the encoders, and the audio layer weights with `use_weighted_layer_sum`), in place so
        # that `__init__`'s freezing stays.
        model = cls(config)
        dsclap_state, turbo_state = dsclap.state_dict(), model.state_dict()
        shared = {name: value for name, value in dsclap_state.items() if name in turbo_state}
        model.load_state_dict(shared, strict=False)
        logger.info("Turbo encoders loaded from DSCLAP checkpoint %s", dsclap_name_or_path)
        return model


# Hub/cache arguments of `from_pretrained` that locate a checkpoint's config.json.
_CONFIG_LOCATION_KWARGS = (
    "cache_dir",
    "force_download",
    "local_files_only",
    "proxies",
    "revision",
    "subfolder",
    "token",
)


def _model_type(name_or_path: Any, kwargs: dict[str, Any]) -> str | None:
    """The `model_type` of a checkpoint's config.json, without building the config (a DSCLAP config is not a
    TurboConfig); None when the config is passed explicitly or cannot be read."""
    if kwargs.get("config") is not None:
        return None
    location = {key: kwargs[key] for key in _CONFIG_LOCATION_KWARGS if key in kwargs}
    try:
        config_dict, _ = PreTrainedConfig.get_config_dict(name_or_path, **location)
    except OSError:
        return None
    return (config_dict or {}).get("model_type")


class TurboModel(TurboPreTrainedModel):
    """Turbo's dual encoder (Fig. 1 without the classifier): encoders, masked mean pooling, FC_a / FC_t with
    dropout into the joint space. With `return_loss=True` it computes the objective's self-supervised contrastive
    loss (`l_Turbo` from two passes in training for `"turbo"`), usable without labels.

    Example:

    ```python
    >>> import torch
    >>> from audiolang import TurboConfig, TurboModel
    >>> model = TurboModel(TurboConfig.from_preset("tiny")).eval()
    >>> out = model(input_values=torch.randn(2, 16000), input_ids=torch.tensor([[101, 7592, 102], [101, 2189, 102]]))
    >>> out.logits_per_audio.shape
    torch.Size([2, 2])
    ```
    """

    def __init__(self, config: TurboConfig, audio_model: PreTrainedModel | None = None, text_model=None):
        super().__init__(config)
        self._build_joint_space(config, audio_model, text_model)
        self.post_init()
        self._apply_encoder_freezing()

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        return_loss: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> tuple | TurboOutput:
        """Embed clips and transcripts into the joint space and score every clip against every transcript.

        Args:
            input_values, audio_attention_mask, input_features: The feature extractor's output (`input_values` for
                raw-waveform audio encoders, `input_features` for Whisper).
            input_ids, attention_mask, token_type_ids, position_ids: The tokenizer's output.
            return_loss: Compute the objective's contrastive loss on paired rows (`"turbo"` runs a second forward
                pass in training mode for it). Not available for `"vanilla"`, which has none.
        """
        inputs = (
            input_values,
            input_features,
            audio_attention_mask,
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
        )
        flags = (output_attentions, output_hidden_states)
        first = self._forward_pass(*inputs, *flags)
        return self._output(first, lambda: self._forward_pass(*inputs, *flags), return_loss)

    def contrastive_loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...]) -> TurboOutput:
        """The forward's output with `return_loss=True` (no encoder outputs) from the `contrastive_embeddings` of the
        whole batch."""
        passes = self._passes_from_embeddings(embeddings)
        return self._output(passes[0], lambda: passes[1], return_loss=True)

    def _output(self, first: _Pass, second_pass: Any, return_loss: bool | None) -> TurboOutput:
        logits_per_audio = first.audio_embeds @ first.text_embeds.T / self.config.temperature
        parts: dict[str, Any] = {}
        if return_loss:
            if self.config.objective == "vanilla":
                raise ValueError(
                    "`return_loss=True` needs a contrastive objective, but `objective` is 'vanilla' (plain CE): use "
                    "TurboForSequenceClassification with labels, or objective='turbo' / 'cross'."
                )
            contrastive = self._contrastive_loss(first, second_pass)
            parts = {"loss": contrastive.loss, **contrastive.as_dict()}
        return TurboOutput(
            logits_per_audio=logits_per_audio,
            logits_per_text=logits_per_audio.T,
            text_embeds=first.text_embeds,
            audio_embeds=first.audio_embeds,
            text_model_output=first.text_outputs,
            audio_model_output=first.audio_outputs,
            **parts,
        )


class TurboForSequenceClassification(TurboPreTrainedModel):
    """Turbo's classifier (Eq. 5-6): a linear layer on `h_a ⊕ h_t`, trained with `lambda * CE + (1 - lambda) *
    contrastive`, where the contrastive part depends on `config.objective`:

    - `"turbo"`: in training, each batch goes through the network twice with independent dropout masks; the six
      InfoNCE terms of Eq. 4 compare the two passes' embeddings; CE uses the first pass's logits. `lambda = 1`
      skips the second pass and gives plain CE.
    - `"cross"`: one pass, one cross-modal InfoNCE (audio of the pass against its texts).
    - `"vanilla"`: one pass, plain CE (`classification_weight` is ignored).

    In eval mode every objective runs one deterministic pass. The problem type follows transformers: `num_labels
    == 1` regression, integer labels single-label classification, float multi-hot labels multi-label.
    """

    def __init__(self, config: TurboConfig, audio_model: PreTrainedModel | None = None, text_model=None):
        super().__init__(config)
        self.num_labels = config.num_labels
        self._build_joint_space(config, audio_model, text_model)
        self.classifier = nn.Linear(2 * config.joint_dim, config.num_labels)
        self.post_init()
        self._apply_encoder_freezing()

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> tuple | TurboSequenceClassifierOutput:
        """Classify paired (clip, transcript) rows; with `labels`, compute the objective's loss.

        Args:
            input_values, audio_attention_mask, input_features: The feature extractor's output (`input_values` for
                raw-waveform audio encoders, `input_features` for Whisper).
            input_ids, attention_mask, token_type_ids, position_ids: The tokenizer's output.
            labels: `(batch,)` class indices (`num_labels > 1`), `(batch,)` floats for regression (`num_labels ==
                1`), or `(batch, num_labels)` multi-hot floats for multi-label classification.
        """
        inputs = (
            input_values,
            input_features,
            audio_attention_mask,
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
        )
        flags = (output_attentions, output_hidden_states)
        first = self._forward_pass(*inputs, *flags)
        return self._output(first, lambda: self._forward_pass(*inputs, *flags), labels)

    def _compares_two_passes(self) -> bool:
        # lambda = 1 is plain CE: no second pass.
        return super()._compares_two_passes() and self.config.classification_weight != 1

    def contrastive_loss_from_embeddings(
        self, embeddings: tuple[torch.Tensor, ...], labels: torch.Tensor | None = None
    ) -> TurboSequenceClassifierOutput:
        """The forward's output (no encoder outputs) from the `contrastive_embeddings` of the whole batch."""
        passes = self._passes_from_embeddings(embeddings)
        return self._output(passes[0], lambda: passes[1], labels)

    def _output(
        self, first: _Pass, second_pass: Any, labels: torch.Tensor | None
    ) -> TurboSequenceClassifierOutput:
        if first.audio_hidden.shape[0] != first.text_hidden.shape[0]:
            raise ValueError(
                f"Got {first.audio_hidden.shape[0]} clips and {first.text_hidden.shape[0]} transcripts: "
                "classification needs one transcript per clip, in the same order."
            )
        logits = self.classifier(torch.cat([first.audio_hidden, first.text_hidden], dim=-1))

        parts: dict[str, Any] = {}
        if labels is not None:
            classification = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
            weight = self.config.classification_weight
            parts["classification_loss"] = classification
            if self.config.objective == "vanilla" or weight == 1:
                parts["loss"] = classification
            else:
                contrastive = self._contrastive_loss(first, second_pass)
                parts.update(contrastive.as_dict(), contrastive_loss=contrastive.loss)
                parts["loss"] = weight * classification + (1 - weight) * contrastive.loss
        return TurboSequenceClassifierOutput(
            logits=logits,
            audio_embeds=first.audio_embeds,
            text_embeds=first.text_embeds,
            text_model_output=first.text_outputs,
            audio_model_output=first.audio_outputs,
            **parts,
        )


# `save_pretrained` copies this module and its flat siblings next to the weights (`trust_remote_code=True`).
TurboModel.register_for_auto_class("AutoModel")
TurboForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
