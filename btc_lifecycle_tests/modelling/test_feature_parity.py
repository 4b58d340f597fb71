"""The parity comparisons behind the Feast check, on small frames: served features must equal the
features table exactly, and a difference is named by candle, feature and both values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.modelling.feature_parity import online_matches_offline, same_feature_values

COLUMNS = ("rsi_14", "volatility_15")
T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")


def table(values: dict[str, list], start: pd.Timestamp = T0) -> pd.DataFrame:
    rows = len(next(iter(values.values())))
    return pd.DataFrame({"open_time": pd.date_range(start, periods=rows, freq="1min", tz="UTC"), **values})


@pytest.fixture
def features() -> pd.DataFrame:
    return table({"rsi_14": [0.1, 0.2, np.nan], "volatility_15": [1.0, 2.0, 3.0]})


# same_feature_values


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


def test_a_frame_without_a_compared_column_is_refused_by_name(features):
    with pytest.raises(ValueError, match="rsi_14"):
        same_feature_values(features, features.drop(columns="rsi_14"), COLUMNS, "the table", "Feast's set")


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


def test_an_empty_online_store_fails(features):
    outcome = online_matches_offline(None, features["open_time"].iloc[-1], features, None, COLUMNS)
    assert not outcome.passed
    assert "holds no candle" in outcome.description
    assert outcome.metadata == {"newest_exported_open_time": "2024-01-01T00:02:00+00:00"}


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
