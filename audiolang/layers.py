"""Transformer blocks shared by the cross-modal families (CTAL, LRAT): input embeddings with learned positions,
multi-head self-/cross-attention with key padding masks, post-LN encoder layers, post-LN "referred" layers that attend
to another modality's states, a loop that runs a stack of either, BERT-shaped prediction heads and attention pooling.

A flat sibling of the modeling modules (imports nothing from `audiolang`), so that it travels with a checkpoint
loaded through `trust_remote_code=True`.

The blocks read their sizes from a transformers config with BERT's attribute names: `hidden_size`,
`num_attention_heads`, `intermediate_size`, `hidden_act`, `hidden_dropout_prob`, `attention_probs_dropout_prob` and
`layer_norm_eps`. They keep a reference to that config and read `config._attn_implementation` at every call, so that
`from_pretrained(..., attn_implementation="eager")` and `model.set_attn_implementation(...)` reach them.

Masks follow transformers: `1`/`True` marks a real position and `0`/`False` padding. Every attention here is
bidirectional (no future mask), which is what CTAL's text-referred audio stream needs (Sec. 3.1.3).
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedConfig
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithCrossAttentions

__all__ = [
    "AttentionPooling",
    "InputEmbeddings",
    "MultiHeadAttention",
    "PredictionHead",
    "ReferredTransformerLayer",
    "TransformerEncoderLayer",
    "key_padding_bias",
    "run_layers",
]


def key_padding_bias(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """`(batch, length)` padding mask -> additive `(batch, 1, 1, length)` attention bias: 0 on real keys, the dtype's
    most negative value on padding.

    A finite bias rather than `-inf` (or a boolean SDPA mask) keeps a row without any real key finite (uniform
    attention instead of NaN), identically in the eager and SDPA paths.
    """
    if mask is None:
        return None
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    bias = bias.masked_fill(~mask.bool(), torch.finfo(dtype).min)
    return bias[:, None, None, :]


class InputEmbeddings(nn.Module):
    """`inputs` (a token embedding, or a projection of feature vectors to `hidden_size`) + learned absolute position
    embeddings, then LayerNorm and dropout (CTAL Sec. 3.1.1, LRAT's input embedding module)."""

    def __init__(self, config: PreTrainedConfig, inputs: nn.Module, max_positions: int):
        super().__init__()
        self.inputs = inputs
        self.position_embeddings = nn.Embedding(max_positions, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """`(batch, length)` ids or `(batch, length, input_size)` vectors -> `(batch, length, hidden_size)`."""
        # Right padding: position i is the i-th real token/frame of every row, padded or not.
        positions = torch.arange(inputs.shape[1], device=inputs.device)
        return self.dropout(self.LayerNorm(self.inputs(inputs) + self.position_embeddings(positions)))


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention, as self-attention (`key_value_states=None`) or cross-attention.

    Runs `torch.nn.functional.scaled_dot_product_attention` unless the config asks for `"eager"` or the caller asks
    for the attention weights, which only the eager path materialises; both compute the same function.
    """

    def __init__(self, config: PreTrainedConfig):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(
                f"`hidden_size` ({config.hidden_size}) must be divisible by `num_attention_heads` "
                f"({config.num_attention_heads})."
            )
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.dropout = config.attention_probs_dropout_prob
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)

    def _heads(self, states: torch.Tensor) -> torch.Tensor:
        batch, length, _ = states.shape
        return states.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_bias: torch.Tensor | None = None,
        key_value_states: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        Args:
            hidden_states: `(batch, query_length, hidden)`, the queries (and keys/values for self-attention).
            attention_bias: `(batch, 1, 1, key_length)` additive bias from `key_padding_bias`, or `None`.
            key_value_states: `(batch, key_length, hidden)` for cross-attention; `None` for self-attention.
            output_attentions: also return the `(batch, heads, query_length, key_length)` attention weights.

        Returns `(output, weights)`, `weights` being `None` unless requested.
        """
        source = hidden_states if key_value_states is None else key_value_states
        query = self._heads(self.query(hidden_states))
        key = self._heads(self.key(source))
        value = self._heads(self.value(source))
        dropout = self.dropout if self.training else 0.0
        weights = None
        if output_attentions or self.config._attn_implementation == "eager":
            scores = query @ key.transpose(-1, -2) / self.head_dim**0.5
            if attention_bias is not None:
                scores = scores + attention_bias
            weights = scores.softmax(dim=-1)
            context = F.dropout(weights, p=dropout, training=self.training) @ value
        else:
            # is_causal=False is explicit: CTAL's audio stream must see future frames (the paper removes the
            # decoder's future mask).
            context = F.scaled_dot_product_attention(
                query, key, value, attn_mask=attention_bias, dropout_p=dropout, is_causal=False
            )
        batch, _, length, _ = context.shape
        context = context.transpose(1, 2).reshape(batch, length, self.num_heads * self.head_dim)
        return self.output(context), (weights if output_attentions else None)


class _AddAndNorm(nn.Module):
    """Post-LN residual: `LayerNorm(dropout(sublayer_output) + residual)`."""

    def __init__(self, config: PreTrainedConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, sublayer_output: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(sublayer_output) + residual)


class _FeedForward(nn.Module):
    """Position-wise `Linear -> activation -> Linear`, followed by the post-LN residual."""

    def __init__(self, config: PreTrainedConfig):
        super().__init__()
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.add_norm = _AddAndNorm(config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.add_norm(self.output(self.activation(self.intermediate(hidden_states))), hidden_states)


class TransformerEncoderLayer(GradientCheckpointingLayer):
    """Post-LN Transformer encoder layer (CTAL Sec. 3.1.2):

    `H~ = LayerNorm(SelfAttention(H) + H)`, `H' = LayerNorm(FFN(H~) + H~)`.
    """

    def __init__(self, config: PreTrainedConfig):
        super().__init__()
        self.attention = MultiHeadAttention(config)
        self.attention_norm = _AddAndNorm(config)
        self.feed_forward = _FeedForward(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_bias: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`attention_bias` from `key_padding_bias` over this sequence; returns `(hidden_states, weights)`."""
        attended, weights = self.attention(hidden_states, attention_bias, output_attentions=output_attentions)
        hidden_states = self.attention_norm(attended, hidden_states)
        return self.feed_forward(hidden_states), weights


class ReferredTransformerLayer(GradientCheckpointingLayer):
    """Post-LN layer of a stream that refers to another modality (CTAL Sec. 3.1.3, text-referred audio):

    `H^ = LayerNorm(SelfAttention(H) + H)` (bidirectional), `H" = LayerNorm(CrossAttention(H^, R, R) + H^)` with the
    reference states `R` as keys and values, `H' = LayerNorm(FFN(H") + H")`.
    """

    def __init__(self, config: PreTrainedConfig):
        super().__init__()
        self.attention = MultiHeadAttention(config)
        self.attention_norm = _AddAndNorm(config)
        self.cross_attention = MultiHeadAttention(config)
        self.cross_attention_norm = _AddAndNorm(config)
        self.feed_forward = _FeedForward(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_bias: torch.Tensor | None,
        reference_states: torch.Tensor,
        reference_bias: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """
        Args:
            hidden_states: `(batch, length, hidden)`, this stream.
            attention_bias: `key_padding_bias` of this stream's mask.
            reference_states: `(batch, reference_length, hidden)`, the other modality's states (keys and values).
            reference_bias: `key_padding_bias` of the reference mask.
            output_attentions: also return the self- and cross-attention weights.

        Reference states are positional so that gradient checkpointing propagates their gradient.
        Returns `(hidden_states, self_attention_weights, cross_attention_weights)`.
        """
        attended, self_weights = self.attention(
            hidden_states, attention_bias, output_attentions=output_attentions
        )
        hidden_states = self.attention_norm(attended, hidden_states)
        attended, cross_weights = self.cross_attention(
            hidden_states,
            reference_bias,
            key_value_states=reference_states,
            output_attentions=output_attentions,
        )
        hidden_states = self.cross_attention_norm(attended, hidden_states)
        return self.feed_forward(hidden_states), self_weights, cross_weights


def run_layers(
    layers: nn.ModuleList,
    hidden_states: torch.Tensor,
    attention_bias: torch.Tensor | None,
    reference_states: torch.Tensor | None = None,
    reference_bias: torch.Tensor | None = None,
    output_attentions: bool = False,
    output_hidden_states: bool = False,
) -> BaseModelOutputWithCrossAttentions:
    """Run a stack of `TransformerEncoderLayer`s, or of `ReferredTransformerLayer`s that all attend to the same
    `reference_states` (the *final* states of the other modality: CTAL Sec. 3.1.3, LRAT's cross-modal encoders).

    Returns the last layer's output, and on request the stack's input followed by every layer's output
    (`hidden_states`, N + 1 tensors) and every layer's self- and cross-attention weights.
    """
    states, attentions, cross_attentions = [hidden_states], [], []
    for layer in layers:
        if reference_states is None:
            hidden_states, weights = layer(hidden_states, attention_bias, output_attentions=output_attentions)
        else:
            hidden_states, weights, cross_weights = layer(
                hidden_states,
                attention_bias,
                reference_states,
                reference_bias,
                output_attentions=output_attentions,
            )
            cross_attentions.append(cross_weights)
        states.append(hidden_states)
        attentions.append(weights)
    return BaseModelOutputWithCrossAttentions(
        last_hidden_state=hidden_states,
        hidden_states=tuple(states) if output_hidden_states else None,
        attentions=tuple(attentions) if output_attentions else None,
        cross_attentions=tuple(cross_attentions)
        if output_attentions and reference_states is not None
        else None,
    )


class PredictionHead(nn.Module):
    """BERT's prediction-head shape, `Linear -> activation -> LayerNorm -> Linear`: `transform` maps `hidden_size` to
    `inner_size` (default `hidden_size`), `decoder` maps that to `output_size`.

    With `inner_size` the factorised embedding size (ALBERT), `transform` gives vectors in the token-embedding space
    and a `decoder` tied to the token embeddings scores them against the vocabulary.
    """

    def __init__(self, config: PreTrainedConfig, output_size: int, inner_size: int | None = None):
        super().__init__()
        inner_size = inner_size or config.hidden_size
        self.dense = nn.Linear(config.hidden_size, inner_size)
        self.activation = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(inner_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(inner_size, output_size)

    def transform(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.activation(self.dense(hidden_states)))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden_states))


class AttentionPooling(nn.Module):
    """Additive attention pooling `softmax(v^T tanh(W H)) H` over the real positions of each sequence (CTAL
    Sec. 3.3; Wang, 2018). A sequence without any real position pools to zero."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.projection = nn.Linear(hidden_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1, bias=False)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`(batch, length, hidden)` states and `(batch, length)` mask -> `(batch, hidden)`."""
        scores = self.score(torch.tanh(self.projection(hidden_states))).squeeze(-1)
        if mask is not None:
            mask = mask.bool()
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)
        if mask is not None:
            weights = weights * mask
        return (weights.unsqueeze(-1) * hidden_states).sum(dim=1)
