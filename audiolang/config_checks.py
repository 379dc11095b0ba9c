"""Checks shared by the families' configs (`@strict` validation): values that would only fail later, inside a forward
pass, are rejected when the config is built, with a message that names the field.

A flat sibling of the configuration modules (imports nothing from `audiolang`), so that it travels with a checkpoint
loaded through `trust_remote_code=True`.
"""

from typing import Any

__all__ = [
    "check_at_least_zero",
    "check_heads_divide_hidden_size",
    "check_positive",
    "check_range",
    "check_token_ids",
]


def check_positive(config: Any, *names: str) -> None:
    for name in names:
        if getattr(config, name) <= 0:
            raise ValueError(f"`{name}` must be positive, got {getattr(config, name)}.")


def check_at_least_zero(config: Any, *names: str) -> None:
    for name in names:
        if getattr(config, name) < 0:
            raise ValueError(f"`{name}` must be >= 0, got {getattr(config, name)}.")


def check_range(config: Any, *names: str, include_one: bool) -> None:
    """Each field in [0, 1] (`include_one`: probabilities of a choice) or [0, 1) (dropout, which at 1 drops all)."""
    for name in names:
        value = getattr(config, name)
        if not (0 <= value <= 1 if include_one else 0 <= value < 1):
            raise ValueError(f"`{name}` must be in [0, 1{']' if include_one else ')'}, got {value}.")


def check_heads_divide_hidden_size(config: Any) -> None:
    if config.hidden_size % config.num_attention_heads:
        raise ValueError(
            f"`hidden_size` ({config.hidden_size}) must be divisible by `num_attention_heads` "
            f"({config.num_attention_heads}): each head gets hidden_size / num_attention_heads dimensions."
        )


def check_token_ids(config: Any, *names: str) -> None:
    """Each special-token id that is set must be a row of the vocabulary."""
    for name in names:
        token_id = getattr(config, name)
        if token_id is not None and not 0 <= token_id < config.vocab_size:
            raise ValueError(
                f"`{name}` ({token_id}) must be a valid token id in [0, vocab_size={config.vocab_size}): set "
                f"`vocab_size` to len(tokenizer) and the special-token ids to the tokenizer's."
            )
