"""How well up-probabilities predict the direction over the label horizon."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

METRIC_NAMES = ("roc_auc", "log_loss", "brier", "accuracy", "balanced_accuracy")
# Hard votes are turned into classes at this probability; ties count as down, like the label.
DECISION_THRESHOLD = 0.5


@dataclass(frozen=True)
class ClassificationMetrics:
    """Ranking (ROC AUC), calibration (log loss, Brier) and hit rates over ``rows`` candles."""

    roc_auc: float
    log_loss: float
    brier: float
    accuracy: float
    balanced_accuracy: float
    rows: int
    up_share: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def classification_metrics(target: np.ndarray, up_probability: np.ndarray) -> ClassificationMetrics:
    """Metrics of ``up_probability`` against 0/1 ``target``; AUC is NaN when one class is absent."""
    target = np.asarray(target, dtype="int64")
    up_probability = np.asarray(up_probability, dtype="float64")
    if len(target) == 0:
        raise ValueError("cannot score an empty set of candles")
    predicted = (up_probability > DECISION_THRESHOLD).astype("int64")
    both_classes = len(np.unique(target)) == 2
    return ClassificationMetrics(
        roc_auc=float(roc_auc_score(target, up_probability)) if both_classes else float("nan"),
        log_loss=float(log_loss(target, up_probability, labels=[0, 1])),
        brier=float(brier_score_loss(target, up_probability, pos_label=1)),
        accuracy=float(accuracy_score(target, predicted)),
        balanced_accuracy=(float(balanced_accuracy_score(target, predicted)) if both_classes else float("nan")),
        rows=int(len(target)),
        up_share=float(target.mean()),
    )
