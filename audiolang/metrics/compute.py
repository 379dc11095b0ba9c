"""``compute_metrics`` functions for ``transformers.Trainer``, one per downstream task."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .classification import (
    accuracy,
    binary_accuracy_from_regression,
    equal_error_rate,
    f1,
    f1_from_regression,
    false_acceptance_rate,
    false_rejection_rate,
    macro_f1,
    mae,
    pearson,
    unweighted_accuracy,
    weighted_accuracy,
)

if TYPE_CHECKING:
    from transformers import EvalPrediction


def _model_output(prediction: EvalPrediction) -> np.ndarray:
    outputs = prediction.predictions
    # Models that also return hidden states or embeddings hand Trainer a tuple whose first item is the
    # logits (or the regression scores).
    if isinstance(outputs, (tuple, list)):
        outputs = outputs[0]
    return np.asarray(outputs)


def _class_logits(prediction: EvalPrediction, task: str) -> np.ndarray:
    logits = _model_output(prediction)
    if logits.ndim != 2:
        raise ValueError(f"task {task!r} expects logits of shape (N, num_labels), got {logits.shape}.")
    return logits


def _directed_metrics(prediction: EvalPrediction) -> dict[str, float]:
    logits = _class_logits(prediction, "directed")
    if logits.shape[1] != 2:
        raise ValueError(
            f"task 'directed' expects logits of shape (N, 2), column 1 = device-directed, got {logits.shape}."
        )
    labels = np.asarray(prediction.label_ids)
    predicted = logits.argmax(axis=1)
    # The EER depends only on how the scores rank. The log-odds l1 − l0 rank exactly like the softmax
    # probability of class 1, σ(l1 − l0), but do not saturate into ties at 1.0 for confident logits.
    log_odds = logits[:, 1].astype(np.float64) - logits[:, 0]
    return {
        "accuracy": accuracy(predicted, labels),
        "frr": false_rejection_rate(predicted, labels),
        "far": false_acceptance_rate(predicted, labels),
        "f1": f1(predicted, labels),
        "eer": equal_error_rate(log_odds, labels).eer,
    }


def _intent_metrics(prediction: EvalPrediction) -> dict[str, float]:
    predicted = _class_logits(prediction, "intent").argmax(axis=1)
    labels = np.asarray(prediction.label_ids)
    return {"accuracy": accuracy(predicted, labels), "macro_f1": macro_f1(predicted, labels)}


def _emotion_metrics(prediction: EvalPrediction) -> dict[str, float]:
    predicted = _class_logits(prediction, "emotion").argmax(axis=1)
    labels = np.asarray(prediction.label_ids)
    return {"wa": weighted_accuracy(predicted, labels), "ua": unweighted_accuracy(predicted, labels)}


def _speaker_metrics(prediction: EvalPrediction) -> dict[str, float]:
    predicted = _class_logits(prediction, "speaker").argmax(axis=1)
    return {"accuracy": accuracy(predicted, np.asarray(prediction.label_ids))}


def _as_scores(values: np.ndarray, name: str) -> np.ndarray:
    # A regression head with num_labels=1 emits (N, 1).
    if values.ndim == 2 and values.shape[1] == 1:
        return values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"regression expects {name} of shape (N,) or (N, 1), got {values.shape}.")
    return values


def _valence_metrics(prediction: EvalPrediction) -> dict[str, float]:
    scores = _as_scores(_model_output(prediction), "predictions")
    labels = _as_scores(np.asarray(prediction.label_ids), "label_ids")
    return {
        "mae": mae(scores, labels),
        "pearson": pearson(scores, labels),
        "acc2": binary_accuracy_from_regression(scores, labels),
        "f1": f1_from_regression(scores, labels),
    }


def _classification_metrics(prediction: EvalPrediction) -> dict[str, float]:
    predicted = _class_logits(prediction, "classification").argmax(axis=1)
    labels = np.asarray(prediction.label_ids)
    return {"accuracy": accuracy(predicted, labels), "macro_f1": macro_f1(predicted, labels)}


def _regression_metrics(prediction: EvalPrediction) -> dict[str, float]:
    scores = _as_scores(_model_output(prediction), "predictions")
    labels = _as_scores(np.asarray(prediction.label_ids), "label_ids")
    return {"mae": mae(scores, labels), "pearson": pearson(scores, labels)}


_TASK_METRICS: dict[str, Callable[[EvalPrediction], dict[str, float]]] = {
    "directed": _directed_metrics,
    "intent": _intent_metrics,
    "emotion": _emotion_metrics,
    "valence": _valence_metrics,
    "speaker": _speaker_metrics,
    # Any dataset's labels, by task type (`--label_column_name`).
    "classification": _classification_metrics,
    "regression": _regression_metrics,
    "speaker_verification": _speaker_metrics,
}
TASKS: tuple[str, ...] = tuple(_TASK_METRICS)


def make_compute_metrics(task: str) -> Callable[[EvalPrediction], dict[str, float]]:
    """Return ``compute_metrics(eval_prediction) -> dict`` for ``transformers.Trainer`` on ``task``.

    Classification tasks take the argmax of the logits (``predictions``, or its first item when the model
    returns a tuple); every value is a fraction, see ``audiolang.metrics.classification``:

    * ``"directed"`` (device-directed detection; label 1 = directed, logits (N, 2)): ``accuracy``,
      ``frr``, ``far``, ``f1`` of the directed class, and ``eer`` scored by the probability of class 1;
    * ``"intent"``: ``accuracy``, ``macro_f1``;
    * ``"emotion"``: ``wa`` (weighted accuracy), ``ua`` (unweighted accuracy);
    * ``"valence"`` (regression, predictions (N,) or (N, 1)): ``mae``, ``pearson``, ``acc2`` and ``f1``
      with neutral (0) references excluded, as in MulT/CTAL;
    * ``"speaker"`` (speaker identification): ``accuracy``;
    * any other dataset's labels by task type: ``"classification"`` ``accuracy``, ``macro_f1``;
      ``"regression"`` ``mae``, ``pearson``; ``"speaker_verification"`` as ``"speaker"``.
    """
    try:
        return _TASK_METRICS[task]
    except KeyError:
        raise ValueError(f"Unknown task {task!r}; valid tasks: {', '.join(TASKS)}.") from None
