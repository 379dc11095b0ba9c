"""Classification and regression metrics of the four papers, as plain functions on arrays or lists.

Conventions shared by every function in this module:

* Arguments come as ``(predictions, references)``, the order of 🤗 ``evaluate`` (scikit-learn uses the
  reverse); ``equal_error_rate`` takes ``(scores, labels)``.
* Every rate and accuracy is a fraction in [0, 1], never a percentage: multiply by 100 to compare with
  the papers' tables.
* Device-directed detection: the positive class, ``positive_label`` (default 1), means
  "device-directed"; every other label counts as non-directed.
* Malformed input raises ``ValueError`` naming the argument: not 1-D, empty, lengths that differ,
  NaN or inf. So does a metric that the references cannot define (FRR without a positive reference,
  EER with a single class): an evaluation set that cannot measure the metric is a data bug to fix,
  not a number to log.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from sklearn import metrics as skm


def _as_1d(values: ArrayLike, name: str, dtype: DTypeLike | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D (one value per sample), got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"`{name}` is empty: a metric needs at least one sample.")
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise ValueError(f"`{name}` contains NaN or inf; remove or fix those samples before scoring.")
    return array


def _pair(
    predictions: ArrayLike,
    references: ArrayLike,
    names: tuple[str, str] = ("predictions", "references"),
    dtype: DTypeLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    first = _as_1d(predictions, names[0], dtype)
    second = _as_1d(references, names[1], dtype)
    if first.shape != second.shape:
        raise ValueError(
            f"`{names[0]}` has {first.size} samples but `{names[1]}` has {second.size}; "
            "pass exactly one per sample, in the same order."
        )
    return first, second


def accuracy(predictions: ArrayLike, references: ArrayLike) -> float:
    """Accuracy = (1/N) Σ_i [pred_i = ref_i]."""
    predictions, references = _pair(predictions, references)
    return float(skm.accuracy_score(references, predictions))


def weighted_accuracy(predictions: ArrayLike, references: ArrayLike) -> float:
    """Weighted accuracy (WA) = plain accuracy, (1/N) Σ_i [pred_i = ref_i], as the Turbo paper defines it.

    The name comes from speech-emotion recognition: accuracy equals the per-class recalls averaged with
    weights n_c / N, the class frequencies (compare ``unweighted_accuracy``).
    """
    return accuracy(predictions, references)


def unweighted_accuracy(predictions: ArrayLike, references: ArrayLike) -> float:
    """Unweighted accuracy (UA) = (1/|C|) Σ_{c∈C} recall_c, recall_c = |{i: ref_i = c, pred_i = c}| / |{i: ref_i = c}|.

    C is the set of classes present in ``references``: a class that is only predicted has no recall, and
    its wrong predictions already lower the recall of the true classes. Also called balanced accuracy.
    """
    predictions, references = _pair(predictions, references)
    present = np.unique(references)
    return float(skm.recall_score(references, predictions, labels=present, average="macro"))


def macro_f1(predictions: ArrayLike, references: ArrayLike) -> float:
    """Macro F1 = (1/|C|) Σ_{c∈C} F1_c, F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c).

    C is the union of the classes in ``references`` and ``predictions``, so predicting a class that never
    occurs costs an F1_c of 0.
    """
    predictions, references = _pair(predictions, references)
    return float(skm.f1_score(references, predictions, average="macro", zero_division=0.0))


def f1(predictions: ArrayLike, references: ArrayLike, positive_label: int | str = 1) -> float:
    """Binary F1 of the positive class = 2 TP / (2 TP + FP + FN); 0 when TP + FP + FN = 0.

    Labels must take at most two values, one of them ``positive_label``.
    """
    predictions, references = _pair(predictions, references)
    return float(
        skm.f1_score(references, predictions, pos_label=positive_label, average="binary", zero_division=0.0)
    )


def false_rejection_rate(
    predictions: ArrayLike, references: ArrayLike, positive_label: int | str = 1
) -> float:
    """False rejection rate (FRR, DSCLAP) = FN / (TP + FN), a fraction.

    The share of truly device-directed utterances (reference = ``positive_label``) that the model
    rejects, i.e. predicts as any other label. Equals 1 − recall of the positive class.
    """
    predictions, references = _pair(predictions, references)
    directed = references == positive_label
    if not directed.any():
        raise ValueError(
            f"`references` has no positive (device-directed) sample with label {positive_label!r}, so the "
            "false rejection rate is undefined; check `positive_label` or the evaluation split."
        )
    return float(np.mean(predictions[directed] != positive_label))


def false_acceptance_rate(
    predictions: ArrayLike, references: ArrayLike, positive_label: int | str = 1
) -> float:
    """False acceptance rate (FAR) = FP / (FP + TN), a fraction.

    The share of non-directed utterances (reference ≠ ``positive_label``) that the model accepts, i.e.
    predicts as ``positive_label``.
    """
    predictions, references = _pair(predictions, references)
    non_directed = references != positive_label
    if not non_directed.any():
        raise ValueError(
            f"`references` has no negative (non-directed) sample, every label is {positive_label!r}, so the "
            "false acceptance rate is undefined; check `positive_label` or the evaluation split."
        )
    return float(np.mean(predictions[non_directed] == positive_label))


class EqualErrorRate(NamedTuple):
    """Result of ``equal_error_rate``: the rate, and the score threshold where FPR and FNR meet."""

    eer: float
    threshold: float


def equal_error_rate(scores: ArrayLike, labels: ArrayLike, positive_label: int | str = 1) -> EqualErrorRate:
    """Equal error rate: the point of the ROC curve where FPR(θ) = FNR(θ), a fraction.

    A sample is accepted when score ≥ θ (higher score = more likely positive). For each distinct score
    θ, FPR(θ) = FP / (FP + TN) and FNR(θ) = FN / (TP + FN) = 1 − TPR(θ) (``sklearn.metrics.roc_curve``).
    Walking θ downwards, FNR − FPR falls from 1 to −1; between the last ROC point where it is positive
    (k−1) and the first where it is ≤ 0 (k) the curve is linear, so with
    w = (FNR − FPR)_{k−1} / ((FNR − FPR)_{k−1} − (FNR − FPR)_k):
    EER = FPR_{k−1} + w (FPR_k − FPR_{k−1}) and threshold = θ_{k−1} + w (θ_k − θ_{k−1}).
    When the crossing lies before the highest score (θ_{k−1} = +∞), the threshold is θ_k.
    Labels other than ``positive_label`` count as negatives. Returns ``EqualErrorRate(eer, threshold)``.
    """
    scores, labels = _pair(scores, labels, names=("scores", "labels"))
    if scores.dtype.kind not in "biuf":
        raise ValueError(f"`scores` must be numeric, got dtype {scores.dtype}.")
    positive = labels == positive_label
    if positive.all() or not positive.any():
        raise ValueError(
            f"`labels` must contain both positive ({positive_label!r}) and negative samples for an equal "
            "error rate; check `positive_label` or the evaluation split."
        )
    # Every distinct score is kept (no dropped collinear points) so the threshold is interpolated between
    # neighbouring scores rather than across a long straight stretch of the curve.
    fpr, tpr, thresholds = skm.roc_curve(positive, scores, drop_intermediate=False)
    gap = (1.0 - tpr) - fpr
    # gap[0] = 1 (threshold +inf accepts nothing) and gap is non-increasing, so k >= 1.
    k = int(np.argmax(gap <= 0))
    weight = gap[k - 1] / (gap[k - 1] - gap[k])
    eer = fpr[k - 1] + weight * (fpr[k] - fpr[k - 1])
    # Interpolating towards +inf is meaningless: the crossing then sits at the highest real score.
    upper = thresholds[k - 1] if np.isfinite(thresholds[k - 1]) else thresholds[k]
    threshold = upper + weight * (thresholds[k] - upper)
    return EqualErrorRate(eer=float(eer), threshold=float(threshold))


def mae(predictions: ArrayLike, references: ArrayLike) -> float:
    """Mean absolute error, MAE = (1/N) Σ_i |pred_i − ref_i|."""
    predictions, references = _pair(predictions, references, dtype=np.float64)
    return float(skm.mean_absolute_error(references, predictions))


def pearson(predictions: ArrayLike, references: ArrayLike) -> float:
    """Pearson correlation, r = Σ_i (p_i − p̄)(y_i − ȳ) / sqrt(Σ_i (p_i − p̄)² Σ_i (y_i − ȳ)²).

    Constant references raise ``ValueError`` (the split cannot measure correlation). Constant predictions
    give NaN, SciPy's convention, so that an early checkpoint that outputs one value does not abort a
    training run at evaluation.
    """
    predictions, references = _pair(predictions, references, dtype=np.float64)
    if references.size < 2 or np.ptp(references) == 0:
        raise ValueError("`references` must hold at least two distinct values for a Pearson correlation.")
    if np.ptp(predictions) == 0:
        return float("nan")
    return float(np.corrcoef(predictions, references)[0, 1])


def _sentiment_polarity(
    predictions: ArrayLike, references: ArrayLike, exclude_zero: bool
) -> tuple[np.ndarray, np.ndarray]:
    predictions, references = _pair(predictions, references, dtype=np.float64)
    if not exclude_zero:
        return predictions >= 0, references >= 0
    kept = references != 0
    if not kept.any():
        raise ValueError(
            "every reference is 0 (neutral), and neutral references are excluded; pass "
            "`exclude_zero=False` for the non-negative vs negative convention."
        )
    return predictions[kept] > 0, references[kept] > 0


def binary_accuracy_from_regression(
    predictions: ArrayLike, references: ArrayLike, exclude_zero: bool = True
) -> float:
    """Binary sentiment accuracy (Acc2) of sentiment scores such as CMU-MOSEI's [−3, 3].

    ``exclude_zero=True`` (default) follows MulT's protocol, which CTAL reports: samples whose reference is
    exactly 0 are dropped, then Acc2 = (1/M) Σ_i [(pred_i > 0) = (ref_i > 0)] over the M kept samples; a
    prediction of exactly 0 counts as negative. ``exclude_zero=False`` is the "non-negative vs negative"
    variant of later work (MISA, Self-MM): every sample is kept and the classes are value ≥ 0 and < 0.
    """
    predicted, reference = _sentiment_polarity(predictions, references, exclude_zero)
    return float(skm.accuracy_score(reference, predicted))


def f1_from_regression(predictions: ArrayLike, references: ArrayLike, exclude_zero: bool = True) -> float:
    """F1 of the binary sentiment classes of ``binary_accuracy_from_regression`` (same ``exclude_zero``).

    As in MulT's evaluation, it is the support-weighted F1 of both classes:
    F1 = Σ_{c∈{pos, neg}} (n_c / M) · 2 TP_c / (2 TP_c + FP_c + FN_c), n_c = references of class c.
    """
    predicted, reference = _sentiment_polarity(predictions, references, exclude_zero)
    return float(skm.f1_score(reference, predicted, average="weighted", zero_division=0.0))
