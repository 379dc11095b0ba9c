"""lrat model configuration (Kang et al., "Self-Supervised Audio-and-Text Pre-training with Extremely Low-Resource
Parallel Data", AAAI 2022)."""

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .config_checks import (
    check_at_least_zero,
    check_heads_divide_hidden_size,
    check_positive,
    check_range,
    check_token_ids,
)
from .presets import merge_preset

__all__ = ["LRAT_PRESETS", "LratConfig"]

# Named architectures (keyword arguments of `LratConfig`); anything not listed keeps the config's default. N, the
# `num_hidden_layers`, is the depth of *each* of the four encoders.
LRAT_PRESETS: dict[str, dict[str, Any]] = {
    # "each encoder in both unimodal encoders and cross-modal encoders has 3 layers, the number of multi-head
    # attention heads is 12 and the hidden size is 768" (about 110M parameters); FFN 4H as in RoBERTa; translation
    # lengths 256 tokens / 1000 frames.
    "paper": {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "num_hidden_layers": 3,
        "intermediate_size": 3072,
        "text_translation_length": 256,
        "audio_translation_length": 1000,
    },
    # The CPU demo: the paper's depth at a third of the width; translation lengths that cover the embedded corpus
    # (commands of at most ~30 BPE tokens and ~6 s) instead of LibriSpeech's long utterances.
    "small": {
        "hidden_size": 256,
        "num_attention_heads": 4,
        "num_hidden_layers": 3,
        "intermediate_size": 1024,
        "text_translation_length": 48,
        "audio_translation_length": 480,
    },
    # For tests.
    "tiny": {
        "hidden_size": 32,
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
        "intermediate_size": 64,
        "embedding_size": 16,
        "xvector_output_dim": 16,
        "text_translation_length": 24,
        "audio_translation_length": 160,
    },
}


@strict
class LratConfig(PreTrainedConfig):
    r"""Configuration of an lrat model: the paper's "dual cross-modal Transformer" of four post-LN encoders, each
    `num_hidden_layers` deep and `hidden_size` wide:

    - a text unimodal encoder over factorised token embeddings (`embedding_size`, projected to `hidden_size`) +
      positions, and an audio unimodal encoder over projected 160-dim log-mel + delta frames + positions;
    - an audio-referred text encoder and a text-referred audio encoder, whose layers apply bidirectional
      self-attention, cross-attention to the *final* unimodal states of the other modality, and a feed-forward
      sublayer.

    Args:
        vocab_size (`int`, *optional*, defaults to 30000):
            Size of the text vocabulary; must cover the tokenizer (`len(tokenizer)`). The paper follows RoBERTa's
            byte-level BPE; audiolang trains one on the pre-training text (`train_ctal_tokenizer`).
        embedding_size (`int`, *optional*, defaults to 128):
            Width of the factorised token embeddings (ALBERT): tokens are embedded in this space and projected to
            `hidden_size`. IDP translations of text are vectors of this space (`text_output_embeddings`), fed back as
            `inputs_embeds`. The paper does not say; 128 is what the authors' code uses.
        hidden_size (`int`, *optional*, defaults to 768):
            Width d of all four encoders.
        num_hidden_layers (`int`, *optional*, defaults to 3):
            Layers of *each* encoder.
        num_attention_heads (`int`, *optional*, defaults to 12):
            Heads of every self- and cross-attention; must divide `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 3072):
            Inner width of the feed-forward sublayers (the paper gives none; 4H as in RoBERTa).
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the feed-forward sublayers and of the heads.
        hidden_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on embeddings and on every sublayer output before its residual connection.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on attention weights.
        max_position_embeddings (`int`, *optional*, defaults to 512):
            Longest text, in tokens (learned position embeddings). Longer inputs raise.
        max_audio_frames (`int`, *optional*, defaults to 2400):
            Longest audio, in frames (30 s at 12.5 ms per frame, `CtalFeatureExtractor`'s limit). Longer inputs raise.
        audio_feature_size (`int`, *optional*, defaults to 160):
            Size of an input frame: 80 log-mel bands and their first-order deltas.
        layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of every LayerNorm.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of linear and embedding weights.
        pad_token_id, bos_token_id, eos_token_id, mask_token_id (`int`, *optional*, defaults to 1, 0, 2, 4):
            Ids of `<pad>`, `<s>`, `</s>` and `<mask>` (the layout of `train_ctal_tokenizer`); they must match the
            tokenizer. A text translation starts from `text_translation_length` `<mask>` tokens, and its positions
            after the end of the text are trained to predict `<pad>`.
        text_translation_length (`int`, *optional*, defaults to 256):
            Length of every text translation (w_masked, w~): "we set 256 for text and 1000 for audio". Translation is
            one non-autoregressive pass at this fixed length; longer targets are cut to it.
        audio_translation_length (`int`, *optional*, defaults to 1000):
            Length of every audio translation (a_masked, a~), in frames (12.5 s). The authors' code uses 800.
        idae_mask_probability (`float`, *optional*, defaults to 0.15):
            Share of tokens / audio segments that intra-modal denoising corrupts (80% mask, 10% random, 10% kept).
        cdae_mask_probability (`float`, *optional*, defaults to 0.3):
            Share of tokens / audio segments that cross-modal denoising corrupts ("from 15% to 30%").
        cdae_mask_replace_probability (`float`, *optional*, defaults to 0.6):
            Share of the CDAE-selected positions replaced by `<mask>` (text) or zeros (audio), "from 80% to 60%". The
            paper does not split the rest; audiolang keeps BERT's even split, 20% random and 20% unchanged.
        paired_replace_probability (`float`, *optional*, defaults to 0.3):
            Share of the tokens / segments of a paired source that Ĉ replaces by the same positions of its own IDP
            translation.
        idae_weight (`float`, *optional*, defaults to 1.0):
            Weight of the IDAE losses in `LratForPreTraining`'s total.
        cross_modal_weight (`float`, *optional*, defaults to 1.0):
            Weight of the losses through the cross-modal encoders (warm-up translation and CDAE).
        audio_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of every audio (L1) term relative to its text (cross-entropy) partner. "Our attempts to balance
            them do not have any effect on the final performance", so the paper leaves them at 1.
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on h_fuse before the classifier of the fine-tuning heads.
        xvector_output_dim (`int`, *optional*, defaults to 512):
            Size of the speaker embedding of `LratForXVector` (the output of its second dense layer).
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Tie the text decoder to the token embeddings (both live in the `embedding_size` space).

    Example:

    ```python
    >>> from audiolang import LratConfig, LratModel
    >>> config = LratConfig.from_preset("tiny", vocab_size=1000)
    >>> model = LratModel(config)
    ```
    """

    model_type = "lrat"
    # Trainer's predictions keep logits, predictions and embeddings; the per-batch loss parts and the hidden states
    # would only be concatenated across the evaluation set for nothing.
    keys_to_ignore_at_inference = [
        "idae_text_loss",
        "idae_audio_loss",
        "text_loss",
        "audio_loss",
        "text_last_hidden_state",
        "audio_last_hidden_state",
        "text_unimodal_last_hidden_state",
        "audio_unimodal_last_hidden_state",
    ]

    vocab_size: int = 30_000
    embedding_size: int = 128
    hidden_size: int = 768
    num_hidden_layers: int = 3
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    max_audio_frames: int = 2400
    audio_feature_size: int = 160
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: int | None = 2
    mask_token_id: int | None = 4
    text_translation_length: int = 256
    audio_translation_length: int = 1000
    idae_mask_probability: float | int = 0.15
    cdae_mask_probability: float | int = 0.3
    cdae_mask_replace_probability: float | int = 0.6
    paired_replace_probability: float | int = 0.3
    idae_weight: float | int = 1.0
    cross_modal_weight: float | int = 1.0
    audio_loss_weight: float | int = 1.0
    classifier_dropout: float | int = 0.1
    xvector_output_dim: int = 512
    tie_word_embeddings: bool = True

    def validate_lrat(self) -> None:
        """Part of `@strict` validation: reject values that would only fail later, inside a forward pass."""
        check_positive(
            self,
            "vocab_size",
            "embedding_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "max_audio_frames",
            "audio_feature_size",
            "text_translation_length",
            "audio_translation_length",
            "xvector_output_dim",
        )
        check_heads_divide_hidden_size(self)
        check_range(
            self,
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
            "classifier_dropout",
            include_one=False,
        )
        check_range(
            self,
            "idae_mask_probability",
            "cdae_mask_probability",
            "cdae_mask_replace_probability",
            "paired_replace_probability",
            include_one=True,
        )
        check_at_least_zero(self, "idae_weight", "cross_modal_weight", "audio_loss_weight")
        check_token_ids(self, "pad_token_id", "bos_token_id", "eos_token_id", "mask_token_id")
        if self.mask_token_id is None or self.pad_token_id is None:
            raise ValueError(
                "`mask_token_id` and `pad_token_id` are required: translations start from `<mask>` tokens and end "
                "in `<pad>` tokens."
            )
        limits = (
            ("text_translation_length", "max_position_embeddings"),
            ("audio_translation_length", "max_audio_frames"),
        )
        for length, limit in limits:
            if getattr(self, length) > getattr(self, limit):
                raise ValueError(
                    f"`{length}` ({getattr(self, length)}) must not exceed `{limit}` ({getattr(self, limit)}): a "
                    "translation is a sequence the model reads back."
                )

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "LratConfig":
        """Build the config of a named architecture from `LRAT_PRESETS` (`"paper"`, `"small"` or `"tiny"`), with
        `overrides` replacing fields, e.g. `LratConfig.from_preset("small", vocab_size=8000)`."""
        return cls(**merge_preset(LRAT_PRESETS, name, "lrat", (), overrides))


# Makes `save_pretrained` write an `auto_map` and copy this module next to the checkpoint, so that it loads with
# `trust_remote_code=True` where audiolang is not installed.
LratConfig.register_for_auto_class()
