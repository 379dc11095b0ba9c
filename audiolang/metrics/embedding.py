"""Alignment and uniformity of embeddings (Wang & Isola, 2020), in the cross-modal form of Turbo's Listing 2.

Both are reported as Python floats for analysis (lower is better for both). The differentiable training
losses live with the other losses; these functions detach their input and compute in float64.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike


def _as_embeddings(values: torch.Tensor | ArrayLike, name: str, normalize: bool) -> torch.Tensor:
    embeddings = torch.as_tensor(
        values.detach() if isinstance(values, torch.Tensor) else np.asarray(values), dtype=torch.float64
    )
    if embeddings.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D (samples, dim), got shape {tuple(embeddings.shape)}.")
    if embeddings.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: it needs at least one embedding.")
    if not torch.isfinite(embeddings).all():
        raise ValueError(f"`{name}` contains NaN or inf.")
    return F.normalize(embeddings, dim=1) if normalize else embeddings


def alignment(
    x: torch.Tensor | ArrayLike, y: torch.Tensor | ArrayLike, alpha: float = 2, normalize: bool = False
) -> float:
    """Alignment = (1/N) Σ_i ‖x_i − y_i‖₂^α, over the N paired rows of ``x`` and ``y`` (e.g. audio and text).

    Turbo's ``lalign(A, T, alpha=2)``. The embeddings are meant to lie on the unit sphere: pass them
    L2-normalised, or set ``normalize=True`` to normalise each row here.
    """
    x = _as_embeddings(x, "x", normalize)
    y = _as_embeddings(y, "y", normalize)
    if x.shape != y.shape:
        raise ValueError(
            f"`x` {tuple(x.shape)} and `y` {tuple(y.shape)} must have the same shape: row i of each is a pair."
        )
    return float((x - y).norm(dim=1).pow(alpha).mean())


def uniformity(x: torch.Tensor | ArrayLike, t: float = 2, normalize: bool = False) -> float:
    """Uniformity = log( (2 / (N(N−1))) Σ_{i<j} exp(−t ‖x_i − x_j‖₂²) ), over the N rows of ``x``.

    Turbo's ``lunif(A, t=2)``: one modality at a time, over distinct pairs only (``torch.pdist``). Needs
    N ≥ 2. Pass L2-normalised rows, or set ``normalize=True``.
    """
    x = _as_embeddings(x, "x", normalize)
    if x.shape[0] < 2:
        raise ValueError(f"`x` has {x.shape[0]} row; uniformity needs at least two embeddings.")
    squared_distances = torch.pdist(x, p=2).pow(2)
    return float(squared_distances.mul(-t).exp().mean().log())
