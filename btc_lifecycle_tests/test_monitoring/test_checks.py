"""The realized-performance check: skipped without enough labels, then judged against
the champion."""

from __future__ import annotations

import numpy as np

from btc_lifecycle.monitoring import (
    MonitoringConfig,
    evaluate_realized_performance,
    realized_performance,
)

CONFIG = MonitoringConfig(min_realized_labels=500, performance_margin=0.01)


def champion_like(count: int, seed: int = 9, flip: bool = False):
    """Predictions as good as the champion's held-out ones, or with outcomes turned around."""
    rng = np.random.default_rng(seed)
    probability = rng.uniform(0.4, 0.6, count)
    outcome = (rng.random(count) < probability).astype(int)
    return realized_performance(probability, 1 - outcome if flip else outcome)


HELDOUT_LOG_LOSS = champion_like(20_000, seed=1).log_loss


def test_performance_is_skipped_with_a_reason_below_the_minimum_labels():
    outcome = evaluate_realized_performance(champion_like(499), HELDOUT_LOG_LOSS, CONFIG)
    assert outcome.passed is None and outcome.skipped
    assert "499 realized label(s), fewer than the 500" in outcome.description
    assert outcome.metadata["realized_labels"] == 499


def test_performance_is_skipped_before_any_label_is_known():
    outcome = evaluate_realized_performance(None, HELDOUT_LOG_LOSS, CONFIG)
    assert outcome.passed is None
    assert outcome.metadata["realized_labels"] == 0


def test_performance_on_par_with_the_champion_passes():
    outcome = evaluate_realized_performance(champion_like(2_000), HELDOUT_LOG_LOSS, CONFIG)
    assert outcome.passed is True, outcome.description
    assert abs(outcome.metadata["log_loss_excess"]) <= CONFIG.performance_margin


def test_much_worse_performance_fails_with_the_numbers_in_metadata():
    worse = champion_like(2_000, flip=True)
    outcome = evaluate_realized_performance(worse, HELDOUT_LOG_LOSS, CONFIG)
    assert outcome.passed is False
    assert outcome.metadata["log_loss_excess"] > CONFIG.performance_margin
    assert outcome.metadata["realized_roc_auc"] < 0.5
    assert "beyond the margin" in outcome.description
    assert all(isinstance(value, (int, float, str)) for value in outcome.metadata.values())


def test_without_a_champion_log_loss_the_check_is_skipped():
    outcome = evaluate_realized_performance(champion_like(2_000), None, CONFIG)
    assert outcome.passed is None
    assert "no held-out log loss" in outcome.description
