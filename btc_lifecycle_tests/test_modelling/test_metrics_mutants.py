"""Metrics as a plain dict, field by field (no fast test called as_dict; found by `make mutate`)."""

from __future__ import annotations

import numpy as np

from btc_lifecycle.modelling.metrics import classification_metrics


def test_metrics_as_a_dict_hold_every_field():
    metrics = classification_metrics(np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.4, 0.6]))
    assert metrics.as_dict() == {
        "roc_auc": metrics.roc_auc,
        "log_loss": metrics.log_loss,
        "brier": metrics.brier,
        "accuracy": 0.5,
        "balanced_accuracy": 0.5,
        "rows": 4,
        "up_share": 0.5,
    }
