"""The realized-performance check's outcome, field by field: what `make mutate` found the tests
of test_checks.py leaving loose (metadata keys and values, the exact skip reason, the edge of
the minimum; docs/mutation.md)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.monitoring import MonitoringConfig, evaluate_drift_share, evaluate_realized_performance
from btc_lifecycle.monitoring.drift import ColumnDrift, DataDriftResult
from btc_lifecycle.monitoring.performance import realized_by_version

CONFIG = MonitoringConfig(min_realized_labels=500, performance_margin=0.01)


def judged(count: int, version: str = "3"):
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
    champion = judged(600)
    outcome = evaluate_realized_performance(champion, CONFIG, version="ignored")
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
    outcome = evaluate_realized_performance(replace(judged(600), versus_prior=None), CONFIG)
    assert "versus_prior_p_value" not in outcome.metadata and outcome.passed is not None


def test_exactly_the_minimum_of_labels_is_enough_to_judge():
    outcome = evaluate_realized_performance(judged(500), CONFIG)
    assert outcome.passed is not None and outcome.metadata["realized_labels"] == 500


def test_the_skip_reason_names_the_version_when_known():
    outcome = evaluate_realized_performance(None, CONFIG, version="4")
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


def test_the_skip_reason_without_a_version():
    outcome = evaluate_realized_performance(judged(499), CONFIG)
    assert outcome.description.startswith("skipped: the champion has 499 realized label(s)")
    assert evaluate_realized_performance(None, CONFIG).metadata["champion_version"] == ""


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
