"""Realized performance: the project's metric definitions, agreeing with evidently's."""

from __future__ import annotations

import numpy as np
import pytest

from btc_lifecycle.monitoring import realized_performance
from btc_lifecycle.monitoring.performance import classification_snapshot, snapshot_metrics


def probabilities_and_outcomes(count: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    probability = rng.uniform(0.35, 0.65, count)
    return probability, (rng.random(count) < probability).astype(int)


def test_realized_numbers_agree_with_evidentlys_classification_report():
    probability, outcome = probabilities_and_outcomes(1_000)
    realized = realized_performance(probability, outcome)
    evidently_numbers = snapshot_metrics(classification_snapshot(probability, outcome))
    assert realized.n == 1_000
    assert realized.roc_auc == pytest.approx(evidently_numbers["RocAuc"])
    assert realized.log_loss == pytest.approx(evidently_numbers["LogLoss"])
    assert realized.accuracy == pytest.approx(evidently_numbers["Accuracy"])


def test_unknown_outcomes_are_left_out_and_one_class_has_no_auc():
    realized = realized_performance([0.6, 0.7, 0.4], [1, None, 1])
    assert realized.n == 2
    assert realized.roc_auc is None
    assert realized.log_loss == pytest.approx(-np.mean(np.log([0.6, 0.4])))


def test_no_realized_pair_gives_none():
    assert realized_performance([0.5, 0.5], [None, None]) is None


def test_probabilities_and_outcomes_must_pair_up():
    with pytest.raises(ValueError, match="2 probabilities but 3 outcomes"):
        realized_performance([0.5, 0.5], [1, 0, 1])
