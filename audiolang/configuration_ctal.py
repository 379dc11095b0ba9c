"""CTAL model configuration (Li et al., "CTAL: Pre-training Cross-modal Transformer for Audio-and-Language
Representations", EMNLP 2021)."""

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

__all__ = ["CTAL_PRESETS", "CtalConfig"]

# Named architectures (keyword arguments of `CtalConfig`); anything not listed keeps the config's default. N, the
# `num_hidden_layers`, is the depth of *each* stream.
CTAL_PRESETS: dict[str, dict[str, Any]] = {
    # CTAL_BASE: N=3, A=12, H=768 (Sec. 4.1). The paper gives no FFN width; 3072 = 4H as in BERT/RoBERTa.
    "base": {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "num_hidden_layers": 3,
        "intermediate_size": 3072,
    },
    # CTAL_LARGE: N=6, A=12, H=768.
    "large": {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "num_hidden_layers": 6,
        "intermediate_size": 3072,
    },
    # The demo's CPU-trainable model: the base depth at a third of the width.
    "small": {
        "hidden_size": 256,
        "num_attention_heads": 4,
        "num_hidden_layers": 3,
        "intermediate_size": 1024,
    },
    # For tests.
    "tiny": {"hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 2, "intermediate_size": 64},
}


@strict
class CtalConfig(PreTrainedConfig):
    r"""Configuration of a CTAL model: a text stream (post-LN Transformer encoder over token + position embeddings)
    and a text-referred audio stream (projection of 160-dim log-mel + delta frames + position embeddings, then
    layers of bidirectional self-attention, cross-attention to the final text states and feed-forward), each
    `num_hidden_layers` deep and `hidden_size` wide.

    Args:
        vocab_size (`int`, *optional*, defaults to 30000):
            Size of the text vocabulary; must cover the tokenizer (`len(tokenizer)`). The paper trains a
            byte-level BPE of about 30K units.
        hidden_size (`int`, *optional*, defaults to 768):
            Width d of both streams (the fusion of Sec. 3.3 adds text and audio vectors, so they share it).
        num_hidden_layers (`int`, *optional*, defaults to 3):
            N, the number of layers of *each* stream (3 for CTAL_BASE, 6 for CTAL_LARGE).
        num_attention_heads (`int`, *optional*, defaults to 12):
            Heads of every self- and cross-attention; must divide `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 3072):
            Inner width of the feed-forward sublayers.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the feed-forward sublayers and of the prediction heads.
        hidden_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on embeddings and on every sublayer output before its residual connection.
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on attention weights.
        max_position_embeddings (`int`, *optional*, defaults to 512):
            Longest text, in tokens (learned position embeddings). Longer inputs raise.
        max_audio_frames (`int`, *optional*, defaults to 2400):
            Longest audio, in frames (30 s at 12.5 ms per frame, `CtalFeatureExtractor`'s limit). Longer inputs
            raise.
        audio_feature_size (`int`, *optional*, defaults to 160):
            Size of an input frame: 80 log-mel bands and their first-order deltas (Sec. 3.1.1).
        layer_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of every LayerNorm (RoBERTa's).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialisation of linear and embedding weights.
        pad_token_id, bos_token_id, eos_token_id, mask_token_id (`int`, *optional*, defaults to 1, 0, 2, 4):
            Ids of `<pad>`, `<s>`, `</s>` and `<mask>` in a byte-level BPE trained with the special tokens
            `<s>, <pad>, </s>, <unk>, <mask>` first; they must match the tokenizer. The text starts with `<s>`,
            whose final state is the text summary of Sec. 3.1.2.
        mlm_weight (`float`, *optional*, defaults to 1.0):
            Weight of the masked-language-modelling loss in `CtalForPreTraining`.
        mcam_weight (`float`, *optional*, defaults to 1.0):
            Weight of the masked cross-modal acoustic modelling L1 loss. The paper minimises the plain sum of both
            (weights 1).
        orthogonal_weight (`float`, *optional*, defaults to 1.0):
            Weight of the orthogonal regulariser `|cos(h_a^attn, h_w^attn)| + |cos(h_a^max, h_w^max)|` (Sec. 3.3.1)
            added to the fine-tuning loss of the fusion heads; 0 disables it. The paper states no weight and adds
            its terms unweighted elsewhere (the pre-training objective is "the sum of the loss functions"), so 1 is
            its most literal reading. The term is bounded in [0, 2], so at weight 1 it is of the order of a
            cross-entropy or an L1 on standardised targets and cannot swamp the task loss.
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on the fused vector before the classifier of the fusion heads.
        tie_word_embeddings (`bool`, *optional*, defaults to `True`):
            Tie the MLM decoder to the token embeddings.

    Example:

    ```python
    >>> from audiolang import CtalConfig, CtalModel
    >>> config = CtalConfig.from_preset("tiny", vocab_size=1000)
    >>> model = CtalModel(config)
    ```
    """

    model_type = "ctal"
    # Trainer's predictions keep logits, acoustic predictions and embeddings; the per-batch loss parts and the
    # pre-training head's copy of the final states would only be concatenated across the evaluation set for nothing.
    keys_to_ignore_at_inference = [
        "mlm_loss",
        "mcam_loss",
        "classification_loss",
        "orthogonal_loss",
        "text_last_hidden_state",
        "audio_last_hidden_state",
    ]

    vocab_size: int = 30_000
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
    mlm_weight: float | int = 1.0
    mcam_weight: float | int = 1.0
    orthogonal_weight: float | int = 1.0
    classifier_dropout: float | int = 0.1
    tie_word_embeddings: bool = True

    def validate_ctal(self) -> None:
        """Part of `@strict` validation: reject values that would only fail later, inside a forward pass."""
        check_positive(
            self,
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "max_audio_frames",
            "audio_feature_size",
        )
        check_heads_divide_hidden_size(self)
        check_range(
            self,
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
            "classifier_dropout",
            include_one=False,
        )
        check_at_least_zero(self, "mlm_weight", "mcam_weight", "orthogonal_weight")
        check_token_ids(self, "pad_token_id", "bos_token_id", "eos_token_id", "mask_token_id")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "CtalConfig":
        """Build the config of a named architecture from `CTAL_PRESETS` (`"base"`, `"large"`, `"small"` or
        `"tiny"`), with `overrides` replacing fields, e.g. `CtalConfig.from_preset("small", vocab_size=8000)`."""
        return cls(**merge_preset(CTAL_PRESETS, name, "CTAL", (), overrides))


# Makes `save_pretrained` write an `auto_map` and copy this module next to the checkpoint, so that it loads with
# `trust_remote_code=True` where audiolang is not installed.
CtalConfig.register_for_auto_class()
