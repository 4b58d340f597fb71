"""Realized performance: the project's metric definitions, agreeing with evidently's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.monitoring import realized_performance
from btc_lifecycle.monitoring.performance import (
    classification_snapshot,
    judged_predictions,
    realized_by_version,
    snapshot_metrics,
)


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


def two_versions_in_one_window():
    """Version 1 served the first 1,000 candles well; version 2 the next 1,000 badly."""
    rng = np.random.default_rng(5)
    truth = rng.uniform(0.3, 0.7, 2_000)
    outcome = (rng.random(2_000) < truth).astype(int)
    good = truth[:1_000]
    bad = 1 - truth[1_000:]
    return pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=2_000, freq="min", tz="UTC"),
            "up_probability": np.concatenate([good, bad]),
            "model_version": ["1"] * 1_000 + ["2"] * 1_000,
            "realized_label": pd.array(outcome, dtype="Int8"),
        }
    ), outcome


def test_each_version_is_judged_only_on_the_predictions_it_made():
    rows, outcome = two_versions_in_one_window()
    judged = realized_by_version(rows, {"1": 0.5, "2": 0.55})
    assert set(judged) == {"1", "2"}
    assert judged["1"].performance.n == judged["2"].performance.n == 1_000
    assert judged["1"].performance.log_loss == pytest.approx(
        realized_performance(rows["up_probability"][:1_000], outcome[:1_000]).log_loss
    )
    assert judged["1"].excess_over_prior < 0 < judged["2"].excess_over_prior


def test_baselines_are_scored_on_exactly_the_same_candles():
    rows, outcome = two_versions_in_one_window()
    judged = realized_by_version(rows, {"1": 0.5, "2": 0.55})["2"]
    later = outcome[1_000:]
    expected_prior = -np.mean(later * np.log(0.55) + (1 - later) * np.log(0.45))
    assert judged.prior_log_loss == pytest.approx(expected_prior)
    assert judged.prior_up_share == 0.55
    # Majority votes up (prior above one half), clipped: wrong on every down candle.
    expected_majority = -np.mean(later * np.log(0.99) + (1 - later) * np.log(0.01))
    assert judged.majority_log_loss == pytest.approx(expected_majority)
    assert judged.versus_prior.improvement == pytest.approx(judged.prior_log_loss - judged.performance.log_loss)


def test_a_version_without_a_recorded_prior_is_held_to_a_coin():
    rows, _ = two_versions_in_one_window()
    judged = realized_by_version(rows, {"1": None})
    assert judged["1"].prior_up_share == 0.5 and judged["2"].prior_up_share == 0.5


def test_unrealized_predictions_are_not_judged():
    rows, _ = two_versions_in_one_window()
    rows.loc[rows.index[-300:], "realized_label"] = pd.NA
    assert realized_by_version(rows, {})["2"].performance.n == 700


def test_the_champions_predictions_before_its_latest_validation_are_not_judged_again():
    rows, _ = two_versions_in_one_window()
    validated_until = rows["open_time"].iloc[1_499]
    window = judged_predictions(
        rows, rows["open_time"].iloc[100], champion_version="2", champion_validated_until=validated_until
    )
    assert window.loc[window["model_version"] == "1", "open_time"].min() == rows["open_time"].iloc[100]
    assert window.loc[window["model_version"] == "2", "open_time"].min() == rows["open_time"].iloc[1_500]
    assert len(window) == 900 + 500


def test_no_stored_predictions_gives_an_empty_window():
    assert judged_predictions(
        None, pd.Timestamp("2024-01-01", tz="UTC"), "1", pd.Timestamp("2024-01-01", tz="UTC")
    ).empty
