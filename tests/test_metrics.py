"""Metrics against cases computed by hand; the derivations are written next to each expected value."""

import math
import socket

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from audiolang.metrics import (
    EVALUATE_METRICS,
    accuracy,
    alignment,
    binary_accuracy_from_regression,
    equal_error_rate,
    f1,
    f1_from_regression,
    false_acceptance_rate,
    false_rejection_rate,
    load_metric,
    macro_f1,
    mae,
    make_compute_metrics,
    pearson,
    uniformity,
    unweighted_accuracy,
    weighted_accuracy,
)

# Six utterances, three reference classes (0 frequent, 1 and 2 rare) and a class 3 that is only predicted.
#   class 0: references at 0-3, predicted right at 0-2 -> recall 3/4; TP 3, FP 0, FN 1 -> F1 6/7
#   class 1: reference at 4, predicted right; also predicted at 5 -> recall 1; TP 1, FP 1, FN 0 -> F1 2/3
#   class 2: reference at 5, predicted 1 -> recall 0, F1 0
#   class 3: never a reference, predicted at 3 -> no recall; F1 0
CONFUSION_REFERENCES = [0, 0, 0, 0, 1, 2]
CONFUSION_PREDICTIONS = [0, 0, 0, 3, 1, 1]


def test_weighted_and_unweighted_accuracy_differ_on_imbalanced_classes():
    # WA: 4 of 6 right. UA: mean recall over the reference classes {0, 1, 2} = (3/4 + 1 + 0) / 3;
    # averaging over class 3 as well would give 7/16.
    assert accuracy(CONFUSION_PREDICTIONS, CONFUSION_REFERENCES) == pytest.approx(4 / 6)
    assert weighted_accuracy(CONFUSION_PREDICTIONS, CONFUSION_REFERENCES) == pytest.approx(4 / 6)
    assert unweighted_accuracy(CONFUSION_PREDICTIONS, CONFUSION_REFERENCES) == pytest.approx(7 / 12)


def test_macro_f1_averages_over_predicted_classes_too():
    # (6/7 + 2/3 + 0 + 0) / 4 = 8/21
    assert macro_f1(CONFUSION_PREDICTIONS, CONFUSION_REFERENCES) == pytest.approx(8 / 21)


def test_class_metrics_accept_string_labels():
    names = np.array(["neutral", "happy", "sad", "angry"])
    predictions, references = names[CONFUSION_PREDICTIONS], names[CONFUSION_REFERENCES]
    assert unweighted_accuracy(predictions, references) == pytest.approx(7 / 12)
    assert macro_f1(predictions, references) == pytest.approx(8 / 21)


# Device-directed detection, 1 = directed: four directed utterances (one rejected), three not (one accepted).
DIRECTED_REFERENCES = [1, 1, 1, 1, 0, 0, 0]
DIRECTED_PREDICTIONS = [1, 0, 1, 1, 1, 0, 0]


def test_false_rejection_and_acceptance_rates():
    assert false_rejection_rate(DIRECTED_PREDICTIONS, DIRECTED_REFERENCES) == pytest.approx(1 / 4)
    assert false_acceptance_rate(DIRECTED_PREDICTIONS, DIRECTED_REFERENCES) == pytest.approx(1 / 3)
    # TP 3, FP 1, FN 1 -> 2*3 / (2*3 + 1 + 1)
    assert f1(DIRECTED_PREDICTIONS, DIRECTED_REFERENCES) == pytest.approx(3 / 4)


def test_positive_label_swaps_the_roles_of_the_classes():
    assert false_rejection_rate(DIRECTED_PREDICTIONS, DIRECTED_REFERENCES, positive_label=0) == pytest.approx(
        1 / 3
    )
    assert false_acceptance_rate(
        DIRECTED_PREDICTIONS, DIRECTED_REFERENCES, positive_label=0
    ) == pytest.approx(1 / 4)
    # class 0: TP 2, FP 1, FN 1 -> 4/6
    assert f1(DIRECTED_PREDICTIONS, DIRECTED_REFERENCES, positive_label=0) == pytest.approx(2 / 3)


def test_rates_without_the_class_they_measure_raise():
    with pytest.raises(ValueError, match="no positive"):
        false_rejection_rate([1, 0], [0, 0])
    with pytest.raises(ValueError, match="no negative"):
        false_acceptance_rate([1, 0], [1, 1])


@pytest.mark.parametrize(
    ("scores", "labels", "positive_label", "eer", "threshold"),
    [
        # Separable: accepting scores >= 0.8 makes no error.
        ([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0], 1, 0.0, 0.8),
        ([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0, 0.0, 0.8),
        # Overlap, crossing on an ROC point: at >= 0.6, 0.4 is rejected (FRR 1/3), 0.7 accepted (FAR 1/3).
        ([0.9, 0.6, 0.4, 0.7, 0.3, 0.1], [1, 1, 1, 0, 0, 0], 1, 1 / 3, 0.6),
        # Crossing between points: from >= 0.7 (FAR 1/4, FRR 1/2) to >= 0.5 (FAR 1/4, FRR 0) FRR meets
        # FAR = 1/4 halfway, so the threshold is halfway too.
        ([0.9, 0.5, 0.7, 0.3, 0.1, 0.05], [1, 1, 0, 0, 0, 0], 1, 0.25, 0.6),
        # Ties only: from accept-nothing (FAR 0, FRR 1) to accept-all (FAR 1, FRR 0), crossing at 1/2.
        ([0.5, 0.5], [1, 0], 1, 0.5, 0.5),
        # Inverted scores: at >= 0.8 both negatives are accepted and both positives rejected.
        ([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0], 1, 1.0, 0.8),
    ],
)
def test_equal_error_rate(scores, labels, positive_label, eer, threshold):
    result = equal_error_rate(scores, labels, positive_label=positive_label)
    assert result.eer == pytest.approx(eer)
    assert result.threshold == pytest.approx(threshold)


def test_equal_error_rate_needs_both_classes():
    with pytest.raises(ValueError, match="both positive"):
        equal_error_rate([0.2, 0.9], [1, 1])


def test_equal_error_rate_rejects_non_numeric_scores():
    with pytest.raises(ValueError, match="numeric"):
        equal_error_rate(["high", "low"], [1, 0])


def test_mae_and_pearson():
    # |1-1| + |2-3| + |4-2| = 3 over 3 samples
    assert mae([1, 2, 4], [1, 3, 2]) == pytest.approx(1.0)
    # deviations (-1, 0, 1) and (-1, 1, 0): covariance sum 1, variance sums 2 and 2 -> 1/2
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)


def test_pearson_constant_predictions_is_nan_constant_references_raise():
    assert math.isnan(pearson([1.0, 1.0, 1.0], [1, 3, 2]))
    with pytest.raises(ValueError, match="two distinct values"):
        pearson([1, 3, 2], [1.0, 1.0, 1.0])


# Sentiment scores; the last reference is neutral (0) and the third prediction is exactly 0.
SENTIMENT_REFERENCES = [2, 1, 0.5, -1, -2, 0]
SENTIMENT_PREDICTIONS = [1, -1, 0, -2, -0.5, 0.7]


def test_acc2_and_f1_drop_neutral_references_and_count_zero_predictions_negative():
    # Kept: references (+, +, +, -, -), predictions (+, -, 0 -> -, -, -): right at 0, 3, 4 -> 3/5.
    assert binary_accuracy_from_regression(SENTIMENT_PREDICTIONS, SENTIMENT_REFERENCES) == pytest.approx(
        3 / 5
    )
    # positive: TP 1, FP 0, FN 2 -> F1 1/2, support 3; negative: TP 2, FP 2, FN 0 -> F1 2/3, support 2.
    # Support-weighted: (3 * 1/2 + 2 * 2/3) / 5 = 17/30.
    assert f1_from_regression(SENTIMENT_PREDICTIONS, SENTIMENT_REFERENCES) == pytest.approx(17 / 30)


def test_acc2_non_negative_convention_keeps_neutral_references():
    # value >= 0: references (+, +, +, -, -, +), predictions (+, -, +, -, -, +): wrong only at 1 -> 5/6.
    assert binary_accuracy_from_regression(
        SENTIMENT_PREDICTIONS, SENTIMENT_REFERENCES, exclude_zero=False
    ) == pytest.approx(5 / 6)
    # positive: TP 3, FP 0, FN 1 -> 6/7, support 4; negative: TP 2, FP 1, FN 0 -> 4/5, support 2.
    assert f1_from_regression(
        SENTIMENT_PREDICTIONS, SENTIMENT_REFERENCES, exclude_zero=False
    ) == pytest.approx((4 * 6 / 7 + 2 * 4 / 5) / 6)


def test_acc2_with_only_neutral_references_raises():
    with pytest.raises(ValueError, match="neutral"):
        binary_accuracy_from_regression([0.5, -0.5], [0, 0])


# Three unit vectors: e1, e2, -e1. Squared distances: |e1-e2|² = 2, |e1+e1|² = 4, |e2+e1|² = 2.
UNIT_VECTORS = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]
# Paired with e2, e2, e1: distances sqrt(2), 0, 2.
PARTNERS = [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]


def test_alignment_by_hand():
    assert alignment(UNIT_VECTORS, PARTNERS) == pytest.approx((2 + 0 + 4) / 3)
    assert alignment(UNIT_VECTORS, PARTNERS, alpha=1) == pytest.approx((math.sqrt(2) + 0 + 2) / 3)


def test_uniformity_by_hand():
    expected = math.log((math.exp(-2 * 2) + math.exp(-2 * 4) + math.exp(-2 * 2)) / 3)
    assert uniformity(UNIT_VECTORS) == pytest.approx(expected)
    assert uniformity(UNIT_VECTORS, t=1) == pytest.approx(math.log((2 * math.exp(-2) + math.exp(-4)) / 3))


def test_embedding_metrics_take_torch_and_normalize_on_request():
    scaled = torch.tensor(UNIT_VECTORS) * torch.tensor([[3.0], [0.5], [2.0]])
    partners = torch.tensor(PARTNERS, requires_grad=True)
    assert alignment(scaled, partners, normalize=True) == pytest.approx(2.0)
    assert uniformity(scaled, normalize=True) == pytest.approx(uniformity(UNIT_VECTORS))
    # Unnormalised: squared distances |(3,0)-(0,1)|² = 10, |(0,.5)-(0,1)|² = 0.25, |(-2,0)-(1,0)|² = 9.
    assert alignment(scaled, partners) == pytest.approx((10 + 0.25 + 9) / 3)


def test_embedding_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        alignment(UNIT_VECTORS, PARTNERS[:2])
    with pytest.raises(ValueError, match="2-D"):
        alignment([1.0, 0.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="at least two"):
        uniformity([[1.0, 0.0]])
    with pytest.raises(ValueError, match="NaN"):
        uniformity([[1.0, 0.0], [float("nan"), 1.0]])


PAIR_METRICS = [
    accuracy,
    weighted_accuracy,
    unweighted_accuracy,
    macro_f1,
    f1,
    false_rejection_rate,
    false_acceptance_rate,
    equal_error_rate,
    mae,
    pearson,
    binary_accuracy_from_regression,
    f1_from_regression,
]


@pytest.mark.parametrize("metric", PAIR_METRICS, ids=lambda metric: metric.__name__)
def test_bad_input_raises_a_clear_value_error(metric):
    with pytest.raises(ValueError, match=r"has 3 samples but `\w+` has 2"):
        metric([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="is empty"):
        metric([], [])
    with pytest.raises(ValueError, match="must be 1-D"):
        metric([[1, 0], [0, 1]], [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="NaN or inf"):
        metric([1.0, float("nan")], [1, 0])


def test_compute_metrics_directed_from_a_tuple_of_outputs():
    # Predicted classes (1, 0, 1, 1, 0) against (1, 1, 1, 0, 0): right at 0, 2, 4.
    logits = np.array([[0, 2], [1, 0], [0, 3], [0, 1], [2, 0]], dtype=np.float32)
    hidden = np.zeros((5, 4), dtype=np.float32)
    metrics = make_compute_metrics("directed")(
        EvalPrediction(predictions=(logits, hidden), label_ids=np.array([1, 1, 1, 0, 0]))
    )
    # Scores by P(class 1): positives 3, 2, -1 and negatives 1, -2 in log-odds. At >= 2: FAR 0, FRR 1/3;
    # at >= 1: FAR 1/2, FRR 1/3; the gap FRR - FAR goes 1/3 -> -1/6, crossing 2/3 of the way: EER 1/3.
    assert metrics == pytest.approx(
        {"accuracy": 3 / 5, "frr": 1 / 3, "far": 1 / 2, "f1": 2 / 3, "eer": 1 / 3}
    )


def test_compute_metrics_directed_eer_survives_saturated_probabilities():
    # Softmax gives 1.0 for both in float64, a tie (EER 1/2); the ranking itself is perfect.
    logits = np.array([[0, 60], [0, 50]], dtype=np.float32)
    metrics = make_compute_metrics("directed")(EvalPrediction(predictions=logits, label_ids=np.array([1, 0])))
    assert metrics["eer"] == 0.0


def test_compute_metrics_intent_and_speaker():
    logits = np.eye(4, dtype=np.float32)[CONFUSION_PREDICTIONS]
    prediction = EvalPrediction(predictions=logits, label_ids=np.array(CONFUSION_REFERENCES))
    assert make_compute_metrics("intent")(prediction) == pytest.approx(
        {"accuracy": 4 / 6, "macro_f1": 8 / 21}
    )
    assert make_compute_metrics("speaker")(prediction) == pytest.approx({"accuracy": 4 / 6})


def test_compute_metrics_emotion():
    logits = np.eye(4, dtype=np.float32)[CONFUSION_PREDICTIONS]
    prediction = EvalPrediction(predictions=logits, label_ids=np.array(CONFUSION_REFERENCES))
    assert make_compute_metrics("emotion")(prediction) == pytest.approx({"wa": 4 / 6, "ua": 7 / 12})


def test_compute_metrics_valence_from_a_column_of_scores():
    predictions = np.array([[-1.0], [-2.0], [1.0], [0.0], [2.0]], dtype=np.float32)
    references = np.array([-2.0, -1.0, 0.0, 1.0, 2.0], dtype=np.float32)
    metrics = make_compute_metrics("valence")(EvalPrediction(predictions=predictions, label_ids=references))
    # MAE: errors 1, 1, 1, 1, 0 -> 4/5. Pearson: both means 0, Σ p·y = 8, Σ p² = Σ y² = 10 -> 0.8.
    # Acc2 without the neutral reference: references (-, -, +, +), predictions (-, -, 0 -> -, +) -> 3/4.
    # F1: positive TP 1, FN 1 -> 2/3; negative TP 2, FP 1 -> 4/5; supports 2 and 2 -> 11/15.
    assert metrics == pytest.approx({"mae": 4 / 5, "pearson": 0.8, "acc2": 3 / 4, "f1": 11 / 15})


def test_compute_metrics_rejects_bad_tasks_and_shapes():
    with pytest.raises(ValueError, match="valid tasks: directed, intent, emotion, valence, speaker"):
        make_compute_metrics("sentiment")
    three_classes = EvalPrediction(predictions=np.zeros((2, 3)), label_ids=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        make_compute_metrics("directed")(three_classes)
    with pytest.raises(ValueError, match=r"\(N,\) or \(N, 1\)"):
        make_compute_metrics("valence")(three_classes)


@pytest.fixture
def offline(monkeypatch):
    """No network at all: any socket connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a metric tried to reach the network")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize(
    ("name", "inputs", "expected"),
    [
        (
            "unweighted_accuracy",
            {"predictions": CONFUSION_PREDICTIONS, "references": CONFUSION_REFERENCES},
            {"unweighted_accuracy": 7 / 12},
        ),
        (
            "equal_error_rate",
            {"predictions": [0.9, 0.5, 0.7, 0.3, 0.1, 0.05], "references": [1, 1, 0, 0, 0, 0]},
            {"eer": 0.25, "threshold": 0.6},
        ),
        (
            "false_rejection_rate",
            {"predictions": DIRECTED_PREDICTIONS, "references": DIRECTED_REFERENCES},
            {"false_rejection_rate": 1 / 4},
        ),
        (
            "false_rejection_rate",
            {"predictions": DIRECTED_PREDICTIONS, "references": DIRECTED_REFERENCES, "positive_label": 0},
            {"false_rejection_rate": 1 / 3},
        ),
        (
            "false_acceptance_rate",
            {"predictions": DIRECTED_PREDICTIONS, "references": DIRECTED_REFERENCES},
            {"false_acceptance_rate": 1 / 3},
        ),
    ],
)
def test_evaluate_modules_load_offline_and_match(offline, name, inputs, expected):
    assert load_metric(name).compute(**inputs) == pytest.approx(expected)


def test_every_evaluate_module_is_tested():
    assert set(EVALUATE_METRICS) == {
        "unweighted_accuracy",
        "equal_error_rate",
        "false_rejection_rate",
        "false_acceptance_rate",
    }


def test_load_metric_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="available: equal_error_rate"):
        load_metric("accuracy")


# --- speaker verification ----------------------------------------------------------------------------------------


def test_trial_pairs_are_every_unordered_pair():
    from audiolang.metrics import trial_pairs

    first, second, same = trial_pairs(["a", "b", "a", "c"])
    assert list(zip(first.tolist(), second.tolist(), strict=True)) == [
        (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)
    ]  # fmt: skip
    assert same.tolist() == [False, True, False, False, False, False]


def test_speaker_verification_eer_by_hand():
    from audiolang.metrics import cosine_scores, speaker_verification_eer, trial_pairs

    # Two speakers on orthogonal axes, one utterance of speaker b leaning towards a: by hand, the cosines are
    # target (0,1)=1, (2,3)=0.6; non-target (0,2)=(1,2)=0, (0,3)=(1,3)=0.8. Accepting at 0.8 rejects one of
    # two targets (FNR 1/2) and accepts two of four non-targets (FPR 1/2): the curves cross there, EER = 0.5.
    embeddings = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    speakers = ["a", "a", "b", "b"]
    first, second, _ = trial_pairs(speakers)
    np.testing.assert_allclose(cosine_scores(embeddings, first, second), [1.0, 0.0, 0.8, 0.0, 0.8, 0.6])
    result = speaker_verification_eer(embeddings, speakers)
    assert result.eer == pytest.approx(0.5)
    assert (result.target_trials, result.nontarget_trials) == (2, 4)
    separable = np.array([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]])
    assert speaker_verification_eer(separable, speakers).eer == 0.0


def test_speaker_verification_needs_targets_and_nontargets():
    from audiolang.metrics import speaker_verification_eer

    with pytest.raises(ValueError, match="two speakers"):
        speaker_verification_eer(np.eye(3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="one id per row"):
        speaker_verification_eer(np.eye(3), ["a", "a"])
