"""False acceptance rate (FAR) as a 🤗 ``evaluate`` metric that loads from a local path, offline."""

import datasets
import evaluate

from audiolang.metrics.classification import false_acceptance_rate

_DESCRIPTION = """
False acceptance rate (FAR) of device-directed speech detection: FAR = FP / (FP + TN), the share of
non-directed utterances (reference != positive label) that are predicted as device-directed. The
counterpart of the false rejection rate. A fraction in [0, 1].
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): reference labels; `positive_label` means device-directed.
    positive_label (`int`, defaults to 1): the label of the device-directed class.
Returns:
    false_acceptance_rate (`float`): in [0, 1].
Examples:
    >>> from audiolang.metrics import load_metric
    >>> load_metric("false_acceptance_rate").compute(predictions=[1, 1, 0, 0], references=[1, 0, 0, 0])
    {'false_acceptance_rate': 0.3333333333333333}
"""


class FalseAcceptanceRate(evaluate.Metric):
    """Share of non-directed references accepted; see ``audiolang.metrics.false_acceptance_rate``."""

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
            "false_acceptance_rate": false_acceptance_rate(
                predictions, references, positive_label=positive_label
            )
        }
