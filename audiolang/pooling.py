"""Pooling of encoder states into one vector per sequence, shared by the audiolang model families.

A flat sibling of the modeling modules (imports nothing from `audiolang`), so that it travels with a checkpoint
loaded through `trust_remote_code=True`.
"""

import torch

__all__ = ["masked_max_pool", "masked_mean_pool"]


def masked_mean_pool(hidden_states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Average `hidden_states` of shape `(batch, length, dim)` over the positions where `mask` is non-zero.

    Padding positions contribute exactly zero, so a sequence pooled alone equals the same sequence pooled inside a
    padded batch (up to the encoder's own padding behaviour). With `mask=None` every position counts.

    Args:
        hidden_states: Encoder output, `(batch, length, dim)`.
        mask: `(batch, length)` with 1/True on real positions and 0/False on padding.

    Returns:
        `(batch, dim)` tensor in the dtype of `hidden_states`.
    """
    if mask is None:
        return hidden_states.mean(dim=1)
    if mask.shape != hidden_states.shape[:2]:
        raise ValueError(
            f"`mask` has shape {tuple(mask.shape)} but `hidden_states` has (batch, length) = "
            f"{tuple(hidden_states.shape[:2])}: pass the mask of the pooled sequence (for audio encoders that "
            f"downsample, the frame-level mask, not the sample-level one)."
        )
    weights = mask.to(hidden_states.dtype).unsqueeze(-1)
    # A row without any valid position would divide by zero; clamping keeps it at zero instead of NaN, which is
    # what a fully padded row (e.g. a dummy row added to even out a distributed batch) should pool to.
    counts = weights.sum(dim=1).clamp(min=1.0)
    return (hidden_states * weights).sum(dim=1) / counts


def masked_max_pool(hidden_states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Element-wise maximum of `hidden_states` `(batch, length, dim)` over the positions where `mask` is non-zero.

    Padding never wins, even where every real value is below the padding's, so a sequence pooled alone equals the
    same sequence pooled inside a padded batch. A row without any valid position pools to zero. With `mask=None`
    every position counts.

    Returns a `(batch, dim)` tensor in the dtype of `hidden_states`.
    """
    if mask is None:
        return hidden_states.amax(dim=1)
    if mask.shape != hidden_states.shape[:2]:
        raise ValueError(
            f"`mask` has shape {tuple(mask.shape)}, expected (batch, length) = {tuple(hidden_states.shape[:2])}."
        )
    mask = mask.bool()
    lowest = torch.finfo(hidden_states.dtype).min
    pooled = hidden_states.masked_fill(~mask.unsqueeze(-1), lowest).amax(dim=1)
    return pooled.masked_fill(~mask.any(dim=1, keepdim=True), 0.0)
