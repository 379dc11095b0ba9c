"""False rejection rate (FRR) as a 🤗 ``evaluate`` metric that loads from a local path, offline."""

import datasets
import evaluate

from audiolang.metrics.classification import false_rejection_rate

_DESCRIPTION = """
False rejection rate (FRR) of device-directed speech detection, as reported by DSCLAP:
FRR = FN / (TP + FN), the share of truly device-directed utterances (reference = positive label) that
are predicted as non-directed. A fraction in [0, 1].
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): reference labels; `positive_label` means device-directed.
    positive_label (`int`, defaults to 1): the label of the device-directed class.
Returns:
    false_rejection_rate (`float`): in [0, 1].
Examples:
    >>> from audiolang.metrics import load_metric
    >>> load_metric("false_rejection_rate").compute(predictions=[1, 0, 1, 1, 0], references=[1, 1, 1, 1, 0])
    {'false_rejection_rate': 0.25}
"""


class FalseRejectionRate(evaluate.Metric):
    """Share of device-directed references rejected; see ``audiolang.metrics.false_rejection_rate``."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(
        self, predictions: list[int], references: list[int], positive_label: int = 1
    ) -> dict[str, float]:
        return {
            "false_rejection_rate": false_rejection_rate(
                predictions, references, positive_label=positive_label
            )
        }
