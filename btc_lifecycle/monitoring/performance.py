"""How the champion does on predictions whose outcome has since become known."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

TARGET_COLUMN = "target"
PREDICTION_COLUMN = "prediction"


@dataclass(frozen=True)
class RealizedPerformance:
    """Metrics of ``n`` up-probabilities against their realized 0/1 outcomes."""

    roc_auc: float | None  # None when the outcomes hold one class only
    log_loss: float
    accuracy: float
    brier: float
    n: int
    up_share: float

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def realized_pairs(probabilities, outcomes) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and 0/1 outcomes as arrays, keeping the pairs where both are known."""
    probability = pd.to_numeric(pd.Series(probabilities), errors="coerce").to_numpy("float64")
    outcome = pd.to_numeric(pd.Series(outcomes), errors="coerce").to_numpy("float64")
    if len(probability) != len(outcome):
        raise ValueError(
            f"{len(probability)} probabilities but {len(outcome)} outcomes: they must pair up"
        )
    known = np.isfinite(probability) & np.isfinite(outcome)
    probability, outcome = probability[known], outcome[known]
    if ((probability < 0) | (probability > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    if not np.isin(outcome, (0.0, 1.0)).all():
        raise ValueError("outcomes must be 0 or 1")
    return probability, outcome.astype("int64")


def realized_performance(probabilities, outcomes) -> RealizedPerformance | None:
    """ROC AUC, log loss, accuracy (up when p > 0.5) and Brier; None without a realized pair.

    The numbers come from the project's own metric definitions (sklearn), the ones the
    champion's held-out log loss was computed with, so the two can be compared.
    """
    from btc_lifecycle.modelling.metrics import classification_metrics  # loads sklearn

    probability, outcome = realized_pairs(probabilities, outcomes)
    if len(outcome) == 0:
        return None
    metrics = classification_metrics(outcome, probability)
    return RealizedPerformance(
        roc_auc=None if np.isnan(metrics.roc_auc) else metrics.roc_auc,
        log_loss=metrics.log_loss,
        accuracy=metrics.accuracy,
        brier=metrics.brier,
        n=metrics.rows,
        up_share=metrics.up_share,
    )


def classification_snapshot(probabilities, outcomes) -> Any:
    """evidently's ClassificationPreset over the realized pairs: the report's performance page.

    Needs both classes among the outcomes (ROC AUC is undefined otherwise).
    """
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    from btc_lifecycle.modelling.metrics import DECISION_THRESHOLD

    probability, outcome = realized_pairs(probabilities, outcomes)
    if len(np.unique(outcome)) < 2:
        raise ValueError("the classification report needs both up and not-up outcomes")
    frame = pd.DataFrame({TARGET_COLUMN: outcome, PREDICTION_COLUMN: probability})
    definition = DataDefinition(
        numerical_columns=[PREDICTION_COLUMN],
        categorical_columns=[TARGET_COLUMN],
        classification=[BinaryClassification(
            target=TARGET_COLUMN, prediction_probas=PREDICTION_COLUMN, pos_label=1,
        )],
    )
    preset = ClassificationPreset(probas_threshold=DECISION_THRESHOLD)
    return Report([preset]).run(Dataset.from_pandas(frame, data_definition=definition), None)


def snapshot_metrics(snapshot: Any) -> dict[str, float]:
    """evidently's headline classification numbers by name (``RocAuc``, ``LogLoss``, ...)."""
    values = {}
    for metric in snapshot.dict()["metrics"]:
        name = metric["metric_name"].split("(", 1)[0]
        if isinstance(metric["value"], (int, float)):
            values[name] = float(metric["value"])
    return values
