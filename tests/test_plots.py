"""The evaluation and training plots: each function's drawn data against hand computations and the metrics, and the
files as images of the expected size."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from scipy.stats import norm
from transformers import EvalPrediction

from audiolang.metrics import make_compute_metrics, speaker_verification_eer
from audiolang.plots import (
    DPI,
    loss_curves,
    plot_confusion_matrix,
    plot_det_roc,
    plot_training_curves,
    write_evaluation_plots,
    write_training_curves,
)

# Four device-directed (1) and four other clips. Accepting at score >= 0.6 rejects the positive at 0.3 (FRR 1/4) and
# accepts the negative at 0.6 (FAR 1/4); any higher threshold has FAR 0 < FRR: the EER is 0.25, at 0.6.
DETECTION_LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0])
DETECTION_SCORES = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05])


def image_shape(path: Path) -> tuple[int, ...]:
    """The pixel shape of a PNG, read back: it is a valid image."""
    return imread(path).shape


def test_det_roc_marks_the_hand_computed_eer(tmp_path):
    plot = plot_det_roc(DETECTION_LABELS, DETECTION_SCORES, tmp_path / "det.png")
    assert plot.eer == pytest.approx(0.25) and plot.threshold == pytest.approx(0.6)
    # ROC: (false acceptance, true acceptance) = (EER, 1 - EER); DET: both rates equal, on the normal-deviate axes.
    assert plot.roc_marker == pytest.approx((0.25, 0.75))
    assert norm.cdf(plot.det_marker) == pytest.approx([0.25, 0.25])
    assert image_shape(tmp_path / "det.png") == (round(4.2 * DPI), 9 * DPI, 4)


def test_directed_plots_mark_the_eer_the_metrics_report(tmp_path):
    # Logits whose log-odds of class 1 are the hand-made scores; the classes argmax to [1, 1, 1, 0, 1, 0, 0, 0].
    logits = np.stack([np.full(8, 0.5), DETECTION_SCORES], axis=1)
    written = write_evaluation_plots("directed", DETECTION_LABELS, (logits,), ["other", "directed"], tmp_path)
    metrics = make_compute_metrics("directed")(EvalPrediction(predictions=logits, label_ids=DETECTION_LABELS))
    assert written["det_roc"].data.eer == pytest.approx(metrics["eer"]) == pytest.approx(0.25)
    # Counted by hand: of the 4 others, 1 predicted directed; of the 4 directed, 1 predicted other.
    assert written["confusion_matrix"].data.counts.tolist() == [[3, 1], [1, 3]]
    assert sorted(path.name for path, _ in written.values()) == [
        "test_confusion_matrix.png",
        "test_det_roc.png",
    ]
    assert all(image_shape(path)[2] == 4 for path, _ in written.values())


def test_speaker_plots_mark_the_eer_of_speaker_verification(tmp_path):
    rng = np.random.default_rng(0)
    speakers = np.repeat(["ann", "bob", "cid"], 4)
    # Each speaker's utterances near a centre of their own, noisy enough that some trials are misjudged.
    embeddings = rng.normal(size=(3, 8)).repeat(4, axis=0) + rng.normal(scale=1.2, size=(12, 8))
    written = write_evaluation_plots("speaker", speakers, embeddings, None, tmp_path, prefix="speaker_test")
    expected = speaker_verification_eer(embeddings, speakers)
    assert 0 < expected.eer < 0.5
    assert written["det_roc"].data.eer == pytest.approx(expected.eer)
    assert written["det_roc"].data.threshold == pytest.approx(expected.threshold)
    assert written["det_roc"].path == tmp_path / "speaker_test_det_roc.png"


def test_confusion_matrix_counts_and_normalises_rows(tmp_path):
    labels = [0, 0, 1, 2, 2, 2]
    predictions = [0, 1, 1, 2, 0, 2]
    plot = plot_confusion_matrix(labels, predictions, ["a", "b", "c", "unseen"], tmp_path / "cm.png")
    assert plot.counts.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    np.testing.assert_allclose(
        plot.normalized, [[0.5, 0.5, 0, 0], [0, 1, 0, 0], [1 / 3, 0, 2 / 3, 0], [0, 0, 0, 0]]
    )
    assert image_shape(tmp_path / "cm.png")[2] == 4


def test_regression_plot_and_bad_inputs(tmp_path):
    scores = np.array([[0.5], [-1.0], [2.0]])
    written = write_evaluation_plots("valence", [0.0, -1.5, 2.5], scores, None, tmp_path)
    true, predicted = written["predicted_vs_true"].data
    assert true.tolist() == [0.0, -1.5, 2.5] and predicted.tolist() == [0.5, -1.0, 2.0]
    with pytest.raises(ValueError, match="no evaluation plots for task 'translation'"):
        write_evaluation_plots("translation", [0], [[1.0]], None, tmp_path)
    with pytest.raises(ValueError, match=r"logits of shape \(N, num_labels\)"):
        write_evaluation_plots("intent", [0, 1], np.zeros((2, 3)), ["a", "b"], tmp_path)


TRAINER_STATE = {
    "log_history": [
        {"step": 5, "loss": 4.0, "contrastive_loss": 3.0, "matching_loss": 1.0, "learning_rate": 1e-3},
        {"step": 10, "loss": 3.0, "contrastive_loss": 2.2, "matching_loss": 0.8, "grad_norm": 2.0},
        {
            "step": 10,
            "eval_loss": 2.5,
            "eval_contrastive_loss": 2.0,
            "eval_matching_loss": 0.5,
            "eval_runtime": 1.0,
        },
        {"step": 10, "train_loss": 3.5, "train_runtime": 1.0},
    ]
}


def test_training_curves_read_back_a_trainer_state(tmp_path):
    (tmp_path / "trainer_state.json").write_text(json.dumps(TRAINER_STATE))
    curves = plot_training_curves(tmp_path, tmp_path / "curves.png")
    # The end-of-training summary (train_loss) and the non-loss keys are no curves.
    assert curves == {
        "loss": {"train": ([5, 10], [4.0, 3.0]), "eval": ([10], [2.5])},
        "contrastive_loss": {"train": ([5, 10], [3.0, 2.2]), "eval": ([10], [2.0])},
        "matching_loss": {"train": ([5, 10], [1.0, 0.8]), "eval": ([10], [0.5])},
    }
    assert loss_curves(tmp_path / "trainer_state.json") == curves == loss_curves(TRAINER_STATE)
    # One panel per part, three in a row, each 4 x 3 inches.
    assert image_shape(tmp_path / "curves.png") == (3 * DPI, 12 * DPI, 4)
    assert write_training_curves(tmp_path) == tmp_path / "training_curves.png"


def test_training_curves_without_logged_loss(tmp_path):
    (tmp_path / "trainer_state.json").write_text(
        json.dumps({"log_history": [{"step": 1, "train_loss": 2.0}]})
    )
    with pytest.raises(ValueError, match="--logging_steps"):
        plot_training_curves(tmp_path, tmp_path / "curves.png")
    assert write_training_curves(tmp_path) is None
    assert not (tmp_path / "training_curves.png").exists()


def test_benchmark_script_draws_with_the_package(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    sys.modules.pop("plot_loss_parts", None)
    from plot_loss_parts import main

    (tmp_path / "trainer_state.json").write_text(json.dumps(TRAINER_STATE))
    main(["--run_dir", str(tmp_path), "--output", str(tmp_path / "parts.png")])
    assert image_shape(tmp_path / "parts.png") == (3 * DPI, 12 * DPI, 4)
