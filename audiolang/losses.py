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
- `turbo_loss`: Turbo's Eq. 4, two in-modal and four cross-modal InfoNCE terms over two dropout views.
- `masked_l1_loss`: reconstruction error on masked positions only (CTAL's MCAM, lrat's denoising).
- `masked_lm_loss`: cross-entropy on the labelled positions only (CTAL's MLM, lrat's text denoising/translation).
- `sequence_classification_loss`: transformers' problem types, with L1 for regression (CTAL and lrat fine-tuning).
- `orthogonality_loss`: `|cos(a, b)|` averaged over rows (CTAL's orthogonal fusion regulariser).

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
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__ = [
    "DsclapLossOutput",
    "TurboLossOutput",
    "distributed_rank_and_world_size",
    "dsclap_loss",
    "gather_with_grad",
    "global_info_nce",
    "hard_negative_indices",
    "hard_negative_matching_loss",
    "info_nce",
    "info_nce_from_logits",
    "masked_l1_loss",
    "masked_lm_loss",
    "orthogonality_loss",
    "sequence_classification_loss",
    "symmetric_info_nce",
    "turbo_loss",
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
    return global_info_nce(embeds_a, embeds_b, scale), global_info_nce(embeds_b, embeds_a, scale)


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


def global_info_nce(query: torch.Tensor, keys: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """One-direction InfoNCE of this process's `query` rows against the `keys` of the whole global batch.

    Row `i` of `query` has its positive in row `i` of `keys` (both local, `(local_batch, dim)`); the negatives are
    every other key of every process, gathered with gradients.
    """
    _check_paired(query, keys)
    rank, _ = distributed_rank_and_world_size()
    return info_nce(query, gather_with_grad(keys), scale, rank * query.shape[0])


@dataclass
class TurboLossOutput:
    """Turbo's self-supervised objective (Eq. 4) and its six InfoNCE terms, each a scalar tensor.

    `cross_loss_ij` contrasts audio of pass `i` (queries) with text of pass `j` (keys).
    """

    loss: torch.Tensor
    audio_in_modal_loss: torch.Tensor
    text_in_modal_loss: torch.Tensor
    cross_loss_11: torch.Tensor
    cross_loss_12: torch.Tensor
    cross_loss_21: torch.Tensor
    cross_loss_22: torch.Tensor


def turbo_loss(
    audio_embeds_1: torch.Tensor,
    text_embeds_1: torch.Tensor,
    audio_embeds_2: torch.Tensor,
    text_embeds_2: torch.Tensor,
    scale: torch.Tensor | float,
) -> TurboLossOutput:
    """`l_in^a + l_in^t + l_cross^{1,1} + l_cross^{1,2} + l_cross^{2,1} + l_cross^{2,2}` (Turbo Eq. 2-4).

    Args:
        audio_embeds_1, text_embeds_1: `(local_batch, dim)` L2-normalised joint-space embeddings of the first
            forward pass; row `i` of every argument comes from the same audio-text pair.
        audio_embeds_2, text_embeds_2: the same rows from the second pass (other dropout masks).
        scale: `1 / temperature`.

    Each term is one-directional as in the paper's Eq. 2-3 and Listing 1: the first view's rows are the queries,
    the second view's rows (all of them, across processes) the keys. In-modal terms contrast pass 1 with pass 2
    of one modality; cross-modal term `(i, j)` contrasts audio of pass `i` with text of pass `j`.
    """
    audio_in = global_info_nce(audio_embeds_1, audio_embeds_2, scale)
    text_in = global_info_nce(text_embeds_1, text_embeds_2, scale)
    cross_11 = global_info_nce(audio_embeds_1, text_embeds_1, scale)
    cross_12 = global_info_nce(audio_embeds_1, text_embeds_2, scale)
    cross_21 = global_info_nce(audio_embeds_2, text_embeds_1, scale)
    cross_22 = global_info_nce(audio_embeds_2, text_embeds_2, scale)
    return TurboLossOutput(
        loss=audio_in + text_in + cross_11 + cross_12 + cross_21 + cross_22,
        audio_in_modal_loss=audio_in,
        text_in_modal_loss=text_in,
        cross_loss_11=cross_11,
        cross_loss_12=cross_12,
        cross_loss_21=cross_21,
        cross_loss_22=cross_22,
    )


def masked_l1_loss(predictions: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the positions where `mask` is true, and only those.

    Args:
        predictions, targets: `(batch, length, dim)` (or any shape whose leading dims match `mask`).
        mask: `(batch, length)` boolean, true on the positions to reconstruct (masked frames); padding and
            unmasked positions contribute nothing.

    Returns the mean over masked elements (positions x feature dims), 0 (with a gradient path) when nothing is
    masked, so a batch without any masked frame does not produce NaN.
    """
    if predictions.shape != targets.shape:
        raise ValueError(
            f"`predictions` {tuple(predictions.shape)} and `targets` {tuple(targets.shape)} differ."
        )
    if mask.shape != predictions.shape[: mask.ndim]:
        raise ValueError(
            f"`mask` {tuple(mask.shape)} must match the leading dims of `predictions` {tuple(predictions.shape)}."
        )
    mask = mask.bool()
    selected = (predictions - targets).abs()[mask]
    if selected.numel() == 0:
        return predictions.sum() * 0.0
    return selected.mean()


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of `(batch, length, vocab)` logits over the positions whose label is not -100; 0 (with a
    gradient path) when there is none, as in a short batch where no token was drawn for masking, instead of NaN."""
    selected = labels != -100
    if not selected.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[selected].float(), labels[selected])


def sequence_classification_loss(logits: torch.Tensor, labels: torch.Tensor, config: Any) -> torch.Tensor:
    """The task loss of a sequence classification head, by `config.problem_type` (inferred and stored on first use,
    as transformers does): `num_labels == 1` is regression trained with L1 (the sentiment setting of CTAL Sec. 4.2.2
    and of lrat, instead of transformers' MSE), integer labels single-label cross-entropy, float multi-hot labels
    multi-label binary cross-entropy.

    Args:
        logits: `(batch, num_labels)`.
        labels: `(batch,)` class indices, `(batch,)` regression targets or `(batch, num_labels)` multi-hot floats.
        config: The model's config (`num_labels`, `problem_type`).
    """
    num_labels = config.num_labels
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        return F.l1_loss(logits.float().reshape(labels.shape), labels.float())
    if config.problem_type == "single_label_classification":
        return F.cross_entropy(logits.float().view(-1, num_labels), labels.view(-1))
    return F.binary_cross_entropy_with_logits(logits.float(), labels.to(logits.device).float())


def orthogonality_loss(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """`|cos(a_i, b_i)|` averaged over the rows of two `(batch, dim)` tensors (CTAL's L_Orth, one term)."""
    if a.shape != b.shape:
        raise ValueError(f"`a` {tuple(a.shape)} and `b` {tuple(b.shape)} must have the same shape.")
    return F.cosine_similarity(a, b, dim=-1, eps=eps).abs().mean()


def _check_paired(embeds_a: torch.Tensor, embeds_b: torch.Tensor) -> None:
    if embeds_a.ndim != 2 or embeds_a.shape != embeds_b.shape:
        raise ValueError(
            f"Paired embeddings must both be (batch, dim) with equal shapes, got {tuple(embeds_a.shape)} and "
            f"{tuple(embeds_b.shape)}: every clip needs its transcript in the same row."
        )
