"""The plots people expect next to a run's metrics, as PNG files: training and validation curves of every loss part
(from `trainer_state.json`), a confusion matrix for classification, ROC and DET curves with the equal-error point for
device-directedness and speaker verification, predicted against true scores for regression.

Figures are built on `matplotlib.figure.Figure` directly, never through `pyplot`: no global state changes (a
notebook's backend stays as it is), nothing is displayed, nothing has to be closed, and `savefig` renders with Agg.
Every plotting function returns the data it drew, so that what a figure shows can be checked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from .metrics import cosine_scores, equal_error_rate, trial_pairs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

DPI = 120
# The file names `write_evaluation_plots` and `write_training_curves` use, after the split prefix (`test_...`).
TRAINING_CURVES_FILE = "training_curves.png"
PLOT_FILES = {
    "confusion_matrix": "confusion_matrix.png",
    "det_roc": "det_roc.png",
    "predicted_vs_true": "predicted_vs_true.png",
}
# The tasks of `audiolang.metrics.make_compute_metrics`, by the plots that suit them.
CLASSIFICATION_TASKS = ("directed", "intent", "emotion", "classification")
REGRESSION_TASKS = ("valence", "regression")
VERIFICATION_TASKS = ("speaker", "speaker_verification")

LossCurves = dict[str, dict[str, tuple[list[int], list[float]]]]


def new_figure(width: float, height: float) -> Figure:
    """A figure detached from `pyplot` (see the module docstring), laid out without overlapping labels."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(figure: Figure, output_path: str | Path) -> Path:
    """Write `figure` as an image (the format from the suffix, PNG for `.png`), creating missing folders."""
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_path, dpi=DPI)
    return output_path


# --- training curves ------------------------------------------------------------------------------------------


def _loss_part(key: str) -> tuple[str, str] | None:
    """`(split, part)` of a `log_history` key: `loss` and `<part>_loss` are training logs, `eval_loss` and
    `eval_<part>_loss` evaluation logs; anything else (e.g. the end-of-training `train_loss` summary) is not a
    curve."""
    split, part = ("eval", key[len("eval_") :]) if key.startswith("eval_") else ("train", key)
    if part == "loss" or (part.endswith("_loss") and not part.startswith(("train_", "test_", "eval_"))):
        return split, part
    return None


def load_trainer_state(trainer_state_or_path: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """A `TrainerState` as a dict: given as one, or read from a `trainer_state.json` file or a folder holding one
    (a run's `--output_dir` or a `checkpoint-N`)."""
    if isinstance(trainer_state_or_path, Mapping):
        return dict(trainer_state_or_path)
    path = Path(trainer_state_or_path)
    if path.is_dir():
        path = path / "trainer_state.json"
    if not path.is_file():
        raise ValueError(f"no trainer state at {path}: pass a trainer_state.json or the folder of a run")
    return json.loads(path.read_text())


def loss_curves(trainer_state_or_path: Mapping[str, Any] | str | Path) -> LossCurves:
    """`{part: {"train": (steps, values), "eval": (steps, values)}}` of a trainer state's `log_history`.

    A part is the total `loss` or any `*_loss` that `AudioTextTrainer` logs (DSCLAP's contrastive and matching terms,
    CTAL's MLM and MCAM, ...); its validation curve is the `eval_`-prefixed key. A split without entries is left
    out of its part.
    """
    curves: LossCurves = {}
    for entry in load_trainer_state(trainer_state_or_path).get("log_history", []):
        for key, value in entry.items():
            named = _loss_part(key)
            if named is None or "step" not in entry:
                continue
            split, part = named
            steps, values = curves.setdefault(part, {}).setdefault(split, ([], []))
            steps.append(int(entry["step"]))
            values.append(float(value))
    # The total first, then the parts by name.
    return {part: curves[part] for part in sorted(curves, key=lambda p: (p != "loss", p))}


def plot_training_curves(
    trainer_state_or_path: Mapping[str, Any] | str | Path, output_path: str | Path, title: str | None = None
) -> LossCurves:
    """Training and validation curves of every loss part (`loss_curves`), one panel per part with both splits on
    shared axes, written to `output_path`. Returns the curves drawn.

    Raises:
        ValueError: when the state logged no loss (a run shorter than `--logging_steps`).
    """
    curves = loss_curves(trainer_state_or_path)
    if not curves:
        raise ValueError(
            "the trainer state has no logged loss: train for at least --logging_steps steps (or lower it)"
        )
    columns = min(3, len(curves))
    rows = -(-len(curves) // columns)
    figure = new_figure(4.0 * columns, 3.0 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, (part, splits) in zip(axes, curves.items(), strict=False):
        for split, style in (("train", {"linewidth": 1.5}), ("eval", {"marker": "o", "linestyle": "--"})):
            if split in splits:
                steps, values = splits[split]
                axis.plot(steps, values, label="validation" if split == "eval" else "training", **style)
        axis.set_title(part)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    for axis in axes[len(curves) :]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    save_figure(figure, output_path)
    return curves


def write_training_curves(output_dir: str | Path, title: str | None = None) -> Path | None:
    """`plot_training_curves` of the run in `output_dir` (its `trainer_state.json`) as
    `output_dir/training_curves.png`; None, with a log line, when the run logged no loss."""
    path = Path(output_dir) / TRAINING_CURVES_FILE
    try:
        plot_training_curves(output_dir, path, title=title)
    except ValueError as error:
        logger.info("no training curves for %s: %s", output_dir, error)
        return None
    return path


# --- classification ------------------------------------------------------------------------------------------


class ConfusionMatrixPlot(NamedTuple):
    """What `plot_confusion_matrix` drew: the counts (rows: true class, columns: predicted class) and each row
    normalised to sum to one (all zeros for a class without examples)."""

    counts: np.ndarray
    normalized: np.ndarray


def plot_confusion_matrix(
    labels: ArrayLike,
    predictions: ArrayLike,
    label_names: Sequence[str],
    output_path: str | Path,
    title: str | None = None,
) -> ConfusionMatrixPlot:
    """A confusion matrix over the classes `0 .. len(label_names) - 1`: colours are row-normalised (the recall of
    each class on the diagonal, so that rare classes read as clearly as frequent ones), each cell annotated with its
    count and its fraction of the row."""
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    classes = np.arange(len(label_names))
    counts = confusion_matrix(np.asarray(labels), np.asarray(predictions), labels=classes)
    totals = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    size = max(4.0, 0.45 * len(label_names) + 2.5)
    figure = new_figure(size + 1.0, size)
    axis = figure.subplots()
    display = ConfusionMatrixDisplay(normalized, display_labels=list(label_names))
    display.plot(
        ax=axis, cmap="Blues", values_format=".2f", xticks_rotation="vertical", im_kw={"vmin": 0, "vmax": 1}
    )
    # The display writes the normalised values; the counts say how much evidence each fraction rests on.
    for (row, column), text in np.ndenumerate(display.text_):
        text.set_text(f"{counts[row, column]}\n{normalized[row, column]:.0%}")
        text.set_fontsize(7 if len(label_names) > 6 else 9)
    axis.set_title(title or f"confusion matrix ({int(counts.sum())} examples, rows normalised)")
    save_figure(figure, output_path)
    return ConfusionMatrixPlot(counts=counts, normalized=normalized)


# --- detection: ROC and DET ------------------------------------------------------------------------------------


class DetRocPlot(NamedTuple):
    """What `plot_det_roc` drew: the equal error rate and its threshold (`audiolang.metrics.equal_error_rate`), and
    where the equal-error point was marked, in the data coordinates of each panel: `(FPR, TPR)` on the ROC curve,
    `(probit(FPR), probit(FNR))` on the DET curve."""

    eer: float
    threshold: float
    roc_marker: tuple[float, float]
    det_marker: tuple[float, float]


def plot_det_roc(
    labels: ArrayLike,
    scores: ArrayLike,
    output_path: str | Path,
    positive_label: int | str = 1,
    title: str | None = None,
) -> DetRocPlot:
    """ROC (false against true acceptance, linear axes) and DET (false acceptance against false rejection, normal
    deviate axes, as NIST plots them) curves of a detector's `scores` (higher = more likely `positive_label`), side
    by side, each marking the equal-error point. The EER is `audiolang.metrics.equal_error_rate` of the same scores,
    the number the task metrics report."""
    from scipy.stats import norm
    from sklearn.metrics import DetCurveDisplay, RocCurveDisplay

    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(labels) == positive_label
    eer = equal_error_rate(scores, positive.astype(int))
    figure = new_figure(9.0, 4.2)
    roc_axis, det_axis = figure.subplots(1, 2)
    RocCurveDisplay.from_predictions(
        positive.astype(int), scores, ax=roc_axis, name="scores", plot_chance_level=True
    )
    DetCurveDisplay.from_predictions(positive.astype(int), scores, ax=det_axis, name="scores")
    (roc_point,) = roc_axis.plot(
        [eer.eer], [1.0 - eer.eer], "o", color="tab:red", label=f"EER = {eer.eer:.2%}"
    )
    # DetCurveDisplay draws probit-transformed rates on linear axes; an EER of exactly 0 would sit at -inf, so the
    # marker is kept inside the display's axis range (what the returned eer reports is not clipped).
    deviate = float(norm.ppf(np.clip(eer.eer, 5e-4, 1 - 5e-4)))
    (det_point,) = det_axis.plot([deviate], [deviate], "o", color="tab:red", label=f"EER = {eer.eer:.2%}")
    for axis, name in ((roc_axis, "ROC"), (det_axis, "DET")):
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="lower right" if axis is roc_axis else "upper right")
    trials = f"{int(positive.sum())} positive, {int((~positive).sum())} negative trials"
    figure.suptitle(f"{title}: {trials}" if title else trials)
    save_figure(figure, output_path)
    return DetRocPlot(
        eer=eer.eer,
        threshold=eer.threshold,
        roc_marker=tuple(float(v) for v in roc_point.get_xydata()[0]),
        det_marker=tuple(float(v) for v in det_point.get_xydata()[0]),
    )


# --- regression ------------------------------------------------------------------------------------------------


def plot_predicted_vs_true(
    labels: ArrayLike, predictions: ArrayLike, output_path: str | Path, title: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A scatter of predicted against true scores with the identity line (a regression task's confusion matrix).
    Returns the `(true, predicted)` points drawn."""
    true = np.asarray(labels, dtype=np.float64).reshape(-1)
    predicted = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if true.shape != predicted.shape:
        raise ValueError(f"{true.size} labels but {predicted.size} predictions: one prediction per label")
    figure = new_figure(4.5, 4.5)
    axis = figure.subplots()
    axis.scatter(true, predicted, s=12, alpha=0.6)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    axis.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="predicted = true")
    axis.set_xlabel("true")
    axis.set_ylabel("predicted")
    axis.set_title(title or f"predicted vs true ({true.size} examples)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    save_figure(figure, output_path)
    return true, predicted


# --- what the run scripts write ----------------------------------------------------------------------------------


class EvaluationPlot(NamedTuple):
    """One plot `write_evaluation_plots` wrote: the file, and what its plotting function returned."""

    path: Path
    data: Any


def write_evaluation_plots(
    task: str,
    labels: ArrayLike,
    predictions_or_scores: ArrayLike | tuple[ArrayLike, ...],
    label_names: Sequence[str] | None,
    output_dir: str | Path,
    prefix: str = "test",
) -> dict[str, EvaluationPlot]:
    """The plots of one evaluation of a fine-tuning `task` (see `audiolang.metrics.make_compute_metrics`), written
    to `output_dir` as `<prefix>_confusion_matrix.png`, `<prefix>_det_roc.png` or `<prefix>_predicted_vs_true.png`;
    returns `{plot: EvaluationPlot(path, data)}`.

    Args:
        task: `directed`, `intent`, `emotion` (a confusion matrix; `directed` also ROC/DET curves of the log-odds
            `logit_1 - logit_0`, the scores of its EER metric), `valence` (predicted against true) or `speaker`
            (ROC/DET curves of the cosine scores of every trial pair, as `speaker_verification_eer` scores them).
        labels: class indices (or regression targets) per example; for `speaker`, the speaker id of each utterance.
        predictions_or_scores: what `Trainer.predict` returns as `predictions` (the logits, or a tuple whose first
            item they are; regression scores of shape `(N,)` or `(N, 1)`); for `speaker`, the utterance
            embeddings `(N, dim)`.
        label_names: the class names (the model's `id2label` in order); None for `valence` and `speaker`.
    """
    output_dir = Path(output_dir)
    if isinstance(predictions_or_scores, (tuple, list)):
        # Models that also return embeddings give Trainer a tuple whose first item is the logits.
        predictions_or_scores = predictions_or_scores[0]
    outputs = np.asarray(predictions_or_scores)
    labels = np.asarray(labels)
    paths = {plot: output_dir / f"{prefix}_{file}" for plot, file in PLOT_FILES.items()}
    written: dict[str, EvaluationPlot] = {}

    if task in CLASSIFICATION_TASKS:
        if label_names is None or outputs.ndim != 2 or outputs.shape[1] != len(label_names):
            raise ValueError(
                f"task {task!r} plots need logits of shape (N, num_labels) and the label names, got "
                f"{outputs.shape} and {None if label_names is None else len(label_names)} names"
            )
        predicted = outputs.argmax(axis=1)
        matrix = plot_confusion_matrix(labels, predicted, label_names, paths["confusion_matrix"])
        written["confusion_matrix"] = EvaluationPlot(paths["confusion_matrix"], matrix)
        if task == "directed":
            # The ranking the EER metric uses (make_compute_metrics("directed")): the log-odds of class 1.
            log_odds = outputs[:, 1].astype(np.float64) - outputs[:, 0]
            curves = plot_det_roc(labels, log_odds, paths["det_roc"], title="device-directed detection")
            written["det_roc"] = EvaluationPlot(paths["det_roc"], curves)
    elif task in REGRESSION_TASKS:
        points = plot_predicted_vs_true(labels, outputs, paths["predicted_vs_true"])
        written["predicted_vs_true"] = EvaluationPlot(paths["predicted_vs_true"], points)
    elif task in VERIFICATION_TASKS:
        # The trials and scores of speaker_verification_eer: every pair of utterances, by cosine similarity.
        first, second, same = trial_pairs(labels)
        scores = cosine_scores(outputs, first, second)
        curves = plot_det_roc(same.astype(int), scores, paths["det_roc"], title="speaker verification")
        written["det_roc"] = EvaluationPlot(paths["det_roc"], curves)
    else:
        raise ValueError(
            f"no evaluation plots for task {task!r}; tasks: "
            f"{', '.join(CLASSIFICATION_TASKS + REGRESSION_TASKS + VERIFICATION_TASKS)}"
        )
    return written
