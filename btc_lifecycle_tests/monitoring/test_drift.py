"""Data drift: calm against calm is quiet, three times the volatility is not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from btc_lifecycle.monitoring import (
    MonitoringConfig,
    data_drift,
    drift_scores,
    evaluate_drift_share,
)
from btc_lifecycle.monitoring.drift import MONITORED_FEATURES
from btc_lifecycle_tests.monitoring.conftest import FEATURES_ONLY

CONFIG = MonitoringConfig()
GAP_FLAGS = ("filled", "filled_share_60")


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
    assert {"volatility_15", "volatility_60", "log_return_1", "range_to_close"} <= set(result.drifted_columns)
    assert outcome.metadata["drift_share"] == result.drift_share > CONFIG.drift_share_threshold
    assert "volatility_60" in outcome.metadata["drifted_columns"]


def test_every_column_reports_its_score_threshold_and_stattest(reference_features, volatile_features):
    result = data_drift(reference_features, volatile_features, FEATURES_ONLY, CONFIG)
    assert result.monitored_columns == tuple(name for name in FEATURES_ONLY if name not in GAP_FLAGS)
    for name, column in result.per_column.items():
        # Recomputed independently: the Wasserstein distance in units of the reference's spread.
        reference = reference_features[name].dropna().to_numpy()
        current = volatile_features[name].dropna().to_numpy()
        expected = wasserstein_distance(reference, current) / max(np.std(reference), 0.001)
        assert column.score == pytest.approx(expected, rel=1e-6), name
        assert column.stattest == "wasserstein" and column.threshold == CONFIG.stattest_threshold
        assert column.drifted == (expected >= CONFIG.stattest_threshold), name
    assert result.snapshot is not None  # kept for the HTML and JSON report


def test_the_fast_path_agrees_with_the_evidently_report(reference_features, volatile_features):
    mixed = pd.concat([volatile_features.iloc[:750], reference_features.iloc[:750]])
    report = data_drift(reference_features, mixed, FEATURES_ONLY, CONFIG)
    fast = drift_scores(reference_features, mixed, FEATURES_ONLY, CONFIG)
    assert fast.drifted_columns == report.drifted_columns
    assert tuple(fast.per_column) == tuple(report.per_column)
    for name in report.per_column:
        assert fast.per_column[name].score == pytest.approx(report.per_column[name].score)


def test_a_missing_monitored_column_is_named(reference_features, calm_features):
    reference = reference_features.assign(prediction=0.5)
    with pytest.raises(ValueError, match=r"current window lacks .*'prediction'"):
        data_drift(reference, calm_features, CONFIG.columns, CONFIG)


@pytest.mark.parametrize(
    "field, value",
    [
        ("drift_share_threshold", 1.5),
        ("stattest_threshold", 0.0),
        ("current_window", 1),
        ("min_realized_labels", 0),
        ("performance_margin", -0.1),
        ("columns", ()),
    ],
)
def test_an_invalid_setting_names_its_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(CONFIG, **{field: value})


# --- the gap-fill flags: constant 0 on a complete series ----------------------------------


def test_the_gap_flags_are_monitored_features():
    assert set(GAP_FLAGS) <= set(MONITORED_FEATURES) <= set(FEATURES_ONLY)


def test_flags_that_are_0_in_both_windows_neither_drift_nor_dilute_the_share(reference_features, volatile_features):
    assert (reference_features[list(GAP_FLAGS)] == 0).all().all()
    result = data_drift(reference_features, volatile_features, FEATURES_ONLY, CONFIG)
    without_flags = data_drift(
        reference_features, volatile_features, [name for name in FEATURES_ONLY if name not in GAP_FLAGS], CONFIG
    )
    assert result.constant_columns == GAP_FLAGS
    assert not set(GAP_FLAGS) & set(result.per_column)
    assert result.drift_share == without_flags.drift_share > CONFIG.drift_share_threshold
    assert evaluate_drift_share(result, CONFIG).passed is False


def test_the_fast_path_sets_the_same_constant_flags_aside(reference_features, calm_features):
    fast = drift_scores(reference_features, calm_features, FEATURES_ONLY, CONFIG)
    report = data_drift(reference_features, calm_features, FEATURES_ONLY, CONFIG)
    assert fast.constant_columns == report.constant_columns == GAP_FLAGS
    assert fast.drift_share == report.drift_share


def test_a_flag_constant_in_the_reference_but_not_in_the_current_window_drifts(reference_features, calm_features):
    current = calm_features.copy()
    current.loc[current.index[:20], "filled"] = 1.0  # 20 trade-less minutes filled in a day
    result = data_drift(reference_features, current, FEATURES_ONLY, CONFIG)
    assert "filled" in result.drifted_columns
    assert result.constant_columns == ("filled_share_60",)
    # The mean moved by 20 / rows; the reference std is 0, floored at 0.001 by evidently.
    assert result.per_column["filled"].score == pytest.approx(20 / len(current) / 0.001)


def test_flags_that_vary_in_both_windows_are_compared_like_any_feature(reference_features, calm_features):
    rng = np.random.default_rng(4)
    reference = reference_features.assign(filled=(rng.random(len(reference_features)) < 0.6).astype(float))
    current = calm_features.assign(filled=(rng.random(len(calm_features)) < 0.6).astype(float))
    result = data_drift(reference, current, FEATURES_ONLY, CONFIG)
    assert "filled" in result.per_column and "filled" not in result.drifted_columns
    assert result.per_column["filled"].score < CONFIG.stattest_threshold


def test_evidently_norms_the_wasserstein_distance_by_the_reference_std_floored_at_0_001():
    """The behaviour the constant-column handling relies on (evidently 0.7)."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    zeros = pd.Series(np.zeros(1_000))
    some_ones = pd.Series((np.arange(1_000) < 10).astype(float))
    test = get_stattest(zeros, zeros, ColumnType.Numerical, "wasserstein")
    same = test(zeros, zeros, ColumnType.Numerical, 0.4)
    shifted = test(zeros, some_ones, ColumnType.Numerical, 0.4)
    assert (same.drift_score, same.drifted) == (0.0, False)
    assert shifted.drift_score == pytest.approx(0.01 / 0.001) and shifted.drifted
