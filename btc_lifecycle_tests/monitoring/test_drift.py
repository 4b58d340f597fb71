"""Data drift: calm against calm is quiet, three times the volatility is not; the windows drift is
measured on; the fast path against evidently's report (on any feature windows too: the drift
share only falls as the per-column threshold rises); MonitoringConfig's validation, field by
field: the smallest accepted value, the first rejected one, and the message naming both."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from btc_lifecycle.domain.synthetic import synthetic_candles, thin_venue_candles
from btc_lifecycle.modelling.features import compute_features, feature_complete
from btc_lifecycle.monitoring.checks import evaluate_drift_share
from btc_lifecycle.monitoring.drift import (
    MONITORED_FEATURES,
    ColumnDrift,
    MonitoringConfig,
    _per_column_from_snapshot,
    current_window,
    data_drift,
    drift_scores,
    reference_window,
)
from btc_lifecycle_tests.monitoring.conftest import CALM_VOLATILITY, FEATURES_ONLY

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


# the gap-fill flags: constant 0 on a complete series


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


# MonitoringConfig: each field's first rejected value and smallest accepted one
REJECTED = [
    ("current_window", 1, "must be at least 2 candles"),
    ("reference_window", 1, "must be at least 2 candles or None"),
    ("stattest_threshold", 0.0, "must be positive"),
    ("drift_share_threshold", 1.0, "must be in [0, 1)"),
    ("drift_share_threshold", -0.01, "must be in [0, 1)"),
    ("min_realized_labels", 0, "must be at least 1"),
    ("performance_margin", -0.001, "must not be negative"),
    ("retrain_cooldown_hours", -0.5, "must not be negative"),
    ("columns", (), "must name at least one column, each once"),
    ("columns", ("rsi_14", "rsi_14"), "must name at least one column, each once"),
    ("stattest", None, "must name one of evidently's stattests"),
    ("stattest", "", "must name one of evidently's stattests"),
]


@pytest.mark.parametrize("name, value, problem", REJECTED)
def test_an_invalid_setting_is_rejected_with_a_message_naming_the_field_and_the_value(name, value, problem):
    with pytest.raises(ValueError) as raised:
        MonitoringConfig(**{name: value})
    assert str(raised.value) == f"monitoring field {name!r} {problem}, got {value!r}"


ACCEPTED = [
    ("current_window", 2),
    ("reference_window", 2),
    ("reference_window", None),
    ("stattest_threshold", 0.001),
    ("drift_share_threshold", 0.0),
    ("drift_share_threshold", 0.99),
    ("min_realized_labels", 1),
    ("performance_margin", 0.0),
    ("retrain_cooldown_hours", 0.0),
    ("retrain_cooldown_hours", 0.5),
    ("columns", ("rsi_14",)),
]


@pytest.mark.parametrize("name, value", ACCEPTED)
def test_the_edge_of_each_setting_is_accepted(name, value):
    assert getattr(MonitoringConfig(**{name: value}), name) == value


# the windows


def features(count: int) -> pd.DataFrame:
    return compute_features(synthetic_candles(count, seed=4), "1m")


def test_the_reference_is_the_feature_complete_tail_of_the_training_data():
    training = features(300)
    complete = training.loc[feature_complete(training)]
    window = reference_window(training, MonitoringConfig(reference_window=50))
    assert window["open_time"].tolist() == complete["open_time"].tail(50).tolist()


def test_without_a_reference_length_all_feature_complete_training_rows_are_the_reference():
    training = features(300)
    window = reference_window(training, MonitoringConfig(reference_window=None))
    assert window["open_time"].tolist() == training.loc[feature_complete(training), "open_time"].tolist()
    assert len(window) < len(training)  # the first hour has incomplete windows


def test_the_current_window_is_the_newest_feature_complete_candles():
    recent = features(300)
    recent.loc[recent.index[-1], "rsi_14"] = np.nan  # the newest row is not complete
    window = current_window(recent, MonitoringConfig(current_window=20))
    expected = recent.loc[feature_complete(recent), "open_time"].tail(20)
    assert window["open_time"].tolist() == expected.tolist()
    assert window["open_time"].iloc[-1] == recent["open_time"].iloc[-2]


# data_drift and drift_scores on small windows (evidently picks other default tests below 1,000 rows)


def small_windows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """``a`` moves by one reference std, ``b`` stays put, ``c`` is a 0/1 flag set more often."""
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {"a": rng.normal(0, 1, 300), "b": rng.normal(0, 1, 300), "c": (rng.random(300) < 0.3).astype(float)}
    )
    current = pd.DataFrame(
        {"a": rng.normal(1, 1, 200), "b": rng.normal(0, 1, 200), "c": (rng.random(200) < 0.5).astype(float)}
    )
    return reference, current


SMALL_CONFIG = MonitoringConfig(drift_share_threshold=0.3, stattest_threshold=0.4)


@pytest.fixture(scope="module")
def small_report():
    reference, current = small_windows()
    return data_drift(reference, current, ["a", "b", "c"], SMALL_CONFIG)


def normed_wasserstein(reference: pd.Series, current: pd.Series) -> float:
    return wasserstein_distance(reference, current) / max(np.std(reference), 0.001)


def test_the_fast_path_scores_small_windows_with_the_configured_test_and_threshold():
    reference, current = small_windows()
    fast = drift_scores(reference, current, ["a", "b", "c"], SMALL_CONFIG)
    for name in ("a", "b", "c"):
        column = fast.per_column[name]
        assert column.score == pytest.approx(normed_wasserstein(reference[name], current[name]), rel=1e-9), name
        assert (column.threshold, column.stattest) == (0.4, "wasserstein")
    assert fast.drifted_columns == ("a", "c")
    assert fast.drift_share == pytest.approx(2 / 3)
    assert (fast.reference_rows, fast.current_rows) == (300, 200)


def test_the_report_scores_small_windows_like_the_fast_path(small_report):
    reference, current = small_windows()
    fast = drift_scores(reference, current, ["a", "b", "c"], SMALL_CONFIG)
    assert small_report.per_column == fast.per_column
    assert small_report.drift_share == pytest.approx(2 / 3)
    assert (small_report.reference_rows, small_report.current_rows) == (300, 200)


def test_the_report_carries_the_configured_drift_share_threshold(small_report):
    tests = small_report.snapshot.dict()["tests"]
    share = [test for test in tests if test["metric_config"]["params"]["type"].endswith(":DriftedColumnsCount")]
    assert len(share) == 1
    assert share[0]["metric_config"]["params"]["columns"] == ["a", "b", "c"]
    assert share[0]["metric_config"]["params"]["drift_share"] == 0.3 and share[0]["test_config"]["threshold"] == 0.3


def test_a_window_indexed_by_time_is_measured_like_one_with_a_plain_index(small_report):
    reference, current = small_windows()
    by_time = current.set_index(pd.date_range("2024-01-06", periods=len(current), freq="min", name="open_time"))
    assert data_drift(reference, by_time, ["a", "b", "c"], SMALL_CONFIG).per_column == small_report.per_column


def test_the_fast_path_agrees_with_the_report_under_another_stattest():
    reference, current = small_windows()
    psi = MonitoringConfig(stattest="psi", stattest_threshold=0.1)
    report = data_drift(reference, current, ["a", "b", "c"], psi)
    fast = drift_scores(reference, current, ["a", "b", "c"], psi)
    assert report.per_column == fast.per_column
    assert {column.stattest for column in fast.per_column.values()} == {"psi"}


def test_when_every_column_is_constant_and_equal_all_are_compared_and_none_drifts():
    reference = pd.DataFrame({"filled": np.zeros(50), "filled_share_60": np.zeros(50)})
    result = drift_scores(reference, reference.head(20), ["filled", "filled_share_60"])
    assert result.constant_columns == ()
    assert tuple(result.per_column) == ("filled", "filled_share_60")
    assert result.drift_share == 0.0 and result.drifted_columns == ()


# the columns each window must have


def test_a_column_missing_from_the_reference_is_named_with_its_side():
    reference, current = small_windows()
    with pytest.raises(ValueError) as raised:
        drift_scores(reference.drop(columns="b"), current, ["a", "b"])
    assert str(raised.value) == "the reference window lacks monitored column(s) ['b']"


def test_a_column_without_a_finite_value_is_named_with_its_side():
    reference, current = small_windows()
    current = current.assign(b=np.nan, c=np.inf)
    with pytest.raises(ValueError) as raised:
        drift_scores(reference, current, ["a", "b", "c"])
    assert str(raised.value) == "the current window has no finite value in column(s) ['b', 'c']"


def test_numbers_stored_as_objects_are_compared_as_numbers():
    reference, current = small_windows()
    as_objects = current.assign(a=current["a"].astype(object))
    assert drift_scores(reference, as_objects, ["a"]).per_column == drift_scores(reference, current, ["a"]).per_column


# reading evidently's snapshot


def value_drift(column: str, score: float) -> dict:
    return {
        "config": {
            "type": "evidently:metric_v2:ValueDrift",
            "column": column,
            "method": "wasserstein",
            "threshold": 0.4,
        },
        "value": score,
    }


def drift_test(column: str, status: str) -> dict:
    return {"metric_config": {"params": {"type": "evidently:metric_v2:ValueDrift", "column": column}}, "status": status}


def test_the_snapshot_reader_skips_entries_without_a_type():
    snapshot = {
        "metrics": [{"config": {"columns": ["a"]}, "value": 1}, value_drift("a", 0.7)],
        "tests": [{"metric_config": {"params": {}}, "status": "FAIL"}, drift_test("a", "FAIL")],
    }
    assert _per_column_from_snapshot(snapshot, ["a"]) == {"a": ColumnDrift(0.7, 0.4, True, "wasserstein")}


def test_a_column_with_a_score_but_no_verdict_in_the_snapshot_is_an_error():
    snapshot = {"metrics": [value_drift("a", 0.7), value_drift("b", 0.1)], "tests": [drift_test("a", "SUCCESS")]}
    with pytest.raises(RuntimeError) as raised:
        _per_column_from_snapshot(snapshot, ["a", "b"])
    assert str(raised.value) == "evidently's snapshot has no drift result for ['b']"


# any feature windows


def features_of(seed: int, volatility: float, count: int, thin: bool) -> pd.DataFrame:
    """The last ``count`` feature-complete rows of seeded candles; a thin venue's gap flags move."""
    candles = synthetic_candles(count * 3 if thin else count + 100, seed=seed, volatility=volatility)
    if thin:
        candles = thin_venue_candles(candles, no_trade_share=0.5, seed=seed)
    features = compute_features(candles, "1m", max_fill_minutes=30 if thin else 0)
    return features.loc[feature_complete(features)].tail(count).reset_index(drop=True)


@st.composite
def feature_windows(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a current window: same or other market, calm or several times wilder."""
    thin = draw(st.booleans())
    reference = features_of(draw(st.integers(0, 10_000)), CALM_VOLATILITY, draw(st.integers(100, 500)), thin)
    wilder = draw(st.sampled_from([0.5, 1.0, 1.5, 3.0]))
    current = features_of(draw(st.integers(0, 10_000)), wilder * CALM_VOLATILITY, draw(st.integers(60, 300)), thin)
    return reference, current


thresholds = st.lists(st.floats(0.01, 3.0), min_size=2, max_size=6, unique=True).map(sorted)


@settings(max_examples=30)
@given(feature_windows(), thresholds)
def test_raising_the_stattest_threshold_never_raises_the_drift_share(windows, ascending):
    reference, current = windows
    results = [
        drift_scores(reference, current, FEATURES_ONLY, MonitoringConfig(stattest_threshold=threshold))
        for threshold in ascending
    ]
    shares = [result.drift_share for result in results]
    assert shares == sorted(shares, reverse=True), dict(zip(ascending, shares, strict=True))
    # Column by column: a column that drifts at a higher threshold drifts at every lower one.
    for lower, higher in zip(results, results[1:], strict=False):
        assert set(higher.drifted_columns) <= set(lower.drifted_columns)
        assert higher.monitored_columns == lower.monitored_columns


# The evidently report takes about a second: a few examples check the fast path against it.
# Its correlation metrics divide by a flat column's zero spread; that warning is evidently's.
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
@settings(max_examples=4)
@given(feature_windows(), st.floats(0.05, 1.0))
def test_the_fast_drift_path_agrees_with_the_evidently_report(windows, threshold):
    reference, current = windows
    config = dataclasses.replace(MonitoringConfig(), stattest_threshold=threshold)
    fast = drift_scores(reference, current, FEATURES_ONLY, config)
    report = data_drift(reference, current, FEATURES_ONLY, config)
    assert fast.drifted_columns == report.drifted_columns
    assert fast.drift_share == report.drift_share
    assert fast.constant_columns == report.constant_columns
    for name, column in report.per_column.items():
        assert fast.per_column[name].score == pytest.approx(column.score)
        assert fast.per_column[name].threshold == pytest.approx(column.threshold)
