"""Contrastive losses shared by the audiolang model families: the one implementation of each.

Building blocks, from generic to DSCLAP-specific:

- `gather_with_grad`: concatenate a tensor from every process along the batch axis, with gradients flowing back to
  each process's own rows (identity when `torch.distributed` is not initialised or has one process).
- `info_nce_from_logits` / `info_nce`: cross-entropy of each query row against all key columns, the positive of
  row `i` being column `positive_offset + i`.
- `symmetric_info_nce`: both directions between two sets of paired embeddings (audio/text, or two views of one
  modality), each process scoring its *local* rows against the *global* batch (open_clip's "local loss": the
  logits are `local x global` instead of `global x global`, and the targets are offset by `rank * local_batch`).
- `hard_negative_indices` / `hard_negative_matching_loss`: DSCLAP's language-audio matching (Eq. 6-7).
- `dsclap_loss`: Eq. 8, `lambda * (L_a + L_t) + gamma * (L_a* + L_t*)`, returned with its parts for logging.

Why the local loss is exact: with equal local batches, the global mean loss is the mean of the per-process local
losses, and the backward of the gathering all-gather sums, on each process, the gradients that every process's loss
sends to that process's rows. After data-parallel gradient averaging, every process therefore holds the gradient of
the single-process loss on the global batch, at `O(local x global)` memory instead of `O(global x global)`.

All functions expect L2-normalised embeddings when the logits are meant to be cosine similarities, and take the
multiplier (`exp(logit_scale)`, or `1 / temperature`) as `scale`. Every process must call them with the same local
batch size (the all-gather needs equal shapes; `accelerate` and `DistributedSampler` pad batches to equal size).

A flat sibling of the modeling modules (imports nothing from `audiolang`), so that it travels with a checkpoint
loaded through `trust_remote_code=True`.
"""

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__ = [
    "DsclapLossOutput",
    "distributed_rank_and_world_size",
    "dsclap_loss",
    "gather_with_grad",
    "hard_negative_indices",
    "hard_negative_matching_loss",
    "info_nce",
    "info_nce_from_logits",
    "symmetric_info_nce",
]


def distributed_rank_and_world_size() -> tuple[int, int]:
    """`(rank, world_size)` of the default process group, `(0, 1)` outside distributed runs."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate `tensor` from every process along dim 0, in rank order, keeping the autograd graph.

    `torch.distributed.nn.functional.all_gather` is the differentiable collective: its backward sums the incoming
    gradients across processes and hands each process the slice for its own rows. Outside distributed runs this is
    the identity, so single-process code pays nothing.
    """
    _, world_size = distributed_rank_and_world_size()
    if world_size == 1:
        return tensor
    # Imported here: builds of torch without distributed support cannot import it, and never get this far.
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()), dim=0)


def _positive_columns(logits: torch.Tensor, positive_offset: int) -> torch.Tensor:
    num_rows, num_columns = logits.shape
    if positive_offset < 0 or positive_offset + num_rows > num_columns:
        raise ValueError(
            f"`positive_offset`={positive_offset} puts the positives of {num_rows} rows outside the {num_columns} "
            f"key columns: the keys must contain the queries' partners (pass `rank * local_batch_size`)."
        )
    return torch.arange(num_rows, device=logits.device) + positive_offset


def info_nce_from_logits(logits: torch.Tensor, positive_offset: int = 0) -> torch.Tensor:
    """InfoNCE (mean cross-entropy) of `(queries, keys)` logits whose row `i` has its positive at column
    `positive_offset + i`; every other column is a negative."""
    return F.cross_entropy(logits, _positive_columns(logits, positive_offset))


def info_nce(
    query: torch.Tensor, keys: torch.Tensor, scale: torch.Tensor | float, positive_offset: int = 0
) -> torch.Tensor:
    """InfoNCE of `query` `(n, d)` against `keys` `(m, d)` with logits `scale * query @ keys.T`.

    With L2-normalised inputs the logits are cosine similarities times `scale` (`1 / temperature`).
    """
    return info_nce_from_logits(scale * query @ keys.T, positive_offset)


def symmetric_info_nce(
    embeds_a: torch.Tensor, embeds_b: torch.Tensor, scale: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both InfoNCE directions between paired rows of `embeds_a` and `embeds_b`, negatives from every process.

    Returns `(loss_a_to_b, loss_b_to_a)`: `embeds_a` rows as queries against all `embeds_b` rows of the global
    batch, and the reverse. Two views of one modality (in-modal contrast) work the same way as audio/text.
    """
    _check_paired(embeds_a, embeds_b)
    rank, _ = distributed_rank_and_world_size()
    offset = rank * embeds_a.shape[0]
    loss_a = info_nce(embeds_a, gather_with_grad(embeds_b), scale, offset)
    loss_b = info_nce(embeds_b, gather_with_grad(embeds_a), scale, offset)
    return loss_a, loss_b


def hard_negative_indices(
    logits: torch.Tensor,
    positive_offset: int = 0,
    num_hard_negatives: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor | None:
    """Column of one hard negative per row of `(local_queries, global_keys)` logits, or `None` without negatives.

    The pool of row `i` is the `num_hard_negatives` (K) most similar columns other than its positive. K = 1 takes
    the hardest, deterministically. K > 1 draws one of the pool uniformly: the draw is made for every row of the
    *global* batch (one integer per key column, from `generator`, or from torch's default CPU generator when
    `generator` is None) and each process keeps its own rows, so a seeded generator picks the same negatives
    whatever the number of processes. K is capped at the number of non-matching columns.
    """
    if num_hard_negatives < 1:
        raise ValueError(f"`num_hard_negatives` must be >= 1, got {num_hard_negatives}.")
    num_rows, num_columns = logits.shape
    positives = _positive_columns(logits, positive_offset)
    pool_size = min(num_hard_negatives, num_columns - 1)
    if pool_size == 0:
        return None
    rows = torch.arange(num_rows, device=logits.device)
    candidates = logits.detach().clone()  # the choice of negative carries no gradient
    candidates[rows, positives] = float("-inf")
    pool = candidates.topk(pool_size, dim=1).indices
    if pool_size == 1:
        return pool[:, 0]
    draws = torch.randint(
        pool_size,
        (num_columns,),
        generator=generator,
        device=generator.device if generator is not None else "cpu",
    )
    choice = draws[positive_offset : positive_offset + num_rows].to(logits.device)
    return pool.gather(1, choice.unsqueeze(1)).squeeze(1)


def hard_negative_matching_loss(
    logits: torch.Tensor,
    positive_offset: int = 0,
    num_hard_negatives: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DSCLAP's language-audio matching loss in one direction (Eq. 6 or 7).

    Each row is contrasted against exactly two columns, its positive and one hard negative from
    `hard_negative_indices`: `-log(exp(s_pos) / (exp(s_pos) + exp(s_neg)))`, averaged over rows. The negative is
    *selected* without gradient, but its logit carries one. A batch without any negative gives 0.
    """
    rows = torch.arange(logits.shape[0], device=logits.device)
    positive_logits = logits[rows, _positive_columns(logits, positive_offset)]
    negatives = hard_negative_indices(logits, positive_offset, num_hard_negatives, generator)
    if negatives is None:
        pair_logits = positive_logits.unsqueeze(1)
    else:
        pair_logits = torch.stack([positive_logits, logits[rows, negatives]], dim=1)
    # Class 0 is the positive in every row.
    return F.cross_entropy(pair_logits, torch.zeros_like(rows))


@dataclass
class DsclapLossOutput:
    """The DSCLAP objective (Eq. 8) and its four parts, each a scalar tensor."""

    loss: torch.Tensor
    audio_contrastive_loss: torch.Tensor
    text_contrastive_loss: torch.Tensor
    audio_matching_loss: torch.Tensor
    text_matching_loss: torch.Tensor


def dsclap_loss(
    audio_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    scale: torch.Tensor | float,
    *,
    contrastive_weight: float = 0.5,
    matching_weight: float = 0.5,
    num_hard_negatives: int = 1,
    generator: torch.Generator | None = None,
) -> DsclapLossOutput:
    """`contrastive_weight * (L_a + L_t) + matching_weight * (L_a* + L_t*)` on this process's paired rows.

    Args:
        audio_embeds: `(local_batch, dim)` L2-normalised audio embeddings; row `i` pairs with `text_embeds[i]`.
        text_embeds: `(local_batch, dim)` L2-normalised text embeddings.
        scale: Logit multiplier, `exp(logit_scale)` (already clamped by the caller).
        contrastive_weight: lambda of Eq. 8, the weight of the InfoNCE pair (Eq. 4-5).
        matching_weight: gamma of Eq. 8, the weight of the hard-negative matching pair (Eq. 6-7).
        num_hard_negatives: K, the size of the hard-negative pool (see `hard_negative_indices`).
        generator: Seeded generator for the K > 1 draw.

    Audio anchors (`L_a`, `L_a*`) pick their negatives among all texts of the global batch, text anchors (`L_t`,
    `L_t*`) among all audio clips; both use the same logits as the InfoNCE terms.
    """
    _check_paired(audio_embeds, text_embeds)
    rank, _ = distributed_rank_and_world_size()
    offset = rank * audio_embeds.shape[0]
    logits_audio = scale * audio_embeds @ gather_with_grad(text_embeds).T
    logits_text = scale * text_embeds @ gather_with_grad(audio_embeds).T

    audio_contrastive = info_nce_from_logits(logits_audio, offset)
    text_contrastive = info_nce_from_logits(logits_text, offset)
    audio_matching = hard_negative_matching_loss(logits_audio, offset, num_hard_negatives, generator)
    text_matching = hard_negative_matching_loss(logits_text, offset, num_hard_negatives, generator)
    loss = contrastive_weight * (audio_contrastive + text_contrastive) + matching_weight * (
        audio_matching + text_matching
    )
    return DsclapLossOutput(
        loss=loss,
        audio_contrastive_loss=audio_contrastive,
        text_contrastive_loss=text_contrastive,
        audio_matching_loss=audio_matching,
        text_matching_loss=text_matching,
    )


def _check_paired(embeds_a: torch.Tensor, embeds_b: torch.Tensor) -> None:
    if embeds_a.ndim != 2 or embeds_a.shape != embeds_b.shape:
        raise ValueError(
            f"Paired embeddings must both be (batch, dim) with equal shapes, got {tuple(embeds_a.shape)} and "
            f"{tuple(embeds_b.shape)}: every clip needs its transcript in the same row."
        )
