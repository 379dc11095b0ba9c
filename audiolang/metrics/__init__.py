"""Evaluation metrics of the four papers: plain functions, ``Trainer`` hooks and offline ``evaluate`` modules.

Every rate and accuracy is a fraction in [0, 1]; see ``audiolang.metrics.classification`` for the shared
conventions (argument order, positive label, Acc2).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .aggregate import TRAINER_BOOKKEEPING, mean_and_std, summarise_runs
from .asr import character_error_rate, word_error_rate
from .classification import (
    EqualErrorRate,
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
from .compute import TASKS, make_compute_metrics
from .embedding import alignment, uniformity
from .verification import VerificationResult, cosine_scores, speaker_verification_eer, trial_pairs

if TYPE_CHECKING:
    import evaluate

_EVALUATE_MODULES_DIR = Path(__file__).parent / "evaluate_modules"
EVALUATE_METRICS: tuple[str, ...] = tuple(
    sorted(
        folder.name for folder in _EVALUATE_MODULES_DIR.iterdir() if (folder / f"{folder.name}.py").is_file()
    )
)


def load_metric(name: str, **kwargs: Any) -> evaluate.EvaluationModule:
    """Load one of audiolang's ``evaluate`` metrics (``EVALUATE_METRICS``) from its script in this package.

    ``evaluate.load`` on a local path reads no Hub, so this works with ``HF_HUB_OFFLINE=1``. ``kwargs``
    go to ``evaluate.load`` (e.g. ``experiment_id``, ``keep_in_memory``).
    """
    if name not in EVALUATE_METRICS:
        raise ValueError(
            f"No audiolang evaluate metric named {name!r}; available: {', '.join(EVALUATE_METRICS)}."
        )
    # Imported here because evaluate pulls in datasets and pyarrow, which `import audiolang` should not pay
    # for when nobody asks for an evaluate module.
    import evaluate

    return evaluate.load(str(_EVALUATE_MODULES_DIR / name / f"{name}.py"), **kwargs)


__all__ = [
    "EVALUATE_METRICS",
    "TASKS",
    "TRAINER_BOOKKEEPING",
    "EqualErrorRate",
    "VerificationResult",
    "accuracy",
    "alignment",
    "binary_accuracy_from_regression",
    "character_error_rate",
    "cosine_scores",
    "equal_error_rate",
    "f1",
    "f1_from_regression",
    "false_acceptance_rate",
    "false_rejection_rate",
    "load_metric",
    "macro_f1",
    "mae",
    "make_compute_metrics",
    "mean_and_std",
    "pearson",
    "speaker_verification_eer",
    "summarise_runs",
    "trial_pairs",
    "unweighted_accuracy",
    "uniformity",
    "weighted_accuracy",
    "word_error_rate",
]
