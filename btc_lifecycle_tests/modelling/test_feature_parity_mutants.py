"""Feature parity pinned word for word and key for key (survivors of make mutate): the check's
description is what a person reads in the Dagster UI when served features drift from training."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.modelling.feature_parity import online_matches_offline, same_feature_values

COLUMNS = ("a", "b")
T0, T1, T2 = (pd.Timestamp(f"2024-01-01 00:0{minute}", tz="UTC") for minute in (0, 1, 2))


def frame(times, a, b) -> pd.DataFrame:
    return pd.DataFrame({"open_time": times, "a": a, "b": b})


def test_a_served_row_that_differs_lacks_and_adds_candles_is_described_in_full():
    expected = frame([T0, T1], [1.0, 2.0], [3.0, 4.0])
    actual = frame([T0, T2], [1.5, 9.0], [3.5, 9.0])
    outcome = same_feature_values(expected, actual, COLUMNS)
    assert outcome.passed is False
    assert outcome.description == (
        "The served features differs at 1 candle (a at 1, b at 1); the first is candle "
        "2024-01-01T00:00:00+00:00, a = 1.0 in the features table but 1.5 in the served features; "
        "lacks 1 candle of the features table, the first 2024-01-01T00:01:00+00:00; "
        "holds 1 candle the features table does not, the first 2024-01-01T00:02:00+00:00."
    )
    assert outcome.metadata == {
        "candles_compared": 1,
        "candles_differing": 1,
        "candles_missing": 1,
        "candles_extra": 1,
        "differences_by_feature": {"a": 1, "b": 1},
        "first_differing_open_times": ["2024-01-01T00:00:00+00:00"],
        "first_missing_open_times": ["2024-01-01T00:01:00+00:00"],
        "columns_compared": 2,
        "first_difference": "2024-01-01T00:00:00+00:00 a: 1.0 != 1.5",
    }


def test_of_two_features_differing_at_the_same_first_candle_the_first_column_is_named():
    expected = frame([T0, T1], [1.0, 2.0], [3.0, 4.0])
    actual = frame([T0, T1], [1.0, 2.5], [3.0, 4.5])
    outcome = same_feature_values(expected, actual, COLUMNS, "training", "serving")
    assert outcome.description == (
        "Serving differs at 1 candle (a at 1, b at 1); the first is candle "
        "2024-01-01T00:01:00+00:00, a = 2.0 in training but 2.5 in serving."
    )


@pytest.mark.parametrize(("side", "name"), [("expected", "the features table"), ("actual", "the served features")])
def test_a_missing_column_is_named_with_the_side_that_lacks_it(side, name):
    frames = {"expected": frame([T0], [1.0], [2.0]), "actual": frame([T0], [1.0], [2.0])}
    frames[side] = frames[side].drop(columns="b")
    with pytest.raises(ValueError) as raised:
        same_feature_values(frames["expected"], frames["actual"], COLUMNS)
    assert str(raised.value) == f"{name} lacks the column(s) b"


def test_open_times_without_a_zone_are_read_as_utc():
    expected = frame([T0, T1], [1.0, 2.0], [3.0, 4.0])
    actual = frame(["2024-01-01 00:00:00", "2024-01-01 00:01:00"], [1.0, 2.0], [3.0, 4.0])
    outcome = same_feature_values(expected, actual, COLUMNS)
    assert outcome.passed is True
    assert outcome.metadata["candles_compared"] == 2


def test_of_repeated_served_candles_the_last_row_counts():
    expected = frame([T0], [1.0], [2.0])
    assert same_feature_values(expected, frame([T0, T0], [7.0, 1.0], [7.0, 2.0]), COLUMNS).passed is True
    assert same_feature_values(expected, frame([T0, T0], [1.0, 7.0], [2.0, 7.0]), COLUMNS).passed is False


def test_a_served_value_that_is_not_a_number_counts_as_missing():
    expected = frame([T0], [math.nan], [2.0])
    actual = pd.DataFrame({"open_time": [T0], "a": ["not a number"], "b": [2.0]})
    assert same_feature_values(expected, actual, COLUMNS).passed is True


def test_missing_values_of_any_kind_equal_nan():
    expected = frame([T0, T1], [math.nan, 1.0], [2.0, math.nan])
    actual = pd.DataFrame(
        {"open_time": [T0, T1], "a": pd.array([None, 1.0], dtype="Float64"), "b": pd.array([2, None], dtype="Int64")}
    )
    outcome = same_feature_values(expected, actual, COLUMNS)
    assert outcome.passed is True


# online_matches_offline

TABLE = frame([T0, T1], [1.0, 2.0], [3.0, 4.0])


def test_an_empty_online_store_fails_and_names_the_newest_exported_candle():
    outcome = online_matches_offline(None, T1, TABLE, None, COLUMNS)
    assert outcome.passed is False
    assert outcome.description == (
        "The online store holds no candle for the market: the online materialization wrote nothing."
    )
    assert outcome.metadata == {"newest_exported_open_time": "2024-01-01T00:01:00+00:00"}


def test_an_empty_online_store_with_nothing_exported_says_none():
    outcome = online_matches_offline(None, None, TABLE, None, COLUMNS)
    assert outcome.passed is False
    assert outcome.metadata == {"newest_exported_open_time": "none"}


def test_an_online_store_with_nothing_exported_lags_and_says_none():
    outcome = online_matches_offline((T1, {"a": 2.0, "b": 4.0}), None, TABLE, None, COLUMNS)
    assert outcome.passed is False
    assert outcome.description == (
        "The online store holds candle 2024-01-01T00:01:00+00:00, not the newest exported candle none: "
        "the online store lags the offline one."
    )
    assert outcome.metadata == {"online_open_time": "2024-01-01T00:01:00+00:00", "newest_exported_open_time": "none"}


def test_an_online_store_behind_the_export_lags():
    outcome = online_matches_offline((T0, {"a": 1.0, "b": 3.0}), T1, TABLE, None, COLUMNS)
    assert outcome.passed is False
    assert outcome.metadata == {
        "online_open_time": "2024-01-01T00:00:00+00:00",
        "newest_exported_open_time": "2024-01-01T00:01:00+00:00",
    }


def test_the_online_row_matches_a_table_whose_times_have_no_zone():
    table = frame(["2024-01-01 00:00:00", "2024-01-01 00:01:00"], [1.0, 2.0], [3.0, 4.0])
    outcome = online_matches_offline((T1, {"a": 2.0, "b": 4.0}), T1, table, None, COLUMNS)
    assert outcome.passed is True
    assert outcome.metadata == {
        "online_open_time": "2024-01-01T00:01:00+00:00",
        "newest_exported_open_time": "2024-01-01T00:01:00+00:00",
        "differs_from_features_table": False,
    }


def test_an_online_row_that_differs_from_table_and_offline_store_names_both():
    offline = frame([T1], [2.0], [4.0])
    outcome = online_matches_offline((T1, {"a": 2.0, "b": 5.0}), T1, TABLE, offline, COLUMNS)
    assert outcome.passed is False
    assert outcome.description == (
        "The online store differs at 1 candle (b at 1); the first is candle 2024-01-01T00:01:00+00:00, "
        "b = 4.0 in the features table but 5.0 in the online store. "
        "The online store differs at 1 candle (b at 1); the first is candle 2024-01-01T00:01:00+00:00, "
        "b = 4.0 in the offline store but 5.0 in the online store."
    )
    assert outcome.metadata == {
        "online_open_time": "2024-01-01T00:01:00+00:00",
        "newest_exported_open_time": "2024-01-01T00:01:00+00:00",
        "differs_from_features_table": True,
        "first_difference_from_features_table": "2024-01-01T00:01:00+00:00 b: 4.0 != 5.0",
        "differs_from_offline_store": True,
        "first_difference_from_offline_store": "2024-01-01T00:01:00+00:00 b: 4.0 != 5.0",
    }


def test_without_an_offline_store_only_the_table_is_compared():
    outcome = online_matches_offline((T1, {"a": 2.0, "b": np.float64(4.0)}), T1, TABLE, None, COLUMNS)
    assert outcome.passed is True
    assert "differs_from_offline_store" not in outcome.metadata
