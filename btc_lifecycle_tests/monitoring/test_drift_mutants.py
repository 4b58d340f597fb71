"""The windows drift is measured on, pinned down where `make mutate` found no fast test (their
callers are the Dagster asset tests; docs/mutation.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.modelling.features import compute_features, feature_complete
from btc_lifecycle.monitoring import MonitoringConfig
from btc_lifecycle.monitoring.drift import (
    ColumnDrift,
    _per_column_from_snapshot,
    current_window,
    data_drift,
    drift_scores,
    reference_window,
)


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
    share = [test for test in tests if test["name"] == "Share of Drifted Columns: Less 0.300"]
    assert len(share) == 1 and share[0]["metric_config"]["params"]["columns"] == ["a", "b", "c"]


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
