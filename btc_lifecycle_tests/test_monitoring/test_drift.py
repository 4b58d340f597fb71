"""Data drift: calm against calm is quiet, three times the volatility is not."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from btc_lifecycle.monitoring import (
    MonitoringConfig,
    data_drift,
    drift_scores,
    evaluate_drift_share,
)
from btc_lifecycle_tests.test_monitoring.conftest import FEATURES_ONLY

CONFIG = MonitoringConfig()


def test_windows_from_the_same_distribution_pass_the_drift_check(reference_features, calm_features):
    result = data_drift(reference_features, calm_features, FEATURES_ONLY, CONFIG)
    outcome = evaluate_drift_share(result, CONFIG)
    assert outcome.passed is True, outcome.description
    assert result.drift_share <= 0.1
    assert result.reference_rows == len(reference_features)
    assert result.current_rows == len(calm_features)


def test_three_times_the_volatility_fails_the_drift_check(reference_features, volatile_features):
    result = data_drift(reference_features, volatile_features, FEATURES_ONLY, CONFIG)
    outcome = evaluate_drift_share(result, CONFIG)
    assert outcome.passed is False
    assert {"volatility_15", "volatility_60", "log_return_1", "range_to_close"} <= set(
        result.drifted_columns
    )
    assert outcome.metadata["drift_share"] == result.drift_share > CONFIG.drift_share_threshold
    assert "volatility_60" in outcome.metadata["drifted_columns"]


def test_every_column_reports_its_score_threshold_and_stattest(
    reference_features, volatile_features
):
    result = data_drift(reference_features, volatile_features, FEATURES_ONLY, CONFIG)
    assert result.monitored_columns == FEATURES_ONLY
    for name, column in result.per_column.items():
        assert column.stattest == "wasserstein"
        assert column.threshold == CONFIG.stattest_threshold
        assert column.drifted == (column.score >= column.threshold), name
    assert result.snapshot is not None  # kept for the HTML and JSON report


def test_the_fast_path_agrees_with_the_evidently_report(reference_features, volatile_features):
    mixed = pd.concat([volatile_features.iloc[:750], reference_features.iloc[:750]])
    report = data_drift(reference_features, mixed, FEATURES_ONLY, CONFIG)
    fast = drift_scores(reference_features, mixed, FEATURES_ONLY, CONFIG)
    assert fast.drifted_columns == report.drifted_columns
    for name in FEATURES_ONLY:
        assert fast.per_column[name].score == pytest.approx(report.per_column[name].score)


def test_a_missing_monitored_column_is_named(reference_features, calm_features):
    reference = reference_features.assign(prediction=0.5)
    with pytest.raises(ValueError, match=r"current window lacks .*'prediction'"):
        data_drift(reference, calm_features, CONFIG.columns, CONFIG)


@pytest.mark.parametrize("field, value", [
    ("drift_share_threshold", 1.5), ("stattest_threshold", 0.0), ("current_window", 1),
    ("min_realized_labels", 0), ("performance_margin", -0.1), ("columns", ()),
])
def test_an_invalid_setting_names_its_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(CONFIG, **{field: value})
