"""PyTorch DSCLAP: a contrastive dual encoder pre-trained on raw domain audio and its ASR transcripts.

`DsclapModel` encodes audio with any transformers speech encoder that reads raw `input_values` (wav2vec2 by
default) or spectrogram `input_features` (Whisper's encoder, on batches padded to their longest clip) and text with
any BERT-like encoder, mean-pools both over their real (unpadded) positions, projects them into a joint space, and
scores every clip against every transcript with a learnable temperature, as CLIP/CLAP do.
Pre-training minimises the DSCLAP objective (`audiolang.losses.dsclap_loss`): symmetric InfoNCE plus
language-audio matching against top-K hard negatives, with negatives gathered from every process.

Input and output names follow transformers' CLAP, so that transformers' own zero-shot-audio-classification
pipeline runs on a DSCLAP checkpoint unchanged: the forward accepts every key a BERT tokenizer emits, and the audio
padding mask is called `audio_attention_mask` so that it does not collide with the text `attention_mask`.
"""

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .auto_map import FamilyAutoMapMixin
from .configuration_dsclap import DsclapConfig
from .dual_encoder import DualEncoderMixin
from .losses import dsclap_loss

__all__ = [
    "DsclapForSequenceClassification",
    "DsclapModel",
    "DsclapOutput",
    "DsclapPreTrainedModel",
    "DsclapSequenceClassifierOutput",
]

# CLIP clamps the learned logit multiplier at 100 (temperature >= 0.01) so that the softmax cannot saturate.
MAX_LOGIT_SCALE = 100.0


@dataclass
class DsclapOutput(ModelOutput):
    r"""Output of [`DsclapModel`]; the first seven fields have CLAP's names and order.

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            The DSCLAP objective (Eq. 8), returned when `return_loss` is set and the batch is paired.
        logits_per_audio (`torch.Tensor` of shape `(audio_batch_size, text_batch_size)`):
            `exp(logit_scale) * cosine(audio_embeds, text_embeds)`: audio-to-text similarity scores.
        logits_per_text (`torch.Tensor` of shape `(text_batch_size, audio_batch_size)`):
            The transpose of `logits_per_audio`.
        text_embeds (`torch.Tensor` of shape `(text_batch_size, projection_dim)`):
            L2-normalised projections of the mean-pooled text encoder states.
        audio_embeds (`torch.Tensor` of shape `(audio_batch_size, projection_dim)`):
            L2-normalised projections of the mean-pooled audio encoder states.
        text_model_output (`BaseModelOutputWithPooling`):
            The text encoder's output; `pooler_output` is the masked mean of `last_hidden_state`.
        audio_model_output (`BaseModelOutputWithPooling`):
            The audio encoder's output; `pooler_output` is the masked mean over real (unpadded) frames.
        audio_contrastive_loss, text_contrastive_loss (`torch.Tensor` of shape `()`, *optional*):
            The InfoNCE terms `L_a` and `L_t` (Eq. 4-5), for logging.
        audio_matching_loss, text_matching_loss (`torch.Tensor` of shape `()`, *optional*):
            The hard-negative matching terms `L_a*` and `L_t*` (Eq. 6-7), for logging.
    """

    loss: torch.Tensor | None = None
    logits_per_audio: torch.Tensor | None = None
    logits_per_text: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    audio_embeds: torch.Tensor | None = None
    text_model_output: BaseModelOutputWithPooling | None = None
    audio_model_output: BaseModelOutputWithPooling | None = None
    audio_contrastive_loss: torch.Tensor | None = None
    text_contrastive_loss: torch.Tensor | None = None
    audio_matching_loss: torch.Tensor | None = None
    text_matching_loss: torch.Tensor | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(value.to_tuple() if isinstance(value, ModelOutput) else value for value in self.values())


@dataclass
class DsclapSequenceClassifierOutput(ModelOutput):
    r"""Output of [`DsclapForSequenceClassification`].

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            Classification (or regression) loss, returned when `labels` are given.
        logits (`torch.Tensor` of shape `(batch_size, num_labels)`):
            Classification scores (before softmax/sigmoid).
        text_model_output (`BaseModelOutputWithPooling`, *optional*):
            The text encoder's output; `pooler_output` is the masked mean fed to the classifier. `None` when
            `config.classifier_inputs` is `"audio"`.
        audio_model_output (`BaseModelOutputWithPooling`, *optional*):
            The audio encoder's output; `pooler_output` is the masked mean fed to the classifier. `None` when
            `config.classifier_inputs` is `"text"`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    text_model_output: BaseModelOutputWithPooling | None = None
    audio_model_output: BaseModelOutputWithPooling | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(value.to_tuple() if isinstance(value, ModelOutput) else value for value in self.values())


class DsclapPreTrainedModel(FamilyAutoMapMixin, DualEncoderMixin, PreTrainedModel):
    """Weight initialisation, encoder construction, pooling and freezing shared by the DSCLAP models.

    Subclasses hold the encoders as `audio_model` and `text_model`, so that a `DsclapModel` checkpoint loads into
    `DsclapForSequenceClassification` (and back) key for key. `main_input_name` is set per instance to the audio
    encoder's (`input_values` or `input_features`).
    """

    config_class = DsclapConfig
    config: DsclapConfig
    base_model_prefix = "dsclap"
    main_input_name = "input_values"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # The encoders are `PreTrainedModel`s and are dispatched to their own `_init_weights`; this covers what the
        # family adds: projections and classifier (normal(initializer_range), via the base class) and logit_scale,
        # which a checkpoint may lack and which must then start at log(logit_scale_init_value), not at garbage.
        super()._init_weights(module)
        if isinstance(module, DsclapModel):
            init.constant_(module.logit_scale, math.log(self.config.logit_scale_init_value))

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> Any:
        """`PreTrainedModel.from_pretrained`, then the config's encoder freezing.

        Loading replaces every parameter by a new trainable one, which would silently undo the freezing done in
        `__init__`.
        """
        return cls._refreeze_loaded(super().from_pretrained(*args, **kwargs))


class DsclapModel(DsclapPreTrainedModel):
    """DSCLAP dual encoder: audio and text encoders, linear projections to a joint space, learnable temperature.

    Build it from a config (`DsclapModel(DsclapConfig.from_preset("paper"))`), from two encoder checkpoints
    (`DsclapModel.from_audio_text_pretrained(audio_path, text_path)`: wav2vec2-style or Whisper checkpoints, whose
    decoder is dropped), or load a saved one with `from_pretrained`.

    Example:

    ```python
    >>> import torch
    >>> from audiolang import DsclapConfig, DsclapModel
    >>> model = DsclapModel(DsclapConfig.from_preset("tiny")).eval()
    >>> waveforms = torch.randn(2, 16000)  # normally `DsclapProcessor(audio=..., text=...)` output
    >>> input_ids = torch.tensor([[101, 7592, 102], [101, 2189, 102]])
    >>> outputs = model(input_values=waveforms, input_ids=input_ids)
    >>> outputs.logits_per_audio.shape
    torch.Size([2, 2])
    ```
    """

    def __init__(
        self,
        config: DsclapConfig,
        audio_model: PreTrainedModel | None = None,
        text_model: PreTrainedModel | None = None,
    ):
        """
        Args:
            config: The DSCLAP configuration.
            audio_model: An already built audio encoder (e.g. loaded from a checkpoint); built from
                `config.audio_config` when omitted.
            text_model: An already built text encoder; built from `config.text_config` when omitted.
        """
        super().__init__(config)
        self._build_encoders(config, audio_model, text_model)
        self.audio_projection = nn.Linear(config.audio_config.hidden_size, config.projection_dim, bias=False)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(config.logit_scale_init_value)))
        self.post_init()
        self._apply_encoder_freezing()

    @can_return_tuple
    def get_audio_features(
        self,
        input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> tuple | BaseModelOutputWithPooling:
        """Encode audio; `pooler_output` holds the L2-normalised joint-space embedding (= `audio_embeds` of the
        forward), the other fields the audio encoder's states.

        Args:
            input_values: `(batch, samples)` normalised waveforms from `DsclapFeatureExtractor`, for raw-waveform
                audio encoders.
            audio_attention_mask: `(batch, samples)` or `(batch, frames)`, 1 on real samples/frames, 0 on padding.
            input_features: `(batch, mel_bins, frames)` log-mel spectrograms from `DsclapWhisperFeatureExtractor`,
                for Whisper audio encoders.
        """
        outputs = self._encode_audio(
            input_values, input_features, audio_attention_mask, output_attentions, output_hidden_states
        )
        outputs.pooler_output = F.normalize(self.audio_projection(outputs.pooler_output), dim=-1)
        return outputs

    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> tuple | BaseModelOutputWithPooling:
        """Encode text; `pooler_output` holds the L2-normalised joint-space embedding (= `text_embeds` of the
        forward), the other fields the text encoder's states."""
        outputs = self._encode_text(
            input_ids, attention_mask, token_type_ids, position_ids, output_attentions, output_hidden_states
        )
        outputs.pooler_output = F.normalize(self.text_projection(outputs.pooler_output), dim=-1)
        return outputs

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
        return_loss: bool | None = True,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        hard_negative_generator: torch.Generator | None = None,
    ) -> tuple | DsclapOutput:
        """Score every clip against every transcript, and compute the DSCLAP loss on paired batches.

        Args:
            input_values: `(audio_batch, samples)` normalised waveforms from `DsclapFeatureExtractor`, for
                raw-waveform audio encoders.
            audio_attention_mask: `(audio_batch, samples)` or `(audio_batch, frames)`, 1 on real samples/frames and
                0 on padding.
            input_features: `(audio_batch, mel_bins, frames)` log-mel spectrograms from
                `DsclapWhisperFeatureExtractor`, for Whisper audio encoders.
            input_ids, attention_mask, token_type_ids, position_ids: The tokenizer's output for the transcripts.
            return_loss: Compute the loss (default). It defaults to `True` so that `Trainer` trains and evaluates
                the model without labels. The loss needs paired rows (clip `i` with transcript `i`): in training
                mode, batches of different sizes raise a `ValueError`; in eval mode they are scored without a loss,
                which is what zero-shot classification (one clip against N candidate texts) needs.
            output_attentions, output_hidden_states: Passed to both encoders.
            hard_negative_generator: Seeded generator for drawing hard negatives when `num_hard_negatives > 1`;
                torch's default generator (seeded by `transformers.set_seed`) otherwise.
        """
        audio_embeds, text_embeds, audio_outputs, text_outputs = self._embed(
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
        return self._score(
            audio_embeds, text_embeds, return_loss, hard_negative_generator, audio_outputs, text_outputs
        )

    def contrastive_embeddings(
        self,
        input_values: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(audio_embeds, text_embeds)` of paired rows: what the DSCLAP loss compares. With
        `contrastive_loss_from_embeddings`, it lets `audiolang.training.gradient_cached_backward` train on a batch
        larger than the activation memory allows (GradCache, Gao et al. 2021)."""
        audio_embeds, text_embeds, _, _ = self._embed(
            input_values,
            input_features,
            audio_attention_mask,
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            None,
            None,
        )
        return audio_embeds, text_embeds

    def contrastive_loss_from_embeddings(
        self,
        embeddings: tuple[torch.Tensor, torch.Tensor],
        return_loss: bool | None = True,
        hard_negative_generator: torch.Generator | None = None,
    ) -> DsclapOutput:
        """The forward's output (loss and its parts, logits, embeddings; no encoder outputs) from the
        `contrastive_embeddings` of the whole batch."""
        audio_embeds, text_embeds = embeddings
        return self._score(audio_embeds, text_embeds, return_loss, hard_negative_generator, None, None)

    def _embed(
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
    ) -> tuple[torch.Tensor, torch.Tensor, BaseModelOutputWithPooling, BaseModelOutputWithPooling]:
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
        audio_embeds = F.normalize(self.audio_projection(audio_outputs.pooler_output), dim=-1)
        text_embeds = F.normalize(self.text_projection(text_outputs.pooler_output), dim=-1)
        return audio_embeds, text_embeds, audio_outputs, text_outputs

    def _score(
        self,
        audio_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        return_loss: bool | None,
        hard_negative_generator: torch.Generator | None,
        audio_outputs: BaseModelOutputWithPooling | None,
        text_outputs: BaseModelOutputWithPooling | None,
    ) -> DsclapOutput:
        scale = self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        logits_per_audio = scale * audio_embeds @ text_embeds.T
        logits_per_text = logits_per_audio.T

        loss_output = None
        paired = audio_embeds.shape[0] == text_embeds.shape[0]
        if return_loss and not paired and self.training:
            raise ValueError(
                f"Training needs paired batches, but got {audio_embeds.shape[0]} clips and {text_embeds.shape[0]} "
                "transcripts: give every clip its transcript, in the same order."
            )
        if return_loss and paired:
            loss_output = dsclap_loss(
                audio_embeds,
                text_embeds,
                scale,
                contrastive_weight=self.config.contrastive_weight,
                matching_weight=self.config.matching_weight,
                num_hard_negatives=self.config.num_hard_negatives,
                generator=hard_negative_generator,
            )

        parts = {}
        if loss_output is not None:
            parts = {
                "loss": loss_output.loss,
                "audio_contrastive_loss": loss_output.audio_contrastive_loss,
                "text_contrastive_loss": loss_output.text_contrastive_loss,
                "audio_matching_loss": loss_output.audio_matching_loss,
                "text_matching_loss": loss_output.text_matching_loss,
            }
        return DsclapOutput(
            logits_per_audio=logits_per_audio,
            logits_per_text=logits_per_text,
            text_embeds=text_embeds,
            audio_embeds=audio_embeds,
            text_model_output=text_outputs,
            audio_model_output=audio_outputs,
            **parts,
        )


class DsclapForSequenceClassification(DsclapPreTrainedModel):
    """DSCLAP encoders with a linear classifier on the fused utterance representation (the paper's MDS and MCIC
    fine-tuning).

    Fusion: the masked mean-pooled audio state and the masked mean-pooled text state are concatenated
    (`audio_hidden + text_hidden` features), then dropout and one linear layer. The pre-projection states are used
    rather than the joint-space embeddings because the contrastive projections are trained to keep only what audio
    and transcript share; tasks such as device-directed speech detection also depend on what they do not share
    (prosody, speaking style, acoustic conditions, ASR errors), which survives in the encoder states. It is also the
    paper's "Base" fusion of separately pre-trained wav2vec2 and BERT features, so a pre-trained and a
    non-pre-trained model differ only in their encoder weights, and a single linear layer keeps the head small for
    few-shot fine-tuning.

    `config.classifier_inputs` picks what the classifier reads: `"audio_text"` (the fusion above, the default),
    `"text"` or `"audio"` (one tower's pooled state alone): the single-modality baselines of a fused score, on the same
    splits and seeds (unlike Table 4's frozen encoders, which still feed the classifier). Its forward runs only the
    tower it reads, so the other modality's inputs may be given (the processor emits both) or omitted; the unused
    tower keeps its weights, so that the same checkpoints load, but is frozen: it gets no gradient, and the optimizer
    and DistributedDataParallel skip it.

    `config.freeze_audio_encoder` / `config.freeze_text_encoder` fix an encoder's weights (Table 4),
    `freeze_audio_feature_encoder` / `num_frozen_audio_layers` parts of the audio encoder. The problem
    type follows transformers: `num_labels == 1` regression, integer labels single-label classification (binary
    tasks use `num_labels=2`), float multi-hot labels multi-label classification, or `config.problem_type`.

    Load the encoders of a pre-trained DSCLAP checkpoint with
    `DsclapForSequenceClassification.from_pretrained(dsclap_folder, num_labels=15)`; its projections and temperature
    are not used and are ignored, and the classifier is newly initialised.
    """

    # A `DsclapModel` checkpoint carries the contrastive head, which classification does not use.
    _keys_to_ignore_on_load_unexpected = [r"^audio_projection\.", r"^text_projection\.", r"^logit_scale$"]

    def __init__(
        self,
        config: DsclapConfig,
        audio_model: PreTrainedModel | None = None,
        text_model: PreTrainedModel | None = None,
    ):
        super().__init__(config)
        self.num_labels = config.num_labels
        self._build_encoders(config, audio_model, text_model)
        self.dropout = nn.Dropout(config.classifier_dropout)
        widths = {"audio": config.audio_config.hidden_size, "text": config.text_config.hidden_size}
        self.classifier = nn.Linear(
            sum(widths[tower] for tower in self._classifier_towers), config.num_labels
        )
        self.post_init()
        self._apply_encoder_freezing()

    @property
    def _classifier_towers(self) -> tuple[str, ...]:
        """The towers whose pooled states the classifier reads, in the order they are concatenated."""
        return {"audio_text": ("audio", "text"), "text": ("text",), "audio": ("audio",)}[
            self.config.classifier_inputs
        ]

    def _apply_encoder_freezing(self) -> None:
        """The config's encoder freezing, and the tower the classifier does not read (with the audio layer weights,
        which only pool audio) frozen too: it would get no gradient, which DistributedDataParallel rejects, and
        the optimizer would carry it for nothing."""
        super()._apply_encoder_freezing()
        if "audio" not in self._classifier_towers:
            self.audio_model.requires_grad_(False)
            if self.audio_layer_weights is not None:
                self.audio_layer_weights.requires_grad_(False)
        if "text" not in self._classifier_towers:
            self.text_model.requires_grad_(False)

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
        audio_pooler_output: torch.Tensor | None = None,
    ) -> tuple | DsclapSequenceClassifierOutput:
        """Classify paired (clip, transcript) rows, or clips or transcripts alone (`config.classifier_inputs`).

        Args:
            input_values, audio_attention_mask, input_features: The feature extractor's output (`input_values` for
                raw-waveform audio encoders, `input_features` for Whisper); ignored, and optional, when
                `config.classifier_inputs` is `"text"`.
            input_ids, attention_mask, token_type_ids, position_ids: The tokenizer's output; ignored, and optional,
                when `config.classifier_inputs` is `"audio"`.
            labels: `(batch,)` class indices for single-label classification (`num_labels > 1`), `(batch,)` floats
                for regression (`num_labels == 1`), or `(batch, num_labels)` multi-hot floats for multi-label
                classification.
            audio_pooler_output: `(batch, audio hidden size)`, the audio tower's pooled output
                (`audio_model_output.pooler_output` of an earlier forward pass) given instead of the audio: the tower
                is not run. Fine-tuning with a frozen audio tower computes it once per clip
                (`audiolang.training.cache_frozen_audio`) rather than once per clip and epoch.
        """
        towers = self._classifier_towers
        audio_outputs = text_outputs = None
        if "audio" in towers and audio_pooler_output is not None:
            audio_outputs = BaseModelOutputWithPooling(pooler_output=audio_pooler_output)
        elif "audio" in towers:
            audio_outputs = self._encode_audio(
                input_values, input_features, audio_attention_mask, output_attentions, output_hidden_states
            )
        if "text" in towers:
            text_outputs = self._encode_text(
                input_ids,
                attention_mask,
                token_type_ids,
                position_ids,
                output_attentions,
                output_hidden_states,
            )
        if (
            audio_outputs is not None
            and text_outputs is not None
            and audio_outputs.pooler_output.shape[0] != text_outputs.pooler_output.shape[0]
        ):
            raise ValueError(
                f"Got {audio_outputs.pooler_output.shape[0]} clips and {text_outputs.pooler_output.shape[0]} "
                "transcripts: classification needs one transcript per clip, in the same order."
            )
        pooled = [outputs.pooler_output for outputs in (audio_outputs, text_outputs) if outputs is not None]
        logits = self.classifier(self.dropout(torch.cat(pooled, dim=-1)))
        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return DsclapSequenceClassifierOutput(
            loss=loss, logits=logits, text_model_output=text_outputs, audio_model_output=audio_outputs
        )


# `save_pretrained` copies this module and its flat siblings next to the weights (`trust_remote_code=True`).
DsclapModel.register_for_auto_class("AutoModel")
DsclapForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
