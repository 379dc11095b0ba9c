"""Equal error rate (EER) as a 🤗 ``evaluate`` metric that loads from a local path, offline."""

import datasets
import evaluate

from audiolang.metrics.classification import equal_error_rate

_DESCRIPTION = """
Equal error rate (EER) of a score-based detector (device-directed speech, speaker verification): the
point of the ROC curve where the false positive rate equals the false negative rate, linearly
interpolated between neighbouring scores. A sample is accepted when its score is >= the threshold.
A fraction in [0, 1], returned with the threshold where the rates meet.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): scores, higher = more likely positive.
    references (`list` of `int`): labels; `positive_label` is positive, every other label negative.
    positive_label (`int`, defaults to 1): the label of the positive class.
Returns:
    eer (`float`): the equal error rate, in [0, 1].
    threshold (`float`): the score threshold where the false positive and false negative rates meet.
Examples:
    >>> from audiolang.metrics import load_metric
    >>> load_metric("equal_error_rate").compute(predictions=[0.9, 0.6, 0.4, 0.7, 0.3, 0.1], references=[1, 1, 1, 0, 0, 0])
    {'eer': 0.3333333333333333, 'threshold': 0.6}
"""


class EqualErrorRateMetric(evaluate.Metric):
    """ROC equal error rate; see ``audiolang.metrics.equal_error_rate``."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(
        self, predictions: list[float], references: list[int], positive_label: int = 1
    ) -> dict[str, float]:
        result = equal_error_rate(predictions, references, positive_label=positive_label)
        return {"eer": result.eer, "threshold": result.threshold}
