"""Speaker verification: trial pairs, cosine scoring and the equal error rate over them (CTAL Sec. 4.2.3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .classification import equal_error_rate


@dataclass(frozen=True)
class VerificationResult:
    """EER over the trials, its cosine threshold, and how many target / non-target trials were scored."""

    eer: float
    threshold: float
    target_trials: int
    nontarget_trials: int


def trial_pairs(speakers: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered pair of distinct utterances ``(i, j)``, ``i < j``, and whether both have the same speaker.

    Returns ``(first, second, same_speaker)`` index arrays. All pairs of a test set is the exhaustive trial list
    (n (n - 1) / 2 trials: 28,680 for 240 utterances).
    """
    speakers = np.asarray(speakers)
    if speakers.ndim != 1 or speakers.size < 2:
        raise ValueError(
            f"`speakers` must be a 1-D sequence of at least two ids, got shape {speakers.shape}."
        )
    first, second = np.triu_indices(speakers.size, k=1)
    return first, second, speakers[first] == speakers[second]


def cosine_scores(embeddings: ArrayLike, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Cosine similarity of the embeddings of each trial pair."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2:
        raise ValueError(f"`embeddings` must be 2-D (utterances, dim), got shape {embeddings.shape}.")
    if not np.isfinite(embeddings).all():
        raise ValueError("`embeddings` contains NaN or inf.")
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return np.einsum("ij,ij->i", unit[first], unit[second])


def speaker_verification_eer(embeddings: ArrayLike, speakers: ArrayLike) -> VerificationResult:
    """EER of cosine scoring over all trial pairs of ``embeddings`` (one row per utterance) labelled by
    ``speakers``: a trial is accepted when its cosine similarity reaches the threshold."""
    embeddings = np.asarray(embeddings)
    speakers = np.asarray(speakers)
    if len(embeddings) != len(speakers):
        raise ValueError(f"{len(embeddings)} embeddings but {len(speakers)} speaker ids: one id per row.")
    first, second, same = trial_pairs(speakers)
    if same.all() or not same.any():
        raise ValueError(
            "speaker verification needs at least two speakers and a speaker with two utterances."
        )
    result = equal_error_rate(cosine_scores(embeddings, first, second), same.astype(int))
    return VerificationResult(
        eer=result.eer,
        threshold=result.threshold,
        target_trials=int(same.sum()),
        nontarget_trials=int((~same).sum()),
    )
