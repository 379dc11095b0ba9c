"""Unweighted accuracy (UA) as a 🤗 ``evaluate`` metric that loads from a local path, offline."""

import datasets
import evaluate

from audiolang.metrics.classification import unweighted_accuracy

_DESCRIPTION = """
Unweighted accuracy (UA), the mean per-class recall over the classes present in the references:
UA = (1/|C|) Σ_c recall_c. Speech-emotion recognition reports it next to weighted accuracy (WA, plain
accuracy) because it is not inflated by frequent classes. A fraction in [0, 1].
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted class ids.
    references (`list` of `int`): reference class ids.
Returns:
    unweighted_accuracy (`float`): mean recall over the reference classes, in [0, 1].
Examples:
    >>> from audiolang.metrics import load_metric
    >>> load_metric("unweighted_accuracy").compute(predictions=[0, 0, 0, 1], references=[0, 0, 1, 1])
    {'unweighted_accuracy': 0.75}
"""


class UnweightedAccuracy(evaluate.Metric):
    """Mean per-class recall; see ``audiolang.metrics.unweighted_accuracy``."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions: list[int], references: list[int]) -> dict[str, float]:
        return {"unweighted_accuracy": unweighted_accuracy(predictions, references)}
