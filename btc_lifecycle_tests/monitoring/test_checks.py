"""The realized-performance check: skipped without enough labels, then the champion judged
against its own constant prior on exactly the candles it predicted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from btc_lifecycle.monitoring import MonitoringConfig, evaluate_realized_performance
from btc_lifecycle.monitoring.performance import realized_by_version

CONFIG = MonitoringConfig(min_realized_labels=500, performance_margin=0.0)


def judged(count: int, seed: int = 9, skill: float = 1.0, prior: float = 0.5, version: str = "3"):
    """A version's realized predictions: ``skill`` 1 knows the true probability, 0 is a coin,
    negative is worse than a coin."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.35, 0.65, count)
    outcome = (rng.random(count) < truth).astype(int)
    rows = pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=count, freq="min", tz="UTC"),
            "up_probability": 0.5 + skill * (truth - 0.5),
            "model_version": version,
            "realized_label": pd.array(outcome, dtype="Int8"),
        }
    )
    return realized_by_version(rows, {version: prior})[version]


def test_performance_is_skipped_with_a_reason_below_the_minimum_labels():
    outcome = evaluate_realized_performance(judged(499), CONFIG)
    assert outcome.passed is None and outcome.skipped
    assert "499 realized label(s) since it was last validated, fewer than the 500" in outcome.description
    assert outcome.metadata["realized_labels"] == 499


def test_performance_is_skipped_before_any_label_is_known():
    outcome = evaluate_realized_performance(None, CONFIG, version="4")
    assert outcome.passed is None
    assert outcome.metadata["realized_labels"] == 0 and "v4" in outcome.description


def test_a_champion_that_beats_its_prior_passes_with_the_numbers():
    outcome = evaluate_realized_performance(judged(2_000), CONFIG)
    assert outcome.passed is True, outcome.description
    assert outcome.metadata["realized_log_loss"] < outcome.metadata["prior_log_loss"]
    assert outcome.metadata["log_loss_excess_over_prior"] < 0
    assert "within the margin" in outcome.description and "constant prior" in outcome.description


def test_a_champion_no_better_than_a_coin_fails():
    outcome = evaluate_realized_performance(judged(2_000, skill=-0.3), CONFIG)
    assert outcome.passed is False
    assert outcome.metadata["log_loss_excess_over_prior"] > CONFIG.performance_margin
    assert outcome.metadata["realized_roc_auc"] < 0.5
    assert "beyond the margin" in outcome.description
    assert all(isinstance(value, (int, float, str)) for value in outcome.metadata.values())


def test_the_margin_decides_at_its_edge():
    champion = judged(2_000, skill=-0.3)
    at_edge = MonitoringConfig(min_realized_labels=500, performance_margin=champion.excess_over_prior)
    assert evaluate_realized_performance(champion, at_edge).passed is True
    just_below = MonitoringConfig(min_realized_labels=500, performance_margin=champion.excess_over_prior * 0.99)
    assert evaluate_realized_performance(champion, just_below).passed is False
