"""The checks beside the monitoring assets. The realized-performance check: skipped without enough
labels, then the champion judged against its own constant prior on exactly the candles it
predicted, every number it was judged by recorded. The drift-share check: the share of drifted
columns against its threshold, each drifted column named."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.monitoring.checks import evaluate_drift_share, evaluate_realized_performance
from btc_lifecycle.monitoring.drift import ColumnDrift, DataDriftResult, MonitoringConfig
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
    assert outcome.description.startswith("skipped: the champion has 499 realized label(s) since it was last")
    assert "499 realized label(s) since it was last validated, fewer than the 500" in outcome.description
    assert outcome.metadata["realized_labels"] == 499
    assert evaluate_realized_performance(None, CONFIG).metadata["champion_version"] == ""


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


# every number and word of the realized-performance outcome
MARGIN_CONFIG = MonitoringConfig(min_realized_labels=500, performance_margin=0.01)


def calibrated(count: int, version: str = "3"):
    """A version whose probabilities are the true ones, judged against a prior of 0.52."""
    rng = np.random.default_rng(4)
    truth = rng.uniform(0.35, 0.65, count)
    rows = pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=count, freq="min", tz="UTC"),
            "up_probability": truth,
            "model_version": version,
            "realized_label": pd.array((rng.random(count) < truth).astype(int), dtype="Int8"),
        }
    )
    return realized_by_version(rows, {version: 0.52})[version]


def test_a_judged_champion_records_every_number_it_was_judged_by():
    champion = calibrated(600)
    outcome = evaluate_realized_performance(champion, MARGIN_CONFIG, version="ignored")
    realized = champion.performance
    assert outcome.metadata == {
        "champion_version": "3",
        "realized_labels": 600,
        "min_realized_labels": 500,
        "performance_margin": 0.01,
        "realized_log_loss": realized.log_loss,
        "prior_log_loss": champion.prior_log_loss,
        "prior_up_share": 0.52,
        "majority_log_loss": champion.majority_log_loss,
        "coin_log_loss": pytest.approx(math.log(2)),
        "log_loss_excess_over_prior": champion.excess_over_prior,
        "realized_accuracy": realized.accuracy,
        "realized_brier": realized.brier,
        "realized_up_share": realized.up_share,
        "versus_prior_p_value": champion.versus_prior.p_value,
        "realized_roc_auc": realized.roc_auc,
    }


def test_without_a_paired_test_there_is_no_p_value():
    outcome = evaluate_realized_performance(replace(calibrated(600), versus_prior=None), MARGIN_CONFIG)
    assert "versus_prior_p_value" not in outcome.metadata and outcome.passed is not None


def test_exactly_the_minimum_of_labels_is_enough_to_judge():
    outcome = evaluate_realized_performance(calibrated(500), MARGIN_CONFIG)
    assert outcome.passed is not None and outcome.metadata["realized_labels"] == 500


def test_the_skip_reason_names_the_version_when_known():
    outcome = evaluate_realized_performance(None, MARGIN_CONFIG, version="4")
    assert outcome.passed is None and outcome.skipped
    assert outcome.description == (
        "skipped: the champion v4 has 0 realized label(s) since it was last validated, fewer than the 500 "
        "needed to judge it"
    )
    assert outcome.metadata == {
        "champion_version": "4",
        "realized_labels": 0,
        "min_realized_labels": 500,
        "performance_margin": 0.01,
    }


# evaluate_drift_share


def drift_result(scores: dict[str, float], threshold: float = 0.4) -> DataDriftResult:
    per_column = {
        name: ColumnDrift(score=score, threshold=threshold, drifted=score >= threshold, stattest="wasserstein")
        for name, score in scores.items()
    }
    drifted = tuple(name for name, column in per_column.items() if column.drifted)
    return DataDriftResult(
        drift_share=len(drifted) / len(per_column),
        drifted_columns=drifted,
        per_column=per_column,
        reference_rows=4320,
        current_rows=1440,
    )


DRIFT_CONFIG = MonitoringConfig(drift_share_threshold=0.5, stattest_threshold=0.4)


def test_a_drift_share_exactly_at_the_threshold_passes():
    outcome = evaluate_drift_share(drift_result({"rsi_14": 0.9, "volatility_60": 0.1}), DRIFT_CONFIG)
    assert outcome.passed is True
    assert outcome.description == (
        "1 of 2 monitored columns drifted (share 0.50, at most the threshold 0.50); drifted: rsi_14"
    )


def test_a_failed_drift_check_says_above_and_names_every_drifted_column():
    result = drift_result({"rsi_14": 0.9, "volatility_60": 0.5, "log_return_1": 0.1})
    outcome = evaluate_drift_share(result, DRIFT_CONFIG)
    assert outcome.passed is False
    assert outcome.description == (
        "2 of 3 monitored columns drifted (share 0.67, above the threshold 0.50); drifted: rsi_14, volatility_60"
    )
    assert outcome.metadata == {
        "drift_share": pytest.approx(2 / 3),
        "drift_share_threshold": 0.5,
        "drifted_count": 2,
        "monitored_count": 3,
        "drifted_columns": "rsi_14, volatility_60",
        "stattest": "wasserstein",
        "stattest_threshold": 0.4,
        "reference_rows": 4320,
        "current_rows": 1440,
        "score_rsi_14": 0.9,
        "score_volatility_60": 0.5,
        "score_log_return_1": 0.1,
    }


def test_a_quiet_window_passes_and_says_none_drifted():
    outcome = evaluate_drift_share(drift_result({"rsi_14": 0.1, "volatility_60": 0.2}), DRIFT_CONFIG)
    assert outcome.passed is True
    assert outcome.description == (
        "0 of 2 monitored columns drifted (share 0.00, at most the threshold 0.50); drifted: none"
    )
    assert outcome.metadata["drifted_columns"] == "none"
