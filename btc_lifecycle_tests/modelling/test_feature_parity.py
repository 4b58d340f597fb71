"""The parity comparisons behind the Feast check, on small frames: served features must equal the
features table exactly, and a difference is named by candle, feature and both values. The check's
description is what a person reads in the Dagster UI when served features drift from training."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.modelling.feature_parity import online_matches_offline, same_feature_values

COLUMNS = ("rsi_14", "volatility_15")
T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")


# same_feature_values


def table(values: dict[str, list], start: pd.Timestamp = T0) -> pd.DataFrame:
    rows = len(next(iter(values.values())))
    return pd.DataFrame({"open_time": pd.date_range(start, periods=rows, freq="1min", tz="UTC"), **values})


@pytest.fixture
def features() -> pd.DataFrame:
    return table({"rsi_14": [0.1, 0.2, np.nan], "volatility_15": [1.0, 2.0, 3.0]})


def test_identical_rows_in_another_order_are_equal_and_nan_equals_nan(features):
    outcome = same_feature_values(features, features.iloc[::-1], COLUMNS, "the table", "Feast's set")
    assert outcome.passed
    assert outcome.description == "Feast's set equals the table at all 3 candles, value for value (2 columns)."
    assert outcome.metadata["candles_compared"] == 3
    assert outcome.metadata["candles_differing"] == 0
    assert outcome.metadata["differences_by_feature"] == {}


def test_a_value_off_in_the_last_bit_fails_naming_the_candle_the_feature_and_both_values(features):
    served = features.copy()
    served.loc[1, "volatility_15"] = np.nextafter(2.0, 3.0)
    outcome = same_feature_values(features, served, COLUMNS, "the table", "Feast's set")
    assert not outcome.passed
    assert "volatility_15 = 2.0 in the table but 2.0000000000000004 in Feast's set" in outcome.description
    assert "candle 2024-01-01T00:01:00+00:00" in outcome.description
    assert outcome.metadata["candles_differing"] == 1
    assert outcome.metadata["differences_by_feature"] == {"volatility_15": 1}
    assert outcome.metadata["first_difference"] == "2024-01-01T00:01:00+00:00 volatility_15: 2.0 != 2.0000000000000004"


def test_the_first_difference_named_is_the_earliest_candle_whichever_feature(features):
    served = features.copy()
    served.loc[2, "rsi_14"] = 0.5  # NaN in the table: a value where there was none differs
    served.loc[0, "volatility_15"] = 9.0
    outcome = same_feature_values(features, served, COLUMNS)
    assert outcome.metadata["first_difference"].startswith("2024-01-01T00:00:00+00:00 volatility_15")
    assert outcome.metadata["differences_by_feature"] == {"rsi_14": 1, "volatility_15": 1}
    assert outcome.metadata["candles_differing"] == 2


def test_a_missing_value_served_as_none_differs_from_a_number(features):
    served = features.astype({"rsi_14": object})
    served.loc[0, "rsi_14"] = None
    outcome = same_feature_values(features, served, COLUMNS)
    assert not outcome.passed
    assert outcome.metadata["differences_by_feature"] == {"rsi_14": 1}


def test_a_candle_the_served_set_lacks_or_adds_fails_and_is_counted(features):
    lacking = same_feature_values(features, features.iloc[:2], COLUMNS, "the table", "Feast's set")
    assert not lacking.passed
    assert lacking.metadata["candles_missing"] == 1 and lacking.metadata["candles_extra"] == 0
    assert "lacks 1 candle of the table, the first 2024-01-01T00:02:00+00:00" in lacking.description
    adding = same_feature_values(features.iloc[:2], features, COLUMNS, "the table", "Feast's set")
    assert not adding.passed
    assert adding.metadata["candles_extra"] == 1 and adding.metadata["candles_missing"] == 0
    assert "holds 1 candle the table does not, the first 2024-01-01T00:02:00+00:00" in adding.description


def test_only_the_columns_named_are_compared(features):
    served = features.copy()
    served["rsi_14"] = 0.9
    assert same_feature_values(features, served, ("volatility_15",)).passed
    assert not same_feature_values(features, served, COLUMNS).passed


# same_feature_values on two-column frames, described whole

AB_COLUMNS = ("a", "b")
T1, T2 = (pd.Timestamp(f"2024-01-01 00:0{minute}", tz="UTC") for minute in (1, 2))


def ab_frame(times, a, b) -> pd.DataFrame:
    return pd.DataFrame({"open_time": times, "a": a, "b": b})


def test_a_served_row_that_differs_lacks_and_adds_candles_is_described_in_full():
    expected = ab_frame([T0, T1], [1.0, 2.0], [3.0, 4.0])
    actual = ab_frame([T0, T2], [1.5, 9.0], [3.5, 9.0])
    outcome = same_feature_values(expected, actual, AB_COLUMNS)
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
    expected = ab_frame([T0, T1], [1.0, 2.0], [3.0, 4.0])
    actual = ab_frame([T0, T1], [1.0, 2.5], [3.0, 4.5])
    outcome = same_feature_values(expected, actual, AB_COLUMNS, "training", "serving")
    assert outcome.description == (
        "Serving differs at 1 candle (a at 1, b at 1); the first is candle "
        "2024-01-01T00:01:00+00:00, a = 2.0 in training but 2.5 in serving."
    )


@pytest.mark.parametrize(("side", "name"), [("expected", "the features table"), ("actual", "the served features")])
def test_a_missing_column_is_named_with_the_side_that_lacks_it(side, name):
    frames = {"expected": ab_frame([T0], [1.0], [2.0]), "actual": ab_frame([T0], [1.0], [2.0])}
    frames[side] = frames[side].drop(columns="b")
    with pytest.raises(ValueError) as raised:
        same_feature_values(frames["expected"], frames["actual"], AB_COLUMNS)
    assert str(raised.value) == f"{name} lacks the column(s) b"


def test_open_times_without_a_zone_are_read_as_utc():
    expected = ab_frame([T0, T1], [1.0, 2.0], [3.0, 4.0])
    actual = ab_frame(["2024-01-01 00:00:00", "2024-01-01 00:01:00"], [1.0, 2.0], [3.0, 4.0])
    outcome = same_feature_values(expected, actual, AB_COLUMNS)
    assert outcome.passed is True
    assert outcome.metadata["candles_compared"] == 2


def test_of_repeated_served_candles_the_last_row_counts():
    expected = ab_frame([T0], [1.0], [2.0])
    assert same_feature_values(expected, ab_frame([T0, T0], [7.0, 1.0], [7.0, 2.0]), AB_COLUMNS).passed is True
    assert same_feature_values(expected, ab_frame([T0, T0], [1.0, 7.0], [2.0, 7.0]), AB_COLUMNS).passed is False


def test_a_served_value_that_is_not_a_number_counts_as_missing():
    expected = ab_frame([T0], [math.nan], [2.0])
    actual = pd.DataFrame({"open_time": [T0], "a": ["not a number"], "b": [2.0]})
    assert same_feature_values(expected, actual, AB_COLUMNS).passed is True


def test_missing_values_of_any_kind_equal_nan():
    expected = ab_frame([T0, T1], [math.nan, 1.0], [2.0, math.nan])
    actual = pd.DataFrame(
        {"open_time": [T0, T1], "a": pd.array([None, 1.0], dtype="Float64"), "b": pd.array([2, None], dtype="Int64")}
    )
    outcome = same_feature_values(expected, actual, AB_COLUMNS)
    assert outcome.passed is True


# online_matches_offline


def newest_row(frame: pd.DataFrame) -> tuple[pd.Timestamp, dict[str, float]]:
    last = frame.iloc[-1]
    return last["open_time"], {name: float(last[name]) for name in COLUMNS}


def test_the_newest_candle_online_equal_to_table_and_offline_passes(features):
    moment = features["open_time"].iloc[-1]
    outcome = online_matches_offline(newest_row(features), moment, features, features.iloc[-1:], COLUMNS)
    assert outcome.passed
    assert outcome.description == (
        "The online store's candle 2024-01-01T00:02:00+00:00 is the newest exported one, and its 2 features "
        "equal the features table's and the offline store's, value for value."
    )
    assert outcome.metadata["differs_from_features_table"] is False
    assert outcome.metadata["differs_from_offline_store"] is False


def test_an_online_store_behind_the_newest_export_fails_saying_it_lags(features):
    behind = newest_row(features.iloc[:2])
    outcome = online_matches_offline(behind, features["open_time"].iloc[-1], features, None, COLUMNS)
    assert not outcome.passed
    assert "holds candle 2024-01-01T00:01:00+00:00, not the newest exported candle 2024-01-01T00:02:00" in (
        outcome.description
    )
    assert "lags" in outcome.description


def test_online_values_that_differ_from_the_table_fail_and_say_which_source(features):
    moment, values = newest_row(features)
    values["volatility_15"] = 3.5
    outcome = online_matches_offline((moment, values), moment, features, features.iloc[-1:], COLUMNS)
    assert not outcome.passed
    assert outcome.metadata["differs_from_features_table"] is True
    assert outcome.metadata["differs_from_offline_store"] is True
    assert outcome.metadata["first_difference_from_features_table"] == (
        "2024-01-01T00:02:00+00:00 volatility_15: 3.0 != 3.5"
    )


def test_an_offline_store_that_differs_from_the_online_one_fails_alone(features):
    moment = features["open_time"].iloc[-1]
    offline = features.iloc[-1:].copy()
    offline["volatility_15"] = 7.0
    outcome = online_matches_offline(newest_row(features), moment, features, offline, COLUMNS)
    assert not outcome.passed
    assert outcome.metadata["differs_from_features_table"] is False
    assert outcome.metadata["differs_from_offline_store"] is True
    assert "in the offline store but 3.0 in the online store" in outcome.description


AB_TABLE = ab_frame([T0, T1], [1.0, 2.0], [3.0, 4.0])


def test_an_empty_online_store_fails_and_names_the_newest_exported_candle():
    outcome = online_matches_offline(None, T1, AB_TABLE, None, AB_COLUMNS)
    assert outcome.passed is False
    assert outcome.description == (
        "The online store holds no candle for the market: the online materialization wrote nothing."
    )
    assert outcome.metadata == {"newest_exported_open_time": "2024-01-01T00:01:00+00:00"}


def test_an_empty_online_store_with_nothing_exported_says_none():
    outcome = online_matches_offline(None, None, AB_TABLE, None, AB_COLUMNS)
    assert outcome.passed is False
    assert outcome.metadata == {"newest_exported_open_time": "none"}


def test_an_online_store_with_nothing_exported_lags_and_says_none():
    outcome = online_matches_offline((T1, {"a": 2.0, "b": 4.0}), None, AB_TABLE, None, AB_COLUMNS)
    assert outcome.passed is False
    assert outcome.description == (
        "The online store holds candle 2024-01-01T00:01:00+00:00, not the newest exported candle none: "
        "the online store lags the offline one."
    )
    assert outcome.metadata == {"online_open_time": "2024-01-01T00:01:00+00:00", "newest_exported_open_time": "none"}


def test_an_online_store_behind_the_export_lags():
    outcome = online_matches_offline((T0, {"a": 1.0, "b": 3.0}), T1, AB_TABLE, None, AB_COLUMNS)
    assert outcome.passed is False
    assert outcome.metadata == {
        "online_open_time": "2024-01-01T00:00:00+00:00",
        "newest_exported_open_time": "2024-01-01T00:01:00+00:00",
    }


def test_the_online_row_matches_a_table_whose_times_have_no_zone():
    table = ab_frame(["2024-01-01 00:00:00", "2024-01-01 00:01:00"], [1.0, 2.0], [3.0, 4.0])
    outcome = online_matches_offline((T1, {"a": 2.0, "b": 4.0}), T1, table, None, AB_COLUMNS)
    assert outcome.passed is True
    assert outcome.metadata == {
        "online_open_time": "2024-01-01T00:01:00+00:00",
        "newest_exported_open_time": "2024-01-01T00:01:00+00:00",
        "differs_from_features_table": False,
    }


def test_an_online_row_that_differs_from_table_and_offline_store_names_both():
    offline = ab_frame([T1], [2.0], [4.0])
    outcome = online_matches_offline((T1, {"a": 2.0, "b": 5.0}), T1, AB_TABLE, offline, AB_COLUMNS)
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
    outcome = online_matches_offline((T1, {"a": 2.0, "b": np.float64(4.0)}), T1, AB_TABLE, None, AB_COLUMNS)
    assert outcome.passed is True
    assert "differs_from_offline_store" not in outcome.metadata
