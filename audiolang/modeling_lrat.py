"""PyTorch lrat: the dual cross-modal Transformer of Kang et al., "Self-Supervised Audio-and-Text Pre-training with
Extremely Low-Resource Parallel Data" (AAAI 2022).

`LratModel` has four encoders, `config.num_hidden_layers` post-LN layers each (Fig. 1a):

- the *text unimodal encoder* over token embeddings (factorised, `config.embedding_size` wide, then projected) and
  the *audio unimodal encoder* over projected 160-dim log-mel + delta frames, both with learned positions;
- the *audio-referred text encoder* and the *text-referred audio encoder* (the "cross-modal encoders"): each layer
  applies bidirectional self-attention over its own modality, cross-attention with the *final* unimodal states of
  the other modality as keys and values, and a feed-forward sublayer. They read the input embeddings of their own
  modality (the same embedding modules as the unimodal encoders), not the unimodal encoders' outputs.

Seen as two translators, the audio unimodal encoder + the audio-referred text encoder translate audio to text, and
the text unimodal encoder + the text-referred audio encoder translate text to audio. In the transformers idiom the
cross-modal encoders are (non-causal) *decoders*: `input_ids` / `input_features` feed the unimodal encoders (the
sources), `decoder_input_ids` / `decoder_input_features` the cross-modal encoders; without decoder inputs the
cross-modal encoders read the source pair itself, as in fine-tuning.

`LratForPreTraining` adds one text head (tied to the token embeddings; its pre-decoder vectors are the *output
embeddings* that IDP feeds back) and one audio head (hidden -> 160), shared by the unimodal and cross-modal encoders of
their modality, and computes every loss of the paper from inputs prepared by the collators of
`audiolang.training.lrat`. `LratForSequenceClassification` and `LratForXVector` fine-tune on
h_fuse = [mean-pool(H_w^N); mean-pool(H_a^N)].

Input names follow the processor: the tokenizer's `input_ids` / `attention_mask` (`token_type_ids` is accepted and
ignored) and the feature extractor's `input_features` / `audio_attention_mask`.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .auto_map import FamilyAutoMapMixin
from .configuration_lrat import LratConfig
from .layers import (
    InputEmbeddings,
    PredictionHead,
    ReferredTransformerLayer,
    TransformerEncoderLayer,
    key_padding_bias,
    run_layers,
)
from .losses import masked_l1_loss, masked_lm_loss, sequence_classification_loss
from .pooling import masked_mean_pool

__all__ = [
    "LratForPreTraining",
    "LratForPreTrainingOutput",
    "LratForSequenceClassification",
    "LratForXVector",
    "LratModel",
    "LratModelOutput",
    "LratPreTrainedModel",
    "LratSequenceClassifierOutput",
    "LratTranslationOutput",
    "LratXVectorOutput",
    "translation_start",
]

# The optional per-layer fields every lrat output carries, in this order.
_PER_LAYER_FIELDS = (
    "text_hidden_states",
    "audio_hidden_states",
    "text_unimodal_hidden_states",
    "audio_unimodal_hidden_states",
    "text_attentions",
    "audio_attentions",
    "text_unimodal_attentions",
    "audio_unimodal_attentions",
    "text_cross_attentions",
    "audio_cross_attentions",
)


@dataclass
class LratModelOutput(ModelOutput):
    r"""Output of [`LratModel`]. An encoder that did not run (see [`LratModel.forward`]) leaves its fields `None`.

    Args:
        text_last_hidden_state (`torch.Tensor` of shape `(batch_size, text_length, hidden_size)`):
            H_w^N, the final states of the audio-referred text encoder.
        audio_last_hidden_state (`torch.Tensor` of shape `(batch_size, frames, hidden_size)`):
            H_a^N, the final states of the text-referred audio encoder.
        text_unimodal_last_hidden_state (`torch.Tensor` of shape `(batch_size, text_length, hidden_size)`):
            The final states of the text unimodal encoder.
        audio_unimodal_last_hidden_state (`torch.Tensor` of shape `(batch_size, frames, hidden_size)`):
            The final states of the audio unimodal encoder.
        text_hidden_states, audio_hidden_states, text_unimodal_hidden_states, audio_unimodal_hidden_states
        (`tuple(torch.Tensor)`, *optional*):
            Each encoder's input embeddings and the output of each of its layers (N + 1 tensors), with
            `output_hidden_states=True`.
        text_attentions, audio_attentions, text_unimodal_attentions, audio_unimodal_attentions
        (`tuple(torch.Tensor)`, *optional*):
            Each encoder's self-attention weights `(batch_size, heads, length, length)`, one per layer, with
            `output_attentions=True`.
        text_cross_attentions, audio_cross_attentions (`tuple(torch.Tensor)`, *optional*):
            The cross-modal encoders' attention over the other modality's unimodal states, one per layer, with
            `output_attentions=True`.
    """

    text_last_hidden_state: torch.Tensor | None = None
    audio_last_hidden_state: torch.Tensor | None = None
    text_unimodal_last_hidden_state: torch.Tensor | None = None
    audio_unimodal_last_hidden_state: torch.Tensor | None = None
    text_hidden_states: tuple[torch.Tensor, ...] | None = None
    audio_hidden_states: tuple[torch.Tensor, ...] | None = None
    text_unimodal_hidden_states: tuple[torch.Tensor, ...] | None = None
    audio_unimodal_hidden_states: tuple[torch.Tensor, ...] | None = None
    text_attentions: tuple[torch.Tensor, ...] | None = None
    audio_attentions: tuple[torch.Tensor, ...] | None = None
    text_unimodal_attentions: tuple[torch.Tensor, ...] | None = None
    audio_unimodal_attentions: tuple[torch.Tensor, ...] | None = None
    text_cross_attentions: tuple[torch.Tensor, ...] | None = None
    audio_cross_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class LratForPreTrainingOutput(ModelOutput):
    r"""Output of [`LratForPreTraining`]; which paper loss each part is depends on the inputs (see its docstring).

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            `idae_weight * (idae_text_loss + audio_loss_weight * idae_audio_loss) + cross_modal_weight * (text_loss +
            audio_loss_weight * audio_loss)`, over the parts whose targets were given.
        idae_text_loss (`torch.Tensor` of shape `()`, *optional*):
            L_W of IDAE: cross-entropy of the text unimodal encoder's predictions on the `idae_labels` positions.
        idae_audio_loss (`torch.Tensor` of shape `()`, *optional*):
            L_A of IDAE: L1 of the audio unimodal encoder's predictions on the `idae_audio_labels_mask` frames.
        text_loss (`torch.Tensor` of shape `()`, *optional*):
            L_W through the audio-referred text encoder (warm-up translation or CDAE), on the `labels` positions.
        audio_loss (`torch.Tensor` of shape `()`, *optional*):
            L_A through the text-referred audio encoder (warm-up translation or CDAE), on the `audio_labels_mask`
            frames.
        prediction_logits (`torch.Tensor` of shape `(batch_size, text_length, vocab_size)`):
            Token scores of the audio-referred text encoder's output.
        text_output_embeddings (`torch.Tensor` of shape `(batch_size, text_length, embedding_size)`):
            The same output as vectors of the token-embedding space (before the tied decoder): a text translation
            w~, fed back as `inputs_embeds` / `decoder_inputs_embeds`.
        audio_predictions (`torch.Tensor` of shape `(batch_size, frames, audio_feature_size)`):
            Frames predicted from the text-referred audio encoder's output: an audio translation a~.
        idae_prediction_logits (`torch.Tensor` of shape `(batch_size, text_length, vocab_size)`, *optional*):
            Token scores of the text unimodal encoder on `idae_input_ids`.
        idae_audio_predictions (`torch.Tensor` of shape `(batch_size, frames, audio_feature_size)`, *optional*):
            Frames predicted by the audio unimodal encoder on `idae_input_features`.
        text_last_hidden_state, audio_last_hidden_state, text_unimodal_last_hidden_state,
        audio_unimodal_last_hidden_state, and the per-layer tuples:
            As in [`LratModelOutput`], for the translation / denoising pass.
    """

    loss: torch.Tensor | None = None
    idae_text_loss: torch.Tensor | None = None
    idae_audio_loss: torch.Tensor | None = None
    text_loss: torch.Tensor | None = None
    audio_loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    text_output_embeddings: torch.Tensor | None = None
    audio_predictions: torch.Tensor | None = None
    idae_prediction_logits: torch.Tensor | None = None
    idae_audio_predictions: torch.Tensor | None = None
    text_last_hidden_state: torch.Tensor | None = None
    audio_last_hidden_state: torch.Tensor | None = None
    text_unimodal_last_hidden_state: torch.Tensor | None = None
    audio_unimodal_last_hidden_state: torch.Tensor | None = None
    text_hidden_states: tuple[torch.Tensor, ...] | None = None
    audio_hidden_states: tuple[torch.Tensor, ...] | None = None
    text_unimodal_hidden_states: tuple[torch.Tensor, ...] | None = None
    audio_unimodal_hidden_states: tuple[torch.Tensor, ...] | None = None
    text_attentions: tuple[torch.Tensor, ...] | None = None
    audio_attentions: tuple[torch.Tensor, ...] | None = None
    text_unimodal_attentions: tuple[torch.Tensor, ...] | None = None
    audio_unimodal_attentions: tuple[torch.Tensor, ...] | None = None
    text_cross_attentions: tuple[torch.Tensor, ...] | None = None
    audio_cross_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class LratTranslationOutput(ModelOutput):
    r"""One non-autoregressive translation pass of [`LratForPreTraining`] (`translate_audio_to_text` fills the text
    fields, `translate_text_to_audio` the audio one).

    Args:
        text_logits (`torch.Tensor` of shape `(batch_size, text_translation_length, vocab_size)`, *optional*):
            Token scores of the translated text.
        text_embeddings (`torch.Tensor` of shape `(batch_size, text_translation_length, embedding_size)`, *optional*):
            w~, the translated text as output embeddings (what the next IDP round reads).
        audio_features (`torch.Tensor` of shape `(batch_size, audio_translation_length, audio_feature_size)`, *optional*):
            a~, the translated audio frames.
    """

    text_logits: torch.Tensor | None = None
    text_embeddings: torch.Tensor | None = None
    audio_features: torch.Tensor | None = None


@dataclass
class LratSequenceClassifierOutput(ModelOutput):
    r"""Output of [`LratForSequenceClassification`].

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            Cross-entropy (single-label), binary cross-entropy (multi-label) or L1 (regression), with `labels`.
        logits (`torch.Tensor` of shape `(batch_size, num_labels)`):
            Classification scores (before softmax/sigmoid), or the regression output when `num_labels == 1`.
        embeddings (`torch.Tensor` of shape `(batch_size, 2 * hidden_size)`):
            h_fuse = [mean-pool(H_w^N); mean-pool(H_a^N)], the classifier's input (before dropout).
        text_hidden_states, ..., audio_cross_attentions:
            As in [`LratModelOutput`], on request.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    text_hidden_states: tuple[torch.Tensor, ...] | None = None
    audio_hidden_states: tuple[torch.Tensor, ...] | None = None
    text_unimodal_hidden_states: tuple[torch.Tensor, ...] | None = None
    audio_unimodal_hidden_states: tuple[torch.Tensor, ...] | None = None
    text_attentions: tuple[torch.Tensor, ...] | None = None
    audio_attentions: tuple[torch.Tensor, ...] | None = None
    text_unimodal_attentions: tuple[torch.Tensor, ...] | None = None
    audio_unimodal_attentions: tuple[torch.Tensor, ...] | None = None
    text_cross_attentions: tuple[torch.Tensor, ...] | None = None
    audio_cross_attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class LratXVectorOutput(LratSequenceClassifierOutput):
    r"""Output of [`LratForXVector`]; its first fields are those of transformers' `XVectorOutput`.

    Args:
        loss (`torch.Tensor` of shape `()`, *optional*):
            Speaker cross-entropy, with `labels`.
        logits (`torch.Tensor` of shape `(batch_size, num_labels)`):
            Scores over the training speakers.
        embeddings (`torch.Tensor` of shape `(batch_size, xvector_output_dim)`):
            The speaker embedding: the representation before the classifier. Compare two utterances by the cosine
            similarity of their embeddings.
    """


def translation_start(config: LratConfig, batch_size: int, device: torch.device | str = "cpu") -> dict:
    """The decoder inputs a translation starts from when there is no earlier translation: w_masked, the all-`<mask>`
    sequence of `text_translation_length` tokens, and a_masked, `audio_translation_length` all-zero frames (the
    masked segments of the audio corruption). Every position is real (no padding mask): a translation fills its whole
    fixed length.

    Returns `{"decoder_input_ids": (batch, text_translation_length), "decoder_input_features": (batch,
    audio_translation_length, audio_feature_size)}`.
    """
    return {
        "decoder_input_ids": torch.full(
            (batch_size, config.text_translation_length),
            config.mask_token_id,
            dtype=torch.long,
            device=device,
        ),
        "decoder_input_features": torch.zeros(
            batch_size, config.audio_translation_length, config.audio_feature_size, device=device
        ),
    }


class LratPreTrainedModel(FamilyAutoMapMixin, PreTrainedModel):
    """Weight initialisation and loading conventions shared by the lrat models.

    Every model holds its `LratModel` as `lrat`, so that a `LratForPreTraining` checkpoint loads into the fine-tuning
    heads (and into `LratModel`) key for key; and every saved folder lists all four model classes in its `auto_map`.
    """

    config_class = LratConfig
    config: LratConfig
    base_model_prefix = "lrat"
    main_input_name = "input_features"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["TransformerEncoderLayer", "ReferredTransformerLayer"]

    # Everything lrat adds is an `nn.Linear`, `nn.Embedding` or `nn.LayerNorm`, which the base `_init_weights`
    # initialises (normal(initializer_range) weights, zero biases and padding row, unit LayerNorm): there are no raw
    # parameters or buffers to cover, so weights a checkpoint lacks start from the same distribution as a fresh model
    # (tested).


class LratModel(LratPreTrainedModel):
    """The lrat backbone: text and audio unimodal encoders and the two cross-modal encoders.

    Example:

    ```python
    >>> import torch
    >>> from audiolang import LratConfig, LratModel
    >>> model = LratModel(LratConfig.from_preset("tiny", vocab_size=100)).eval()
    >>> out = model(input_ids=torch.tensor([[0, 42, 7, 2]]), input_features=torch.randn(1, 50, 160))
    >>> out.text_last_hidden_state.shape, out.audio_unimodal_last_hidden_state.shape
    (torch.Size([1, 4, 32]), torch.Size([1, 50, 32]))
    ```
    """

    def __init__(self, config: LratConfig):
        super().__init__(config)
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id
        )
        text_projection = nn.Linear(config.embedding_size, config.hidden_size)
        self.text_embeddings = InputEmbeddings(config, text_projection, config.max_position_embeddings)
        audio_projection = nn.Linear(config.audio_feature_size, config.hidden_size)
        self.audio_embeddings = InputEmbeddings(config, audio_projection, config.max_audio_frames)
        layers = range(config.num_hidden_layers)
        self.text_encoder = nn.ModuleList(TransformerEncoderLayer(config) for _ in layers)
        self.audio_encoder = nn.ModuleList(TransformerEncoderLayer(config) for _ in layers)
        # The audio-referred text encoder and the text-referred audio encoder.
        self.text_cross_encoder = nn.ModuleList(ReferredTransformerLayer(config) for _ in layers)
        self.audio_cross_encoder = nn.ModuleList(ReferredTransformerLayer(config) for _ in layers)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.word_embeddings = value

    def _text_embeddings(
        self,
        input_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        inputs_embeds_mask: torch.Tensor | None,
        name: str,
    ) -> torch.Tensor | None:
        """Token vectors (`embedding_size` wide) of ids, of given vectors, or of ids with some positions replaced."""
        if inputs_embeds is not None and inputs_embeds.shape[-1] != self.config.embedding_size:
            raise ValueError(
                f"`{name}inputs_embeds` must be (batch, length, embedding_size={self.config.embedding_size}), got "
                f"{tuple(inputs_embeds.shape)}: pass vectors of the token-embedding space, e.g. an earlier "
                "translation's `text_embeddings`."
            )
        if input_ids is None:
            return inputs_embeds
        vectors = self.word_embeddings(input_ids)
        if inputs_embeds is None and inputs_embeds_mask is None:
            return vectors
        if inputs_embeds is None or inputs_embeds_mask is None or inputs_embeds.shape[:2] != input_ids.shape:
            raise ValueError(
                f"Pass `{name}input_ids` or `{name}inputs_embeds`; both only together with `inputs_embeds_mask`, all "
                "three of shape (batch, length[, embedding_size]), to take `inputs_embeds` where the mask is true."
            )
        return torch.where(inputs_embeds_mask.bool().unsqueeze(-1), inputs_embeds.to(vectors.dtype), vectors)

    def _check_audio(self, input_features: torch.Tensor | None, name: str) -> None:
        if input_features is None:
            return
        if input_features.ndim != 3 or input_features.shape[-1] != self.config.audio_feature_size:
            raise ValueError(
                f"`{name}` must be (batch, frames, {self.config.audio_feature_size}), got "
                f"{tuple(input_features.shape)}: pass `CtalFeatureExtractor` output."
            )

    def _check_lengths(self, name: str, length: int, limit_name: str) -> None:
        limit = getattr(self.config, limit_name)
        if length > limit:
            raise ValueError(
                f"`{name}` has {length} positions, more than the model's `{limit_name}` ({limit}): truncate in the "
                "processor, or split the input."
            )

    def encode_text(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        inputs_embeds_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> BaseModelOutput:
        """The text unimodal encoder alone: IDAE's text side, and the source side of text -> audio translation.

        Args:
            input_ids: `(batch, text_length)` token ids, right-padded.
            attention_mask: `(batch, text_length)`, 1 on real tokens and 0 on padding; all ones when omitted.
            inputs_embeds: `(batch, text_length, embedding_size)` token vectors instead of `input_ids`, e.g. a text
                translation w~ (`LratTranslationOutput.text_embeddings`).
            inputs_embeds_mask: `(batch, text_length)` boolean, with both `input_ids` and `inputs_embeds`: the
                positions that take `inputs_embeds` instead of the embedding of `input_ids` (the paper's Ĉ(w) on
                paired data: some tokens replaced by the same positions of their IDP translation).
        """
        vectors = self._text_embeddings(input_ids, inputs_embeds, inputs_embeds_mask, "")
        if vectors is None:
            raise ValueError("`input_ids` or `inputs_embeds` is required: pass the tokenizer's output.")
        self._check_lengths("input_ids", vectors.shape[1], "max_position_embeddings")
        hidden = self.text_embeddings(vectors)
        outputs = run_layers(
            self.text_encoder,
            hidden,
            key_padding_bias(attention_mask, hidden.dtype),
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        return BaseModelOutput(outputs.last_hidden_state, outputs.hidden_states, outputs.attentions)

    def encode_audio(
        self,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> BaseModelOutput:
        """The audio unimodal encoder alone: IDAE's audio side, and the source side of audio -> text translation.

        Args:
            input_features: `(batch, frames, audio_feature_size)` log-mel + delta frames (or an audio translation
                a~), right-padded.
            audio_attention_mask: `(batch, frames)`, 1 on real frames and 0 on padding; all ones when omitted.
        """
        if input_features is None:
            raise ValueError(
                "`input_features` is required: pass the processor's (or feature extractor's) output."
            )
        self._check_audio(input_features, "input_features")
        self._check_lengths("input_features", input_features.shape[1], "max_audio_frames")
        hidden = self.audio_embeddings(input_features)
        outputs = run_layers(
            self.audio_encoder,
            hidden,
            key_padding_bias(audio_attention_mask, hidden.dtype),
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        return BaseModelOutput(outputs.last_hidden_state, outputs.hidden_states, outputs.attentions)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        inputs_embeds_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        decoder_input_features: torch.Tensor | None = None,
        decoder_audio_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> tuple | LratModelOutput:
        """Encode (transcript, clip) rows, or run one or both translation directions.

        The text source (`input_ids` / `inputs_embeds`) goes through the text unimodal encoder, the audio source
        (`input_features`) through the audio unimodal encoder. The audio-referred text encoder runs when there is an
        audio source, on `decoder_input_ids` / `decoder_inputs_embeds` or, without them, on the text source; the
        text-referred audio encoder runs when there is a text source, on `decoder_input_features` or the audio source.
        So the pair alone (fine-tuning) runs all four encoders on it; a clip alone with text decoder inputs is the
        audio -> text translator; a text alone with audio decoder inputs the text -> audio translator.

        Args:
            input_ids, attention_mask, inputs_embeds, inputs_embeds_mask: The text source; see `encode_text`.
            input_features, audio_attention_mask: The audio source; see `encode_audio`.
            decoder_input_ids, decoder_inputs_embeds, decoder_attention_mask: The audio-referred text encoder's input
                (ids, or token vectors such as a translation w~) and its padding mask.
            decoder_input_features, decoder_audio_attention_mask: The text-referred audio encoder's input frames and
                padding mask.
            token_type_ids: Accepted (tokenizers emit it) and ignored: lrat has no segment embeddings.
            output_attentions: Return every layer's attention weights (computed on the eager path).
            output_hidden_states: Return every layer's output.
        """
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        per_layer = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        has_text = input_ids is not None or inputs_embeds is not None
        has_text_decoder = decoder_input_ids is not None or decoder_inputs_embeds is not None
        if not has_text and input_features is None:
            raise ValueError(
                "Pass a text source (`input_ids` or `inputs_embeds`), an audio source (`input_features`), or both."
            )
        if has_text_decoder and input_features is None:
            raise ValueError(
                "`decoder_input_ids` / `decoder_inputs_embeds` need `input_features`: the audio-referred text encoder "
                "attends to the audio unimodal encoder's states."
            )
        if decoder_input_features is not None and not has_text:
            raise ValueError(
                "`decoder_input_features` needs `input_ids` or `inputs_embeds`: the text-referred audio encoder "
                "attends to the text unimodal encoder's states."
            )
        self._check_audio(decoder_input_features, "decoder_input_features")
        sizes = {
            name: tensor.shape[0]
            for name, tensor in (
                ("input_ids", input_ids if input_ids is not None else inputs_embeds),
                ("input_features", input_features),
                (
                    "decoder_input_ids",
                    decoder_input_ids if decoder_input_ids is not None else decoder_inputs_embeds,
                ),
                ("decoder_input_features", decoder_input_features),
            )
            if tensor is not None
        }
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"Batch sizes differ: {sizes}. lrat needs one transcript per clip (and one decoder input per row), in "
                "the same order."
            )

        text = audio = None
        if has_text:
            text = self.encode_text(input_ids, attention_mask, inputs_embeds, inputs_embeds_mask, **per_layer)
        if input_features is not None:
            audio = self.encode_audio(input_features, audio_attention_mask, **per_layer)

        text_cross = audio_cross = None
        if audio is not None and (has_text_decoder or has_text):
            if has_text_decoder:
                vectors = self._text_embeddings(decoder_input_ids, decoder_inputs_embeds, None, "decoder_")
                mask = decoder_attention_mask
            else:
                vectors = self._text_embeddings(input_ids, inputs_embeds, inputs_embeds_mask, "")
                mask = attention_mask
            self._check_lengths("decoder_input_ids", vectors.shape[1], "max_position_embeddings")
            hidden = self.text_embeddings(vectors)
            # Every layer refers to the *final* audio unimodal states, as in LXMERT-style dual Transformers.
            text_cross = run_layers(
                self.text_cross_encoder,
                hidden,
                key_padding_bias(mask, hidden.dtype),
                audio.last_hidden_state,
                key_padding_bias(audio_attention_mask, hidden.dtype),
                **per_layer,
            )
        if text is not None and (decoder_input_features is not None or input_features is not None):
            frames, mask = decoder_input_features, decoder_audio_attention_mask
            if frames is None:
                frames, mask = input_features, audio_attention_mask
            self._check_lengths("decoder_input_features", frames.shape[1], "max_audio_frames")
            hidden = self.audio_embeddings(frames)
            audio_cross = run_layers(
                self.audio_cross_encoder,
                hidden,
                key_padding_bias(mask, hidden.dtype),
                text.last_hidden_state,
                key_padding_bias(attention_mask, hidden.dtype),
                **per_layer,
            )

        def field(outputs: ModelOutput | None, name: str) -> torch.Tensor | tuple | None:
            return None if outputs is None else getattr(outputs, name)

        return LratModelOutput(
            text_last_hidden_state=field(text_cross, "last_hidden_state"),
            audio_last_hidden_state=field(audio_cross, "last_hidden_state"),
            text_unimodal_last_hidden_state=field(text, "last_hidden_state"),
            audio_unimodal_last_hidden_state=field(audio, "last_hidden_state"),
            text_hidden_states=field(text_cross, "hidden_states"),
            audio_hidden_states=field(audio_cross, "hidden_states"),
            text_unimodal_hidden_states=field(text, "hidden_states"),
            audio_unimodal_hidden_states=field(audio, "hidden_states"),
            text_attentions=field(text_cross, "attentions"),
            audio_attentions=field(audio_cross, "attentions"),
            text_unimodal_attentions=field(text, "attentions"),
            audio_unimodal_attentions=field(audio, "attentions"),
            text_cross_attentions=field(text_cross, "cross_attentions"),
            audio_cross_attentions=field(audio_cross, "cross_attentions"),
        )


def _per_layer_outputs(outputs: LratModelOutput) -> dict[str, tuple[torch.Tensor, ...] | None]:
    """The optional per-layer fields of a `LratModelOutput`, for the heads' outputs."""
    return {name: getattr(outputs, name) for name in _PER_LAYER_FIELDS}


def _frames_to_reconstruct(labels_mask: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The frames an L1 term counts: those of the labels mask that are real (padding is never a target)."""
    frames = labels_mask.bool()
    return frames if attention_mask is None else frames & attention_mask.bool()


class LratForPreTraining(LratPreTrainedModel):
    """lrat with its output heads and every pre-training loss of the paper.

    The text head maps states to token-embedding vectors (`text_output_embeddings`) and scores them with a decoder
    tied to the token embeddings (`prediction_logits`); the audio head maps states to 160-dim frames. Both serve the
    unimodal and the cross-modal encoders of their modality. Translation is one non-autoregressive pass at a fixed
    length (`translate_audio_to_text`, `translate_text_to_audio`).

    A forward pass computes the losses whose targets it is given; the collators of `audiolang.training.lrat` build
    the inputs of each objective (the corruption happens there, seeded), as follows, with L_W the cross-entropy on
    the labelled tokens and L_A the L1 on the labelled frames:

    | paper loss | text source | audio source | decoder inputs | targets |
    |---|---|---|---|---|
    | L^idae (text / audio) | `idae_input_ids` = C(w), 15% | `idae_input_features` = C(a) | - | `idae_labels` / `idae_audio_labels` |
    | L^warm, a -> t | - | a | `decoder_input_ids` = w_masked | `labels` = w (then `<pad>`) |
    | L^warm, t -> a | w | - | `decoder_input_features` = a_masked | `audio_labels` = a (then zeros) |
    | L^cdae unpaired, text | - | a~ (IDP) | `decoder_input_ids` = C(w), 30% | `labels` |
    | L^cdae unpaired, audio | `inputs_embeds` = w~ (IDP) | - | `decoder_input_features` = C(a) | `audio_labels` |
    | L^cdae paired | Ĉ(w): `input_ids` + `inputs_embeds` + `inputs_embeds_mask` | Ĉ(a) | C(w), C(a) | both |

    The IDAE passes run the unimodal encoders alone; `text_loss` / `audio_loss` are the L_W / L_A terms of whichever
    of warm-up and CDAE the other inputs describe. `loss = idae_weight * (idae_text_loss + audio_loss_weight *
    idae_audio_loss) + cross_modal_weight * (text_loss + audio_loss_weight * audio_loss)`, the paper's plain sums with
    the default weights of 1.
    """

    _tied_weights_keys = {"text_head.decoder.weight": "lrat.word_embeddings.weight"}

    def __init__(self, config: LratConfig):
        super().__init__(config)
        self.lrat = LratModel(config)
        self.text_head = PredictionHead(config, config.vocab_size, inner_size=config.embedding_size)
        self.audio_head = PredictionHead(config, config.audio_feature_size)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.text_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.text_head.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        inputs_embeds_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        decoder_input_features: torch.Tensor | None = None,
        decoder_audio_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        audio_labels: torch.Tensor | None = None,
        audio_labels_mask: torch.Tensor | None = None,
        idae_input_ids: torch.Tensor | None = None,
        idae_attention_mask: torch.Tensor | None = None,
        idae_labels: torch.Tensor | None = None,
        idae_input_features: torch.Tensor | None = None,
        idae_audio_attention_mask: torch.Tensor | None = None,
        idae_audio_labels: torch.Tensor | None = None,
        idae_audio_labels_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> tuple | LratForPreTrainingOutput:
        """
        Args:
            input_ids, attention_mask, input_features, audio_attention_mask, inputs_embeds, inputs_embeds_mask,
            decoder_input_ids, decoder_inputs_embeds, decoder_attention_mask, decoder_input_features,
            decoder_audio_attention_mask, token_type_ids, output_attentions, output_hidden_states:
                The translation / denoising pass, as in [`LratModel.forward`]; may be omitted for an IDAE-only step.
            labels: `(batch, decoder_text_length)` target ids of the audio-referred text encoder's output, -100 where
                there is nothing to predict.
            audio_labels: `(batch, decoder_frames, audio_feature_size)` target frames of the text-referred audio
                encoder's output.
            audio_labels_mask: `(batch, decoder_frames)` boolean, true on the frames to reconstruct. Required with
                `audio_labels`.
            idae_input_ids, idae_attention_mask, idae_labels: Corrupted text for the text unimodal encoder alone and
                its targets (-100 where not corrupted).
            idae_input_features, idae_audio_attention_mask, idae_audio_labels, idae_audio_labels_mask: Corrupted
                frames for the audio unimodal encoder alone, the original frames and the frames to reconstruct.
        """
        for prefix, features, mask in (
            ("", audio_labels, audio_labels_mask),
            ("idae_", idae_audio_labels, idae_audio_labels_mask),
        ):
            if (features is None) != (mask is None):
                raise ValueError(
                    f"`{prefix}audio_labels` and `{prefix}audio_labels_mask` go together: the original frames and the "
                    "boolean mask of the frames to reconstruct (the lrat collators produce both)."
                )
        config = self.config
        losses: dict[str, torch.Tensor] = {}
        outputs = LratModelOutput()
        prediction_logits = text_output_embeddings = audio_predictions = None
        if any(x is not None for x in (input_ids, inputs_embeds, input_features)):
            outputs = self.lrat(
                input_ids=input_ids,
                attention_mask=attention_mask,
                input_features=input_features,
                audio_attention_mask=audio_attention_mask,
                inputs_embeds=inputs_embeds,
                inputs_embeds_mask=inputs_embeds_mask,
                decoder_input_ids=decoder_input_ids,
                decoder_inputs_embeds=decoder_inputs_embeds,
                decoder_attention_mask=decoder_attention_mask,
                decoder_input_features=decoder_input_features,
                decoder_audio_attention_mask=decoder_audio_attention_mask,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        if outputs.text_last_hidden_state is not None:
            text_output_embeddings = self.text_head.transform(outputs.text_last_hidden_state)
            prediction_logits = self.text_head.decoder(text_output_embeddings)
            if labels is not None:
                losses["text_loss"] = masked_lm_loss(prediction_logits, labels)
        if outputs.audio_last_hidden_state is not None:
            audio_predictions = self.audio_head(outputs.audio_last_hidden_state)
            if audio_labels is not None:
                frames = (
                    decoder_audio_attention_mask
                    if decoder_input_features is not None
                    else audio_attention_mask
                )
                losses["audio_loss"] = masked_l1_loss(
                    audio_predictions.float(),
                    audio_labels.float(),
                    _frames_to_reconstruct(audio_labels_mask, frames),
                )
        if (labels is not None and "text_loss" not in losses) or (
            audio_labels is not None and "audio_loss" not in losses
        ):
            raise ValueError(
                "`labels` need the audio-referred text encoder (an audio source), `audio_labels` the text-referred "
                "audio encoder (a text source): pass the inputs of the pass they are the targets of."
            )

        idae_prediction_logits = idae_audio_predictions = None
        if idae_input_ids is not None:
            text = self.lrat.encode_text(idae_input_ids, idae_attention_mask).last_hidden_state
            idae_prediction_logits = self.text_head(text)
            if idae_labels is not None:
                losses["idae_text_loss"] = masked_lm_loss(idae_prediction_logits, idae_labels)
        if idae_input_features is not None:
            audio = self.lrat.encode_audio(idae_input_features, idae_audio_attention_mask).last_hidden_state
            idae_audio_predictions = self.audio_head(audio)
            if idae_audio_labels is not None:
                losses["idae_audio_loss"] = masked_l1_loss(
                    idae_audio_predictions.float(),
                    idae_audio_labels.float(),
                    _frames_to_reconstruct(idae_audio_labels_mask, idae_audio_attention_mask),
                )

        weights = {
            "idae_text_loss": config.idae_weight,
            "idae_audio_loss": config.idae_weight * config.audio_loss_weight,
            "text_loss": config.cross_modal_weight,
            "audio_loss": config.cross_modal_weight * config.audio_loss_weight,
        }
        loss = sum(weights[name] * value for name, value in losses.items()) if losses else None
        return LratForPreTrainingOutput(
            loss=loss,
            **losses,
            prediction_logits=prediction_logits,
            text_output_embeddings=text_output_embeddings,
            audio_predictions=audio_predictions,
            idae_prediction_logits=idae_prediction_logits,
            idae_audio_predictions=idae_audio_predictions,
            text_last_hidden_state=outputs.text_last_hidden_state,
            audio_last_hidden_state=outputs.audio_last_hidden_state,
            text_unimodal_last_hidden_state=outputs.text_unimodal_last_hidden_state,
            audio_unimodal_last_hidden_state=outputs.audio_unimodal_last_hidden_state,
            **_per_layer_outputs(outputs),
        )

    def translate_audio_to_text(
        self,
        input_features: torch.Tensor,
        audio_attention_mask: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
    ) -> LratTranslationOutput:
        """w~_k = f(w~_{k-1}, f(a; θ_uni^A); θ_cross^W): one pass of the audio-referred text encoder over the previous
        translation `decoder_inputs_embeds` (`(batch, text_translation_length, embedding_size)`), or over w_masked
        (all `<mask>`) when it is `None` (w~_0, and every round of the "w/o IDP" ablation). Call it under
        `torch.no_grad()` for IDP."""
        start = None
        if decoder_inputs_embeds is None:
            start = translation_start(self.config, input_features.shape[0], input_features.device)
            start = start["decoder_input_ids"]
        outputs = self.lrat(
            input_features=input_features,
            audio_attention_mask=audio_attention_mask,
            decoder_input_ids=start,
            decoder_inputs_embeds=decoder_inputs_embeds,
        )
        embeddings = self.text_head.transform(outputs.text_last_hidden_state)
        return LratTranslationOutput(
            text_logits=self.text_head.decoder(embeddings), text_embeddings=embeddings
        )

    def translate_text_to_audio(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_input_features: torch.Tensor | None = None,
    ) -> LratTranslationOutput:
        """a~_k = f(a~_{k-1}, f(w; θ_uni^W); θ_cross^A): one pass of the text-referred audio encoder over the previous
        translation `decoder_input_features` (`(batch, audio_translation_length, audio_feature_size)`), or over
        a_masked (all zeros) when it is `None`. Call it under `torch.no_grad()` for IDP."""
        if decoder_input_features is None:
            batch = (input_ids if input_ids is not None else inputs_embeds).shape[0]
            device = self.lrat.word_embeddings.weight.device
            decoder_input_features = translation_start(self.config, batch, device)["decoder_input_features"]
        outputs = self.lrat(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            decoder_input_features=decoder_input_features,
        )
        return LratTranslationOutput(audio_features=self.audio_head(outputs.audio_last_hidden_state))


class _LratFusionModel(LratPreTrainedModel):
    """lrat + h_fuse = [mean-pool(H_w^N); mean-pool(H_a^N)] over the real positions of each cross-modal encoder's
    output (the paper's fine-tuning representation); the subclasses put their head on it."""

    # A `LratForPreTraining` checkpoint carries the output heads, which fine-tuning does not use.
    _keys_to_ignore_on_load_unexpected = [r"^text_head\.", r"^audio_head\."]

    def __init__(self, config: LratConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.lrat = LratModel(config)

    def _fuse(
        self, output_attentions: bool | None, output_hidden_states: bool | None, **inputs: torch.Tensor
    ):
        for name in ("input_ids", "input_features"):
            if inputs[name] is None:
                raise ValueError(f"`{name}` is required: fine-tuning reads the (transcript, clip) pair.")
        outputs = self.lrat(
            **inputs, output_attentions=output_attentions, output_hidden_states=output_hidden_states
        )
        fused = torch.cat(
            [
                masked_mean_pool(outputs.text_last_hidden_state, inputs["attention_mask"]),
                masked_mean_pool(outputs.audio_last_hidden_state, inputs["audio_attention_mask"]),
            ],
            dim=-1,
        )
        return fused, outputs


class LratForSequenceClassification(_LratFusionModel):
    """lrat with dropout and a linear classifier W in R^{num_labels x 2d} on h_fuse (emotion classification,
    sentiment regression, intent, device-directed detection, ...).

    The problem type follows transformers, except for the regression loss: `num_labels == 1` is regression trained
    with L1 (the paper's sentiment setting); integer labels single-label classification with cross-entropy; float
    multi-hot labels multi-label classification with binary cross-entropy. `labels`: `(batch,)` class indices,
    `(batch,)` floats for regression, or `(batch, num_labels)` multi-hot floats.

    Load a pre-trained encoder with `LratForSequenceClassification.from_pretrained(pretrained_folder, num_labels=4)`:
    the output heads are dropped and the classifier is newly initialised.
    """

    def __init__(self, config: LratConfig):
        super().__init__(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(2 * config.hidden_size, config.num_labels)
        self.post_init()

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
    ) -> tuple | LratSequenceClassifierOutput:
        """Classify (transcript, clip) rows.

        Args:
            input_ids, attention_mask, input_features, audio_attention_mask, token_type_ids, output_attentions,
            output_hidden_states: As in [`LratModel.forward`].
            labels: The targets of the task (see the class docstring).
        """
        fused, outputs = self._fuse(
            output_attentions,
            output_hidden_states,
            input_ids=input_ids,
            attention_mask=attention_mask,
            input_features=input_features,
            audio_attention_mask=audio_attention_mask,
        )
        logits = self.classifier(self.dropout(fused))
        loss = None if labels is None else sequence_classification_loss(logits, labels, self.config)
        return LratSequenceClassifierOutput(
            loss=loss, logits=logits, embeddings=fused, **_per_layer_outputs(outputs)
        )


class LratForXVector(_LratFusionModel):
    """lrat for speaker verification: "a two-layer dense layer and a classifier over the head of final
    representations h_fuse", trained with cross-entropy over the training speakers; "the representations before
    classifier" are the speaker embedding (`embeddings`), compared by cosine similarity. Registered under
    `AutoModelForAudioXVector`; its output starts with the fields of transformers' `XVectorOutput`.

    The paper gives no sizes or activation: the first dense layer maps 2d -> d, `config.hidden_act`, the second
    d -> `xvector_output_dim` (the embedding); the classifier reads the activated embedding (so that the two dense
    layers do not collapse into one linear map). Set `num_labels` to the number of training speakers; `labels` are
    `(batch,)` training-speaker indices.
    """

    def __init__(self, config: LratConfig):
        super().__init__(config)
        self.dense = nn.Linear(2 * config.hidden_size, config.hidden_size)
        self.embedding = nn.Linear(config.hidden_size, config.xvector_output_dim)
        self.activation = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.xvector_output_dim, config.num_labels)
        self.post_init()

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
    ) -> tuple | LratXVectorOutput:
        """Embed and classify (transcript, clip) rows by speaker; arguments as in
        [`LratForSequenceClassification.forward`], `labels` being training-speaker indices."""
        fused, outputs = self._fuse(
            output_attentions,
            output_hidden_states,
            input_ids=input_ids,
            attention_mask=attention_mask,
            input_features=input_features,
            audio_attention_mask=audio_attention_mask,
        )
        embeddings = self.embedding(self.activation(self.dense(self.dropout(fused))))
        logits = self.classifier(self.activation(embeddings))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
        return LratXVectorOutput(
            loss=loss, logits=logits, embeddings=embeddings, **_per_layer_outputs(outputs)
        )


# `save_pretrained` copies this module and its flat siblings next to the weights (`trust_remote_code=True`).
LratModel.register_for_auto_class("AutoModel")
LratForPreTraining.register_for_auto_class("AutoModelForPreTraining")
LratForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
LratForXVector.register_for_auto_class("AutoModelForAudioXVector")
