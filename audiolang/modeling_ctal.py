"""PyTorch CTAL: a cross-modal Transformer over text and 160-dim acoustic frames (Li et al., EMNLP 2021).

`CtalModel` runs a text stream (post-LN Transformer encoder) and a text-referred audio stream whose layers apply
bidirectional self-attention over the frames, cross-attention with the *final* text states as keys and values, and
a feed-forward sublayer (Sec. 3.1). The text stream never sees the audio: masked tokens are predicted from text
alone (Sec. 3.2.1).

`CtalForPreTraining` adds the masked-language-modelling head (tied to the token embeddings) and the acoustic head
of masked cross-modal acoustic modelling (L1 on the masked frames, Sec. 3.2.2); the masking itself is done by
`audiolang.training.DataCollatorForCtalPreTraining`. `CtalForSequenceClassification` and `CtalForXVector` fine-tune
with the paper's fusion and orthogonal regulariser (Sec. 3.3).

Input names follow the processor: the tokenizer's `input_ids` / `attention_mask` (`token_type_ids` is accepted and
ignored) and the feature extractor's `input_features` / `audio_attention_mask`.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .auto_map import FamilyAutoMapMixin
from .configuration_ctal import CtalConfig
from .layers import (
    AttentionPooling,
    InputEmbeddings,
    PredictionHead,
    ReferredTransformerLayer,
    TransformerEncoderLayer,
    key_padding_bias,
    run_layers,
)
from .losses import masked_l1_loss, masked_lm_loss, orthogonality_loss, sequence_classification_loss
from .pooling import masked_max_pool

__all__ = [
    "CtalForPreTraining",
    "CtalForPreTrainingOutput",
    "CtalForSequenceClassification",
    "CtalForXVector",
    "CtalModel",
    "CtalModelOutput",
    "CtalPreTrainedModel",
    "CtalSequenceClassifierOutput",
    "CtalXVectorOutput",
]


@dataclass
class CtalModelOutput(ModelOutput):
    r"""Output of [`CtalModel`].

    Args:
        text_last_hidden_state (`torch.Tensor` of shape `(batch_size, text_length, hidden_size)`):
            H_w^N, the final states of the text stream; position 0 (`<s>`) summarises the text.
        audio_last_hidden_state (`torch.Tensor` of shape `(batch_size, frames, hidden_size)`):
            H_a^N, the final states of the text-referred audio stream.
        text_hidden_states, audio_hidden_states (`tuple(torch.Tensor)`, *optional*):
            Each stream's embeddings and the output of each of its layers (N + 1 tensors), with
            `output_hidden_states=True`.
        text_attentions, audio_attentions (`tuple(torch.Tensor)`, *optional*):
            Each stream's self-attention weights `(batch_size, heads, length, length)`, one per layer, with
            `output_attentions=True`.
        cross_attentions (`tuple(torch.Tensor)`, *optional*):
            The audio stream's attention over the text `(batch_size, heads, frames, text_length)`, one per layer,
            with `output_attentions=True`.
    """

    text_last_hidden_state: torch.Tensor | None = None
    audio_last_hidden_state: torch.Tensor | None = None
    text_hidden_states: tuple[torch.Tensor, ...] | None = None
    audio_hidden_states: tuple[torch.Tensor, ...] | None = None
    text_attentions: tuple[torch.Tensor, ...] | None = None
    audio_attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class CtalForPreTrainingOutput(ModelOutput):
    r"""Output of [`CtalForPreTraining`].

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            `mlm_weight * mlm_loss + mcam_weight * mcam_loss`, over the parts whose labels were given.
        mlm_loss (`torch.Tensor` of shape `()`, *optional*):
            Cross-entropy of the masked tokens (`labels != -100`), with `labels`.
        mcam_loss (`torch.Tensor` of shape `()`, *optional*):
            L1 between `audio_predictions` and `audio_labels` over the frames of `audio_labels_mask` only, with
            `audio_labels`.
        prediction_logits (`torch.Tensor` of shape `(batch_size, text_length, vocab_size)`):
            MLM scores of every token.
        audio_predictions (`torch.Tensor` of shape `(batch_size, frames, audio_feature_size)`):
            Reconstructed acoustic features of every frame.
        text_last_hidden_state, audio_last_hidden_state, text_hidden_states, audio_hidden_states, text_attentions,
        audio_attentions, cross_attentions:
            As in [`CtalModelOutput`]; the per-layer tuples only on request.
    """

    loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    mcam_loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    audio_predictions: torch.Tensor | None = None
    text_last_hidden_state: torch.Tensor | None = None
    audio_last_hidden_state: torch.Tensor | None = None
    text_hidden_states: tuple[torch.Tensor, ...] | None = None
    audio_hidden_states: tuple[torch.Tensor, ...] | None = None
    text_attentions: tuple[torch.Tensor, ...] | None = None
    audio_attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class CtalSequenceClassifierOutput(ModelOutput):
    r"""Output of [`CtalForSequenceClassification`].

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            `classification_loss + orthogonal_weight * orthogonal_loss`, with `labels`.
        logits (`torch.Tensor` of shape `(batch_size, num_labels)`):
            Classification scores (before softmax/sigmoid), or the regression output when `num_labels == 1`.
        embeddings (`torch.Tensor` of shape `(batch_size, 2 * hidden_size)`):
            h_fuse = (h_a^attn + h_w^attn) ⊕ (h_a^max + h_w^max), the input of the classifier (before dropout).
        classification_loss (`torch.Tensor` of shape `()`, *optional*):
            Cross-entropy (single-label), binary cross-entropy (multi-label) or L1 (regression), with `labels`.
        orthogonal_loss (`torch.Tensor` of shape `()`):
            L_Orth = |cos(h_a^attn, h_w^attn)| + |cos(h_a^max, h_w^max)|, averaged over the batch (Sec. 3.3.1).
        text_hidden_states, audio_hidden_states, text_attentions, audio_attentions, cross_attentions:
            As in [`CtalModelOutput`], on request.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    classification_loss: torch.Tensor | None = None
    orthogonal_loss: torch.Tensor | None = None
    text_hidden_states: tuple[torch.Tensor, ...] | None = None
    audio_hidden_states: tuple[torch.Tensor, ...] | None = None
    text_attentions: tuple[torch.Tensor, ...] | None = None
    audio_attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class CtalXVectorOutput(CtalSequenceClassifierOutput):
    r"""Output of [`CtalForXVector`]; its first fields are those of transformers' `XVectorOutput`.

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            Speaker cross-entropy + `orthogonal_weight * orthogonal_loss`, with `labels`.
        logits (`torch.Tensor` of shape `(batch_size, num_labels)`):
            Scores over the training speakers.
        embeddings (`torch.Tensor` of shape `(batch_size, 2 * hidden_size)`):
            The speaker embedding: h_fuse, the representation before the classifier (Sec. 4.2.3). Compare two
            utterances by the cosine similarity of their embeddings.
        classification_loss, orthogonal_loss, text_hidden_states, audio_hidden_states, text_attentions,
        audio_attentions, cross_attentions:
            As in [`CtalSequenceClassifierOutput`].
    """


class CtalPreTrainedModel(FamilyAutoMapMixin, PreTrainedModel):
    """Weight initialisation and loading conventions shared by the CTAL models.

    Every model holds its `CtalModel` as `ctal`, so that a `CtalForPreTraining` checkpoint loads into the fine-tuning
    heads (and into `CtalModel`) key for key.
    """

    config_class = CtalConfig
    config: CtalConfig
    base_model_prefix = "ctal"
    main_input_name = "input_features"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["TransformerEncoderLayer", "ReferredTransformerLayer"]

    # Everything CTAL adds is an `nn.Linear`, `nn.Embedding` or `nn.LayerNorm`, which the base `_init_weights`
    # initialises (normal(initializer_range) weights, zero biases and padding row, unit LayerNorm): there are no
    # raw parameters or buffers to cover (position ids are built per call), so weights a checkpoint lacks start
    # from the same distribution as a fresh model (tested).


class CtalModel(CtalPreTrainedModel):
    """The CTAL backbone: text stream and text-referred audio stream, `config.num_hidden_layers` layers each.

    Example:

    ```python
    >>> import torch
    >>> from audiolang import CtalConfig, CtalModel
    >>> model = CtalModel(CtalConfig.from_preset("tiny", vocab_size=100)).eval()
    >>> out = model(input_ids=torch.tensor([[0, 42, 7, 2]]), input_features=torch.randn(1, 50, 160))
    >>> out.text_last_hidden_state.shape, out.audio_last_hidden_state.shape
    (torch.Size([1, 4, 32]), torch.Size([1, 50, 32]))
    ```
    """

    def __init__(self, config: CtalConfig):
        super().__init__(config)
        word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.text_embeddings = InputEmbeddings(config, word_embeddings, config.max_position_embeddings)
        audio_projection = nn.Linear(config.audio_feature_size, config.hidden_size)
        self.audio_embeddings = InputEmbeddings(config, audio_projection, config.max_audio_frames)
        self.text_layers = nn.ModuleList(
            TransformerEncoderLayer(config) for _ in range(config.num_hidden_layers)
        )
        self.audio_layers = nn.ModuleList(
            ReferredTransformerLayer(config) for _ in range(config.num_hidden_layers)
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.text_embeddings.inputs

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.text_embeddings.inputs = value

    def _check_inputs(self, input_ids: torch.Tensor | None, input_features: torch.Tensor | None) -> None:
        if input_ids is None:
            raise ValueError("`input_ids` is required: pass the processor's (or tokenizer's) text output.")
        if input_features is None:
            raise ValueError(
                "`input_features` is required: pass the processor's (or feature extractor's) output."
            )
        if input_ids.shape[0] != input_features.shape[0]:
            raise ValueError(
                f"Got {input_ids.shape[0]} texts and {input_features.shape[0]} clips: CTAL needs one transcript per "
                "clip, in the same order."
            )
        if input_features.ndim != 3 or input_features.shape[-1] != self.config.audio_feature_size:
            raise ValueError(
                f"`input_features` must be (batch, frames, {self.config.audio_feature_size}), got "
                f"{tuple(input_features.shape)}: pass `CtalFeatureExtractor` output."
            )
        limits = (
            ("input_ids", input_ids.shape[1], "max_position_embeddings", self.config.max_position_embeddings),
            ("input_features", input_features.shape[1], "max_audio_frames", self.config.max_audio_frames),
        )
        for name, length, limit_name, limit in limits:
            if length > limit:
                raise ValueError(
                    f"`{name}` has {length} positions, more than the model's `{limit_name}` ({limit}): truncate "
                    "in the processor, or split the input."
                )

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> tuple | CtalModelOutput:
        """Encode paired (transcript, clip) rows.

        Args:
            input_ids: `(batch, text_length)` token ids, starting with `<s>`, right-padded.
            attention_mask: `(batch, text_length)`, 1 on real tokens and 0 on padding; all ones when omitted.
            input_features: `(batch, frames, audio_feature_size)` log-mel + delta frames, right-padded.
            audio_attention_mask: `(batch, frames)`, 1 on real frames and 0 on padding; all ones when omitted.
            token_type_ids: Accepted (tokenizers emit it) and ignored: CTAL has no segment embeddings.
            output_attentions: Return every layer's attention weights (computed on the eager path).
            output_hidden_states: Return every layer's output.
        """
        self._check_inputs(input_ids, input_features)
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states

        text = self.text_embeddings(input_ids)
        audio = self.audio_embeddings(input_features)
        text_bias = key_padding_bias(attention_mask, text.dtype)
        audio_bias = key_padding_bias(audio_attention_mask, audio.dtype)

        per_layer = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        text_outputs = run_layers(self.text_layers, text, text_bias, **per_layer)
        # Every audio layer refers to the *final* text states H_w^N (Sec. 3.1.3), not to the text layer of its depth.
        audio_outputs = run_layers(
            self.audio_layers, audio, audio_bias, text_outputs.last_hidden_state, text_bias, **per_layer
        )
        return CtalModelOutput(
            text_last_hidden_state=text_outputs.last_hidden_state,
            audio_last_hidden_state=audio_outputs.last_hidden_state,
            text_hidden_states=text_outputs.hidden_states,
            audio_hidden_states=audio_outputs.hidden_states,
            text_attentions=text_outputs.attentions,
            audio_attentions=audio_outputs.attentions,
            cross_attentions=audio_outputs.cross_attentions,
        )


def _per_layer_outputs(outputs: CtalModelOutput) -> dict[str, tuple[torch.Tensor, ...] | None]:
    """The optional per-layer fields of a `CtalModelOutput`, for the heads' outputs."""
    names = (
        "text_hidden_states",
        "audio_hidden_states",
        "text_attentions",
        "audio_attentions",
        "cross_attentions",
    )
    return {name: getattr(outputs, name) for name in names}


class CtalForPreTraining(CtalPreTrainedModel):
    """CTAL with its two pre-training heads: masked language modelling on the text stream (decoder tied to the token
    embeddings) and masked cross-modal acoustic modelling on the audio stream (hidden -> 160 reconstruction).

    Feed it `audiolang.training.DataCollatorForCtalPreTraining` batches: masked `input_ids` with MLM `labels`, masked
    `input_features` with the original frames as `audio_labels` and the frames to reconstruct as
    `audio_labels_mask`. The loss is `mlm_weight * MLM + mcam_weight * L1` (Sec. 3.2).
    """

    _tied_weights_keys = {"lm_head.decoder.weight": "ctal.text_embeddings.inputs.weight"}

    def __init__(self, config: CtalConfig):
        super().__init__(config)
        self.ctal = CtalModel(config)
        self.lm_head = PredictionHead(config, config.vocab_size)
        self.acoustic_head = PredictionHead(config, config.audio_feature_size)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        audio_labels: torch.Tensor | None = None,
        audio_labels_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> tuple | CtalForPreTrainingOutput:
        """
        Args:
            input_ids, attention_mask, input_features, audio_attention_mask, token_type_ids, output_attentions,
            output_hidden_states: As in [`CtalModel.forward`], with the masked inputs.
            labels: `(batch, text_length)` original ids of the masked tokens and -100 everywhere else.
            audio_labels: `(batch, frames, audio_feature_size)` original (unmasked) features.
            audio_labels_mask: `(batch, frames)` boolean, true on the frames to reconstruct (every frame of the
                selected segments, whether zeroed, replaced or kept). Required with `audio_labels`.
        """
        if (audio_labels is None) != (audio_labels_mask is None):
            raise ValueError(
                "`audio_labels` and `audio_labels_mask` go together: the original features and the boolean mask of "
                "the frames to reconstruct (DataCollatorForCtalPreTraining produces both)."
            )
        outputs = self.ctal(
            input_ids=input_ids,
            attention_mask=attention_mask,
            input_features=input_features,
            audio_attention_mask=audio_attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        prediction_logits = self.lm_head(outputs.text_last_hidden_state)
        audio_predictions = self.acoustic_head(outputs.audio_last_hidden_state)

        mlm_loss = mcam_loss = loss = None
        if labels is not None:
            mlm_loss = masked_lm_loss(prediction_logits, labels)
            loss = self.config.mlm_weight * mlm_loss
        if audio_labels is not None:
            frames = audio_labels_mask.bool()
            if audio_attention_mask is not None:
                # Padding is never a reconstruction target, whatever the mask says.
                frames = frames & audio_attention_mask.bool()
            mcam_loss = masked_l1_loss(audio_predictions.float(), audio_labels.float(), frames)
            weighted = self.config.mcam_weight * mcam_loss
            loss = weighted if loss is None else loss + weighted

        return CtalForPreTrainingOutput(
            loss=loss,
            mlm_loss=mlm_loss,
            mcam_loss=mcam_loss,
            prediction_logits=prediction_logits,
            audio_predictions=audio_predictions,
            text_last_hidden_state=outputs.text_last_hidden_state,
            audio_last_hidden_state=outputs.audio_last_hidden_state,
            **_per_layer_outputs(outputs),
        )


@dataclass
class _Fusion:
    """The four pooled vectors of Sec. 3.3 and what is built from them."""

    audio_attention: torch.Tensor
    audio_max: torch.Tensor
    text_attention: torch.Tensor
    text_max: torch.Tensor

    @property
    def fused(self) -> torch.Tensor:
        """h_fuse = (h_a^attn + h_w^attn) ⊕ (h_a^max + h_w^max)."""
        return torch.cat([self.audio_attention + self.text_attention, self.audio_max + self.text_max], dim=-1)

    @property
    def orthogonal_loss(self) -> torch.Tensor:
        """L_Orth = |cos(h_a^attn, h_w^attn)| + |cos(h_a^max, h_w^max)|, batch mean (Sec. 3.3.1)."""
        return orthogonality_loss(self.audio_attention, self.text_attention) + orthogonality_loss(
            self.audio_max, self.text_max
        )


class _CtalFusionClassifier(CtalPreTrainedModel):
    """CTAL + the paper's fusion (Sec. 3.3) + dropout + a linear classifier on h_fuse.

    Audio: attention pooling h_a^attn = softmax(v^T tanh(W H_a)) H_a and max pooling h_a^max over the real frames.
    Text: the final `<s>` state h_w^attn = H_w[:, 0] and max pooling h_w^max over the real tokens.
    """

    # A `CtalForPreTraining` checkpoint carries the pre-training heads, which fine-tuning does not use.
    _keys_to_ignore_on_load_unexpected = [r"^lm_head\.", r"^acoustic_head\."]
    _output_class: type[CtalSequenceClassifierOutput]

    def __init__(self, config: CtalConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.ctal = CtalModel(config)
        self.audio_attention_pooling = AttentionPooling(config.hidden_size)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(2 * config.hidden_size, config.num_labels)
        self.post_init()

    def _classification_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # each head defines its task loss

    def _fuse(
        self,
        outputs: CtalModelOutput,
        attention_mask: torch.Tensor | None,
        audio_attention_mask: torch.Tensor | None,
    ) -> _Fusion:
        """The pooled vectors of Sec. 3.3 from the backbone's final states, over real positions only (also what
        `audiolang.probing` reads as CTAL's text, audio and fusion representations)."""
        audio, text = outputs.audio_last_hidden_state, outputs.text_last_hidden_state
        return _Fusion(
            audio_attention=self.audio_attention_pooling(audio, audio_attention_mask),
            audio_max=masked_max_pool(audio, audio_attention_mask),
            text_attention=text[:, 0],
            text_max=masked_max_pool(text, attention_mask),
        )

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> tuple | CtalSequenceClassifierOutput:
        """Classify paired (transcript, clip) rows.

        Args:
            input_ids, attention_mask, input_features, audio_attention_mask, token_type_ids, output_attentions,
            output_hidden_states: As in [`CtalModel.forward`].
            labels: The targets of the head's task (see the class docstring); the loss adds
                `orthogonal_weight * orthogonal_loss` to the task loss.
        """
        outputs = self.ctal(
            input_ids=input_ids,
            attention_mask=attention_mask,
            input_features=input_features,
            audio_attention_mask=audio_attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        fusion = self._fuse(outputs, attention_mask, audio_attention_mask)
        embeddings = fusion.fused
        logits = self.classifier(self.dropout(embeddings))
        orthogonal = fusion.orthogonal_loss
        classification_loss = loss = None
        if labels is not None:
            classification_loss = self._classification_loss(logits, labels)
            loss = classification_loss + self.config.orthogonal_weight * orthogonal
        return self._output_class(
            loss=loss,
            logits=logits,
            embeddings=embeddings,
            classification_loss=classification_loss,
            orthogonal_loss=orthogonal,
            **_per_layer_outputs(outputs),
        )


class CtalForSequenceClassification(_CtalFusionClassifier):
    """CTAL with the paper's fusion and a linear classifier (emotion classification, sentiment regression, intent,
    device-directed detection, ...), trained with the task loss + `orthogonal_weight * L_Orth`.

    The problem type follows transformers, except for the regression loss: `num_labels == 1` is regression trained
    with L1 (the paper's sentiment setting, Sec. 4.2.2, instead of transformers' MSE); integer labels single-label
    classification with cross-entropy; float multi-hot labels (or `problem_type="multi_label_classification"`)
    multi-label classification with binary cross-entropy. `labels`: `(batch,)` class indices, `(batch,)` floats for
    regression, or `(batch, num_labels)` multi-hot floats.

    Load a pre-trained encoder with `CtalForSequenceClassification.from_pretrained(pretrained_folder, num_labels=4)`:
    the pre-training heads are dropped and the pooling and classifier layers are newly initialised.
    """

    _output_class = CtalSequenceClassifierOutput

    def _classification_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return sequence_classification_loss(logits, labels, self.config)


class CtalForXVector(_CtalFusionClassifier):
    """CTAL for speaker verification (Sec. 4.2.3): a classifier over the training speakers on h_fuse, trained with
    cross-entropy + `orthogonal_weight * L_Orth`; `embeddings` (h_fuse, the representation before the classifier)
    is the speaker embedding, compared by cosine similarity. Registered under `AutoModelForAudioXVector`; its output
    starts with the fields of transformers' `XVectorOutput` (`loss`, `logits`, `embeddings`).

    Set `num_labels` to the number of training speakers; `labels` are `(batch,)` training-speaker indices.
    """

    _output_class = CtalXVectorOutput

    def _classification_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))


# `save_pretrained` copies this module and its flat siblings next to the weights (`trust_remote_code=True`).
CtalModel.register_for_auto_class("AutoModel")
CtalForPreTraining.register_for_auto_class("AutoModelForPreTraining")
CtalForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
CtalForXVector.register_for_auto_class("AutoModelForAudioXVector")
