"""Classical text-only baseline, reported beside every fine-tuned score on the same splits and seeds.

A fine-tuned audio+text classifier is only worth its cost if it beats what the transcripts alone give a linear
model. `tfidf_baseline` is that model: TF-IDF over word 1-2 grams and character 3-5 grams (within word boundaries,
so that it survives ASR errors that split or misspell a word), sublinear term frequency, then an L2-regularised
`LogisticRegression` (classification) or `RidgeCV` (regression; its penalty chosen by leave-one-out
cross-validation on the training rows only). The single-modality *neural* baselines are
`DsclapForSequenceClassification` with `classifier_inputs="text"` or `"audio"`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import FeatureUnion

__all__ = [
    "TFIDF_ALPHAS",
    "TFIDF_C",
    "TFIDF_CS",
    "TFIDF_TASK_TYPES",
    "TfidfBaselineOutput",
    "tfidf_baseline",
    "tfidf_split_metrics",
    "tfidf_task_metrics",
]

TFIDF_TASK_TYPES = ("classification", "regression")
# The logistic regression's default inverse regularisation strength. TF-IDF rows are L2-normalised and sparse, so
# useful values sit well above sklearn's default of 1. Measured on corpus-like transcripts (800 and 3000 training
# rows, 2 busy CPU cores): for intent (16 classes) a 5-fold search over `TFIDF_CS` chose 10 both times and took
# 55-90 s against 5-6 s for one fit at C=10; for directedness it chose 100, for +0.008 accuracy, in 5.5 s against
# 0.5 s. One fit per task and seed keeps the baselines cheap enough to run beside every fine-tuning run.
TFIDF_C = 10.0
# Inverse regularisation strengths searched by cross-validation when `C=None`.
TFIDF_CS: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
# Ridge penalties, searched by efficient leave-one-out cross-validation.
TFIDF_ALPHAS: tuple[float, ...] = tuple(float(alpha) for alpha in np.logspace(-3, 2, 11))
# Folds of the C search; fewer when the rarest class has fewer training rows.
_MAX_FOLDS = 5


@dataclass
class TfidfBaselineOutput:
    """Output of `tfidf_baseline`.

    Args:
        predictions: `(num_eval,)` predicted labels, in the training labels' own values (strings stay strings) for
            classification, floats for regression.
        probabilities: `(num_eval, num_classes)` class probabilities, columns in the order of `classes`;
            `None` for regression.
        classes: `(num_classes,)` the sorted distinct training labels; `None` for regression.
        hyperparameters: The regularisation strength chosen on the training rows: `{"C": ...}` for classification,
            `{"alpha": ...}` for regression.
    """

    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: np.ndarray | None
    hyperparameters: dict[str, float]


def tfidf_baseline(
    train_texts: Sequence[str | None],
    train_labels: Sequence[Any],
    eval_texts: Sequence[str | None],
    task_type: str = "classification",
    seed: int = 0,
    C: float | None = TFIDF_C,
) -> TfidfBaselineOutput:
    """Fit TF-IDF (word 1-2 grams + char_wb 3-5 grams, sublinear tf) + a linear model on the training texts and
    predict the evaluation texts.

    Classification uses a multinomial, L2-regularised `LogisticRegression` with `C` (`TFIDF_C` by default, the value
    a search chooses on corpus-like data, at a tenth of the search's cost); `C=None` chooses it from `TFIDF_CS` by
    accuracy over stratified, shuffled folds of the training rows seeded with `seed`. Regression uses `RidgeCV`, its
    `alpha` from `TFIDF_ALPHAS` chosen by leave-one-out error on the training rows. The vocabulary and IDF weights are
    fitted on the training texts only. A missing text (`None` or NaN, as a `datasets`/pandas column holds an empty
    transcript) counts as the empty string.

    Args:
        train_texts: The training transcripts.
        train_labels: One label per training text: any hashable values (class names, ids) for classification,
            numbers for regression.
        eval_texts: The transcripts to predict.
        task_type: `"classification"` or `"regression"`.
        seed: Seeds the cross-validation folds; the same inputs and seed give the same output.
        C: The logistic regression's inverse regularisation strength, or `None` to choose it by cross-validation
            (which falls back to `TFIDF_C` when a class has a single training row, too few to split). Ignored for
            regression.

    Returns:
        A `TfidfBaselineOutput`.

    Example:

    ```python
    >>> from audiolang import tfidf_baseline
    >>> out = tfidf_baseline(["play music", "open the window"] * 4, ["music", "window"] * 4, ["play some jazz"])
    >>> out.predictions.tolist()
    ['music']
    ```
    """
    if task_type not in TFIDF_TASK_TYPES:
        raise ValueError(f"`task_type` must be one of {TFIDF_TASK_TYPES}, got {task_type!r}.")
    if len(train_texts) != len(train_labels):
        raise ValueError(
            f"`train_texts` has {len(train_texts)} rows but `train_labels` has {len(train_labels)}: give one label "
            "per training text, in the same order."
        )
    unlabelled = [row for row, label in enumerate(train_labels) if _missing(label)]
    if unlabelled:
        raise ValueError(
            f"{len(unlabelled)} training rows have no label (None or NaN), the first at row {unlabelled[0]}: drop "
            "them or label them."
        )
    train_texts, eval_texts = _clean(train_texts), _clean(eval_texts)
    if not any(text.strip() for text in train_texts):
        raise ValueError(
            "Every training text is empty: the TF-IDF baseline needs transcripts (transcribe the audio first)."
        )
    features = FeatureUnion(
        [
            ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)),
        ]
    )
    train_features = features.fit_transform(train_texts)
    eval_features = features.transform(eval_texts)
    if task_type == "regression":
        return _regression(train_features, train_labels, eval_features)
    return _classification(train_features, train_labels, eval_features, seed, C)


def _missing(value: Any) -> bool:
    """`None`, or the NaN that a pandas-backed column holds for a missing value."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _clean(texts: Sequence[str | None]) -> list[str]:
    return ["" if _missing(text) else text for text in texts]


def _classification(
    train_features: Any, train_labels: Sequence[Any], eval_features: Any, seed: int, c: float | None
) -> TfidfBaselineOutput:
    labels = np.asarray(train_labels)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ValueError(
            f"Classification needs at least 2 classes among the training labels, got only {classes.tolist()}."
        )
    model = LogisticRegression(C=TFIDF_C if c is None else c, max_iter=2000)
    if c is None and counts.min() >= 2:
        folds = StratifiedKFold(n_splits=min(_MAX_FOLDS, int(counts.min())), shuffle=True, random_state=seed)
        search = GridSearchCV(model, {"C": list(TFIDF_CS)}, cv=folds, scoring="accuracy")
        model = search.fit(train_features, labels).best_estimator_
    else:
        model.fit(train_features, labels)
    probabilities = (
        model.predict_proba(eval_features) if eval_features.shape[0] else np.zeros((0, len(classes)))
    )
    predictions = model.classes_[probabilities.argmax(axis=1)]
    return TfidfBaselineOutput(
        predictions=predictions,
        probabilities=probabilities,
        classes=model.classes_,
        hyperparameters={"C": float(model.C)},
    )


def _regression(train_features: Any, train_labels: Sequence[Any], eval_features: Any) -> TfidfBaselineOutput:
    targets = np.asarray(train_labels, dtype=np.float64)
    model = RidgeCV(alphas=TFIDF_ALPHAS).fit(train_features, targets)
    predictions = model.predict(eval_features) if eval_features.shape[0] else np.zeros(0)
    return TfidfBaselineOutput(
        predictions=predictions,
        probabilities=None,
        classes=None,
        hyperparameters={"alpha": float(model.alpha_)},
    )


def tfidf_task_metrics(
    train: Any,
    test: Any,
    text_column: str,
    task: str,
    num_labels: int | None = None,
    seed: int = 0,
    C: float | None = TFIDF_C,
) -> dict[str, float]:
    """The TF-IDF baseline on the very rows a fine-tuning run trains and tests on (`datasets.Dataset`s with the
    `labels` column that `audiolang.training.prepare_labels` adds), scored with the run's own metrics
    (`audiolang.metrics.make_compute_metrics(task)`) and keyed as its test metrics (`test_accuracy`, ...).

    Classification scores are the log-probabilities in label-index order (`num_labels` columns; a class the
    training rows lack gets probability 0), so that ranking metrics such as the EER see what a classifier's logits
    would give them; `num_labels=None` is regression."""
    from transformers import EvalPrediction

    from .metrics import make_compute_metrics

    task_type = "regression" if num_labels is None else "classification"
    output = tfidf_baseline(
        train[text_column], train["labels"], test[text_column], task_type=task_type, seed=seed, C=C
    )
    if num_labels is None:
        scores = np.asarray(output.predictions, dtype=np.float64)
    else:
        probabilities = np.zeros((len(output.predictions), num_labels))
        probabilities[:, np.asarray(output.classes, dtype=int)] = output.probabilities
        scores = np.log(np.clip(probabilities, 1e-12, None))
    metrics = make_compute_metrics(task)(
        EvalPrediction(predictions=scores, label_ids=np.asarray(test["labels"]))
    )
    return {f"test_{name}": float(value) for name, value in metrics.items()}


def tfidf_split_metrics(
    data_args: Any,
    eval_splits: Sequence[str],
    task: str | None = None,
    label_column_name: str | None = None,
    task_type: str | None = None,
    seed: int = 0,
    text_column: str = "asr_text",
    train_split: str = "train",
) -> dict[str, dict[str, float]]:
    """`tfidf_task_metrics` on the rows and labels that a fine-tuning run with the same `--task` /
    `--label_column_name` / `--task_type` reads from `data_args` (an `audiolang.training.DatasetArguments`: the same
    `load_labelled_splits`, so the same label ids and the same dropped rows), trained on `train_split` and scored on
    each of `eval_splits`: `{split: {"test_accuracy": ...}}`. `text_column` is the transcript column both read (the
    corpus' ASR transcripts by default)."""
    from .training import load_labelled_splits, resolve_task

    splits, spec, label_names = load_labelled_splits(
        data_args,
        resolve_task(task, label_column_name, task_type),
        (train_split, *eval_splits),
        16_000,
        seed,
    )
    num_labels = None if label_names is None else len(label_names)
    return {
        split: tfidf_task_metrics(
            splits[train_split], splits[split], text_column, spec.name, num_labels, seed
        )
        for split in eval_splits
    }
