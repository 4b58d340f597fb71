"""The data-quality checks pinned down where `make mutate` found the tests loose: the exact
outcome, description and metadata of every check (singular and plural), the errors naming the
frame and column, naive times taken as UTC; no_look_ahead with small feature functions standing in
for compute_features (docs/mutation.md)."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.labels import LABEL_COLUMN, label_candles
from btc_lifecycle.domain.quality import (
    agree,
    first_iso_times,
    fresh,
    gaps_within,
    iso_time,
    labels_match,
    ohlc_consistent,
    require_columns,
    unique_keys,
    utc_timestamp,
)
from btc_lifecycle.modelling.features import FEATURE_COLUMNS
from btc_lifecycle.modelling.quality import default_cut_points, no_look_ahead, no_nan_in_trainable

START = pd.Timestamp("2024-03-01T00:00:00Z")


def at(minute: float) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=minute)


def iso(minute: float) -> str:
    return at(minute).isoformat()


def minute(n: int) -> pd.Timestamp:
    return at(n)


# fresh


def test_a_fresh_candle_is_described_and_recorded_exactly():
    outcome = fresh(at(720), at(726), "1m", max_lag_minutes=5)
    assert outcome.passed is True
    assert outcome.description == (
        f"The newest candle ({iso(720)}) closed 5 minutes before {iso(726)}, within the 5 minutes allowed."
    )
    assert outcome.metadata == {"last_open_time": iso(720), "now": iso(726), "lag_minutes": 5, "max_lag_minutes": 5}


def test_a_stale_candle_is_described_exactly():
    outcome = fresh(at(720), at(726), "1m", max_lag_minutes=4)
    assert outcome.passed is False
    assert outcome.description == (
        f"The newest candle ({iso(720)}) closed 5 minutes before {iso(726)}, more than the 4 minutes allowed."
    )


def test_the_lag_is_kept_to_three_decimals_of_a_minute():
    # Closed 20 seconds before now: a third of a minute.
    outcome = fresh(at(720), at(721 + 1 / 3), "1m", max_lag_minutes=1)
    assert outcome.metadata["lag_minutes"] == 0.333
    assert "closed 0.333 minutes before" in outcome.description


def test_a_lag_of_zero_minutes_is_allowed_and_met_by_a_candle_that_just_closed():
    outcome = fresh(at(720), at(721), "1m", max_lag_minutes=0)
    assert outcome.passed is True and outcome.metadata["lag_minutes"] == 0


def test_a_negative_lag_limit_is_refused_with_its_value():
    with pytest.raises(ValueError, match=r"^max_lag_minutes must be >= 0, got -1$"):
        fresh(at(720), at(721), "1m", max_lag_minutes=-1)


def test_no_candles_is_a_failure_with_every_metadata_key():
    outcome = fresh(None, at(0), "1m", max_lag_minutes=60)
    assert outcome.passed is False
    assert outcome.description == f"There are no candles, so none is fresh as of {iso(0)}."
    assert outcome.metadata == {"last_open_time": None, "now": iso(0), "lag_minutes": None, "max_lag_minutes": 60}


# no_nan_in_trainable


def trainable_frame(**columns) -> pd.DataFrame:
    count = len(next(iter(columns.values())))
    return pd.DataFrame({"open_time": [minute(n) for n in range(count)], "trainable": True, **columns})


def test_a_feature_frame_without_a_checked_column_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"^the feature frame lacks the column\(s\) rsi_14$"):
        no_nan_in_trainable(trainable_frame(other=[1.0]), columns=["rsi_14"])


def test_a_value_that_is_not_a_number_counts_as_not_finite():
    frame = trainable_frame(rsi_14=pd.Series([50.0, "n/a", 40.0], dtype=object))
    outcome = no_nan_in_trainable(frame, columns=["rsi_14"])
    assert outcome.passed is False
    assert outcome.metadata["non_finite_by_feature"] == {"rsi_14": 1}
    assert outcome.metadata["first_violating_open_times"] == [minute(1).isoformat()]


def test_checking_no_columns_passes_every_trainable_row():
    outcome = no_nan_in_trainable(trainable_frame(rsi_14=[np.nan, 1.0]), columns=())
    assert outcome.passed is True
    assert outcome.metadata["violating_rows"] == 0 and outcome.metadata["trainable_rows"] == 2


# the shared helpers of the checks


def test_a_naive_time_is_taken_as_utc():
    stamp = utc_timestamp("2024-03-01 12:00")
    assert stamp == at(720) and str(stamp.tz) == "UTC"


def test_a_time_in_another_zone_is_converted_to_utc():
    stamp = utc_timestamp(pd.Timestamp("2024-03-01 13:00", tz="Europe/Berlin"))
    assert stamp == at(720) and str(stamp.tz) == "UTC" and stamp.isoformat() == iso(720)


def test_a_missing_time_is_written_nat():
    assert iso_time(pd.NaT) == "NaT"
    assert iso_time(None) == "NaT"


def test_only_the_first_times_up_to_the_limit_are_listed():
    assert first_iso_times([at(3), at(1), at(2)], limit=2) == [iso(3), iso(1)]
    assert first_iso_times([at(0)] * 7) == [iso(0)] * 5


def test_the_verb_agrees_with_a_count_other_than_one():
    assert agree(1, "is", "are") == "is"
    assert agree(2, "is", "are") == "are"
    assert agree(0, "is", "are") == "are"


def test_every_missing_column_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"^the frame lacks the column\(s\) high, low$"):
        require_columns(pd.DataFrame({"open": [1.0]}), ["open", "high", "low"], "the frame")


# unique_keys


def test_unique_open_times_are_described_and_recorded_exactly():
    outcome = unique_keys([at(0), at(1), at(2)])
    assert outcome.passed is True
    assert outcome.description == "All 3 open times are unique."
    assert outcome.metadata == {
        "rows": 3,
        "duplicate_rows": 0,
        "duplicated_open_times": 0,
        "first_duplicated_open_times": [],
    }


def test_several_repeated_open_times_are_described_in_the_plural():
    outcome = unique_keys([at(0), at(1), at(0), at(1), at(1), at(2)])
    assert outcome.passed is False
    assert outcome.description == f"2 open times appear more than once (3 extra rows); the first is {iso(0)}."
    assert outcome.metadata == {
        "rows": 6,
        "duplicate_rows": 3,
        "duplicated_open_times": 2,
        "first_duplicated_open_times": [iso(0), iso(1)],
    }


def test_a_naive_and_an_aware_time_of_the_same_instant_are_one_key():
    naive = pd.Timestamp("2024-03-01 00:00")
    outcome = unique_keys(pd.Series([naive, at(0)], dtype=object))
    assert outcome.passed is False
    assert outcome.metadata["first_duplicated_open_times"] == [iso(0)]


# ohlc_consistent


def quality_candles(count: int) -> pd.DataFrame:
    """Valid 1m candles from START: open 100, high 102, low 99, close 101, volume 2."""
    return pd.DataFrame(
        {
            "open_time": [at(m) for m in range(count)],
            "open": 100.0,
            "high": 102.0,
            "low": 99.0,
            "close": 101.0,
            "volume": 2.0,
        }
    )


def test_consistent_candles_are_described_and_recorded_exactly():
    outcome = ohlc_consistent(quality_candles(4))
    assert outcome.passed is True
    assert outcome.description == "All 4 candles have consistent OHLCV values."
    assert outcome.metadata == {
        "rows": 4,
        "violating_rows": 0,
        "price_missing_infinite_or_not_positive": 0,
        "volume_missing_infinite_or_negative": 0,
        "low_above_open_or_close": 0,
        "high_below_open_or_close": 0,
        "first_violating_open_times": [],
    }


def test_prices_below_one_are_still_positive_prices():
    frame = quality_candles(2).assign(open=0.5, high=0.7, low=0.4, close=0.6)
    assert ohlc_consistent(frame).passed is True


def test_several_broken_candles_are_described_by_rule_and_by_their_first_candle():
    frame = quality_candles(4)
    frame.loc[1, ["high", "volume"]] = [50.0, -1.0]
    frame.loc[3, "low"] = 200.0
    outcome = ohlc_consistent(frame)
    assert outcome.passed is False
    assert outcome.description == (
        "2 candles of 4 break OHLCV rules (volume missing, infinite or below 0: 1; low above min(open, close): 1; "
        f"high below max(open, close): 1); the first is {iso(1)} "
        "(volume missing, infinite or below 0, high below max(open, close))."
    )
    assert outcome.metadata == {
        "rows": 4,
        "violating_rows": 2,
        "price_missing_infinite_or_not_positive": 0,
        "volume_missing_infinite_or_negative": 1,
        "low_above_open_or_close": 1,
        "high_below_open_or_close": 1,
        "first_violating_open_times": [iso(1), iso(3)],
    }


def test_one_broken_candle_breaks_the_rules_in_the_singular():
    frame = quality_candles(3)
    frame.loc[2, "close"] = 103.0
    outcome = ohlc_consistent(frame)
    assert outcome.description == (
        f"1 candle of 3 breaks OHLCV rules (high below max(open, close): 1); "
        f"the first is {iso(2)} (high below max(open, close))."
    )


def test_a_price_that_is_not_a_number_counts_as_missing():
    frame = quality_candles(3).astype({"open": object})
    frame.loc[1, "open"] = "n/a"
    outcome = ohlc_consistent(frame)
    assert outcome.passed is False
    assert outcome.metadata["price_missing_infinite_or_not_positive"] == 1
    assert outcome.metadata["first_violating_open_times"] == [iso(1)]


def test_a_nullable_price_column_with_a_missing_value_counts_it_as_missing():
    frame = quality_candles(3)
    frame["close"] = pd.array([101.0, None, 101.0], dtype="Float64")
    outcome = ohlc_consistent(frame)
    assert outcome.metadata["price_missing_infinite_or_not_positive"] == 1
    assert outcome.metadata["violating_rows"] == 1


def test_the_ohlc_check_names_the_frame_and_the_missing_column():
    with pytest.raises(ValueError, match=r"^the candle frame lacks the column\(s\) volume$"):
        ohlc_consistent(quality_candles(1).drop(columns="volume"))


# gaps_within


def test_gaps_within_the_threshold_are_described_and_recorded_exactly():
    outcome = gaps_within([at(0), at(1), at(5), at(6)], "1m", 5)
    assert outcome.passed is True
    assert outcome.description == "No gap exceeds 5 minutes (1 gap, longest 3 minutes)."
    assert outcome.metadata == {
        "rows": 4,
        "max_gap_minutes": 5,
        "gaps": 1,
        "missing_minutes": 3,
        "gaps_over_threshold": 0,
        "longest_gap_minutes": 3,
        "longest_gap_after": iso(1),
        "first_gaps_over_threshold_after": [],
    }


def test_a_series_without_gaps_is_described_with_zero_gaps():
    outcome = gaps_within([at(0), at(1), at(2)], "1m", 0)
    assert outcome.description == "No gap exceeds 0 minutes (0 gaps, longest 0 minutes)."
    assert outcome.metadata["longest_gap_after"] is None


def test_a_negative_gap_threshold_is_refused_with_its_value():
    with pytest.raises(ValueError, match=r"^max_gap_minutes must be >= 0, got -1$"):
        gaps_within([at(0)], "1m", -1)


# labels_match


def labeled_frame(minutes: list[int], closes: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "open_time": [at(m) for m in minutes],
            "open": closes,
            "high": [c + 1 for c in closes],
            "low": [c - 1 for c in closes],
            "close": closes,
            "volume": 1.0,
        }
    )
    return label_candles(frame, "1m")


MINUTES = [0, 1, 2, 3, 5, 6, 7]
CLOSES = [100.0, 101.0, 100.0, 100.0, 99.0, 99.5, 98.0]


def test_matching_labels_are_described_and_recorded_exactly():
    outcome = labels_match(labeled_frame(MINUTES, CLOSES), "1m")
    assert outcome.passed is True
    assert outcome.description == "All 7 stored labels equal their recomputation."
    assert outcome.metadata == {
        "rows": 7,
        "context_rows": 0,
        "mismatching_rows": 0,
        "labels_differing": 0,
        "labels_missing": 0,
        "labels_unexpected": 0,
        "first_mismatching_open_times": [],
    }


def test_several_wrong_labels_are_described_in_the_plural():
    frame = labeled_frame(MINUTES, CLOSES)
    frame.loc[[1, 2], LABEL_COLUMN] = 1 - frame.loc[[1, 2], LABEL_COLUMN]
    outcome = labels_match(frame, "1m")
    assert outcome.passed is False
    assert outcome.description == (
        "2 stored labels of 7 differ from the recomputation (2 different, 0 missing, 0 where none is due); "
        f"the first is {iso(1)}."
    )


def test_the_label_check_names_the_frame_and_the_missing_column():
    with pytest.raises(ValueError, match=rf"^the labeled frame lacks the column\(s\) {LABEL_COLUMN}$"):
        labels_match(labeled_frame(MINUTES, CLOSES).drop(columns=LABEL_COLUMN), "1m")


def test_the_context_check_names_the_frame_and_the_missing_column():
    context = labeled_frame([0], [100.0])[["open_time"]]
    with pytest.raises(ValueError, match=r"^the context frame lacks the column\(s\) close$"):
        labels_match(labeled_frame([1, 2], [101.0, 100.0]), "1m", context=context)


def test_open_times_stored_as_text_are_read_as_utc_times():
    frame = labeled_frame(MINUTES, CLOSES)
    frame["open_time"] = [iso(m) for m in MINUTES]
    outcome = labels_match(frame, "1m")
    assert outcome.passed is True and outcome.metadata["rows"] == 7


def test_naive_labeled_times_are_checked_against_utc_context():
    whole = labeled_frame([0, 1, 2, 3], [100.0, 101.0, 100.0, 100.0])
    frame, context = whole.iloc[1:].reset_index(drop=True), whole.iloc[:1]
    frame["open_time"] = frame["open_time"].dt.tz_localize(None)
    outcome = labels_match(frame, "1m", context=context)
    assert outcome.passed is True and outcome.metadata["context_rows"] == 1


def test_naive_or_text_context_times_are_taken_as_utc():
    frame = labeled_frame([0, 1, 2, 3], [100.0, 101.0, 100.0, 100.0]).iloc[1:].reset_index(drop=True)
    for times in (pd.Series([at(0)]).dt.tz_localize(None), [iso(0)]):
        context = pd.DataFrame({"open_time": times, "close": [100.0]})
        outcome = labels_match(frame, "1m", context=context)
        assert outcome.passed is True and outcome.metadata["context_rows"] == 1


# no_nan_in_trainable: the descriptions


def test_finite_trainable_rows_are_described_exactly():
    outcome = no_nan_in_trainable(trainable_frame(rsi_14=[1.0, 2.0]), columns=["rsi_14"])
    assert outcome.description == "All 2 trainable rows have finite values in every feature."


def test_several_rows_with_missing_features_are_described_in_the_plural_by_feature():
    frame = trainable_frame(rsi_14=[np.nan, 1.0, np.inf], macd=[np.nan, 1.0, 2.0])
    outcome = no_nan_in_trainable(frame, columns=["rsi_14", "macd"])
    assert outcome.description == (
        f"2 trainable rows of 3 have a missing or infinite feature (rsi_14: 2, macd: 1); the first is {iso(0)}."
    )


def test_one_row_with_a_missing_feature_is_described_in_the_singular():
    outcome = no_nan_in_trainable(trainable_frame(rsi_14=[1.0, np.nan]), columns=["rsi_14"])
    assert outcome.description == (
        f"1 trainable row of 2 has a missing or infinite feature (rsi_14: 1); the first is {iso(1)}."
    )


# default_cut_points


def test_one_cut_point_is_the_first_candle():
    assert default_cut_points([at(0), at(1), at(2)], "1m", count=1) == [at(0)]


def test_fewer_than_one_cut_point_is_refused_with_the_count():
    with pytest.raises(ValueError, match=r"^count must be at least 1, got 0$"):
        default_cut_points([at(0)], "1m", count=0)


def test_cut_points_of_naive_times_are_utc():
    cuts = default_cut_points(pd.Series([at(m) for m in range(3)]).dt.tz_localize(None), "1m", count=2)
    assert cuts == [at(0), at(2)] and all(str(cut.tz) == "UTC" for cut in cuts)


# no_look_ahead, with small feature functions standing in for compute_features


def look_ahead_candles(count: int = 12, naive: bool = False) -> pd.DataFrame:
    times = pd.Series([at(m) for m in range(count)])
    return pd.DataFrame(
        {"open_time": times.dt.tz_localize(None) if naive else times, "close": [100.0 + m for m in range(count)]}
    )


def stub_features(peek: tuple[str, ...] = (), drop_last: bool = False) -> Callable[..., pd.DataFrame]:
    """Every feature is the close; the ``peek`` ones read the next close instead (look-ahead).
    ``drop_last``: no row for the newest candle (as for a row that needs the next candle)."""

    def compute(candles: pd.DataFrame, interval: str, max_fill_minutes: int = 0) -> pd.DataFrame:
        close = candles["close"].astype("float64").reset_index(drop=True)
        features = pd.DataFrame({"open_time": candles["open_time"].reset_index(drop=True)})
        for name in FEATURE_COLUMNS:
            features[name] = close.shift(-1) if name in peek else close
        return features.iloc[:-1] if drop_last else features

    return compute


def test_the_candle_frame_without_open_times_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"^the candle frame lacks the column\(s\) open_time$"):
        no_look_ahead(pd.DataFrame({"close": [1.0]}), "1m", 0, [0], compute=stub_features())


def test_features_without_look_ahead_are_described_and_recorded_exactly():
    candles = look_ahead_candles()
    outcome = no_look_ahead(candles, "1m", 0, list(range(7)), compute=stub_features())
    assert outcome.passed is True
    assert outcome.description == "The features at all 7 cut points are the same without the later candles."
    assert outcome.metadata == {
        "cut_points": 7,
        "cut_points_differing": 0,
        "differing_features": [],
        "differences_by_feature": {},
        "cut_points_without_row": 0,
        "first_differing_open_times": [],
        "checked_open_times": [iso(m) for m in range(7)],
    }


def test_features_reading_the_next_candle_are_counted_per_feature_and_described():
    names = (FEATURE_COLUMNS[1], FEATURE_COLUMNS[0])
    outcome = no_look_ahead(look_ahead_candles(), "1m", 0, [2, 5, 11], compute=stub_features(peek=names))
    assert outcome.passed is False
    assert outcome.description == (
        f"The features at 2 of 3 cut points change when later candles are added "
        f"({', '.join(sorted(names))}); the first is {iso(2)}."
    )
    assert outcome.metadata["differences_by_feature"] == {name: 2 for name in sorted(names)}
    assert outcome.metadata["first_differing_open_times"] == [iso(2), iso(5)]


def test_cut_points_without_a_feature_row_are_counted_and_described():
    outcome = no_look_ahead(look_ahead_candles(), "1m", 0, [3, 6], compute=stub_features(drop_last=True))
    assert outcome.passed is False
    assert outcome.description == (
        "The features at 2 of 2 cut points change when later candles are added "
        f"(2 without a feature row in one of the two); the first is {iso(3)}."
    )
    assert outcome.metadata["cut_points_without_row"] == 2
    assert outcome.metadata["first_differing_open_times"] == [iso(3), iso(6)]
    assert outcome.metadata["differing_features"] == []


def test_the_first_candle_may_be_given_as_the_most_negative_position():
    candles = look_ahead_candles(5)
    outcome = no_look_ahead(candles, "1m", 0, [-5], compute=stub_features())
    assert outcome.metadata["checked_open_times"] == [iso(0)]


def test_a_cut_point_that_is_no_open_time_is_refused_naming_it():
    with pytest.raises(ValueError, match=rf"^cut point {re.escape(iso(0.5))} is not the open time of a candle$"):
        no_look_ahead(look_ahead_candles(), "1m", 0, [at(0.5)], compute=stub_features())


def test_naive_candle_times_are_taken_as_utc():
    candles = look_ahead_candles(naive=True)
    outcome = no_look_ahead(candles, "1m", 0, [3, at(5)], compute=stub_features())
    assert outcome.passed is True
    assert outcome.metadata["checked_open_times"] == [iso(3), iso(5)]


def test_the_feature_function_gets_the_candles_sorted_and_without_an_index_column():
    seen: list[list[str]] = []

    def compute(candles: pd.DataFrame, interval: str, max_fill_minutes: int = 0) -> pd.DataFrame:
        seen.append(list(candles.columns))
        assert candles["open_time"].is_monotonic_increasing
        return stub_features()(candles, interval, max_fill_minutes)

    candles = look_ahead_candles().iloc[::-1]
    assert no_look_ahead(candles, "1m", 0, [4], compute=compute).passed is True
    assert seen == [["open_time", "close"], ["open_time", "close"]]


def test_of_repeated_feature_rows_the_first_is_compared():
    def compute(candles: pd.DataFrame, interval: str, max_fill_minutes: int = 0) -> pd.DataFrame:
        features = stub_features()(candles, interval, max_fill_minutes)
        peeking = stub_features(peek=FEATURE_COLUMNS)(candles, interval, max_fill_minutes)
        return pd.concat([features, peeking], ignore_index=True)  # each time twice: honest row first

    outcome = no_look_ahead(look_ahead_candles(), "1m", 0, [2, 5], compute=compute)
    assert outcome.passed is True


def test_a_nullable_feature_with_missing_values_equals_itself():
    def compute(candles: pd.DataFrame, interval: str, max_fill_minutes: int = 0) -> pd.DataFrame:
        features = stub_features()(candles, interval, max_fill_minutes)
        features[FEATURE_COLUMNS[0]] = pd.array([None] * len(features), dtype="Float64")
        return features

    assert no_look_ahead(look_ahead_candles(), "1m", 0, [2, 5], compute=compute).passed is True


def test_a_nullable_feature_that_changes_is_a_difference():
    def compute(candles: pd.DataFrame, interval: str, max_fill_minutes: int = 0) -> pd.DataFrame:
        features = stub_features()(candles, interval, max_fill_minutes)
        values = [None] * (len(features) - 1) + [1.0]  # only the newest row has a value
        features[FEATURE_COLUMNS[0]] = pd.array(values, dtype="Float64")
        return features

    outcome = no_look_ahead(look_ahead_candles(), "1m", 0, [2], compute=compute)
    assert outcome.metadata["differing_features"] == [FEATURE_COLUMNS[0]]


def test_a_look_ahead_and_a_missing_row_are_both_described():
    def compute(candles: pd.DataFrame, interval: str, max_fill_minutes: int = 0) -> pd.DataFrame:
        features = stub_features(peek=FEATURE_COLUMNS[:1])(candles, interval, max_fill_minutes)
        newest = candles["open_time"].iloc[-1]
        return features.iloc[:-1] if newest == at(6) else features  # no row for minute 6 while newest

    outcome = no_look_ahead(look_ahead_candles(), "1m", 0, [2, 6], compute=compute)
    assert outcome.description == (
        "The features at 2 of 2 cut points change when later candles are added "
        f"({FEATURE_COLUMNS[0]}; 1 without a feature row in one of the two); the first is {iso(2)}."
    )


def test_features_held_as_objects_with_missing_values_are_compared_as_numbers():
    def compute(candles: pd.DataFrame, interval: str, max_fill_minutes: int = 0) -> pd.DataFrame:
        features = stub_features()(candles, interval, max_fill_minutes)
        features[FEATURE_COLUMNS[0]] = pd.Series([pd.NA] * len(features), dtype=object)
        features[FEATURE_COLUMNS[1]] = features[FEATURE_COLUMNS[1]].astype(object)
        return features

    assert no_look_ahead(look_ahead_candles(), "1m", 0, [2, 5], compute=compute).passed is True


def repeated_minutes(count: int) -> pd.DataFrame:
    """``count`` minutes, each stored twice with different closes (a frame before deduplication)."""
    rng = np.random.default_rng(11)
    minutes = np.repeat(np.arange(count), 2)
    closes = np.round(100 + rng.normal(0, 1, len(minutes)), 2)
    frame = labeled_frame([int(m) for m in minutes], [float(c) for c in closes])
    return frame


def test_repeated_minutes_are_recomputed_in_their_stored_order():
    frame = repeated_minutes(300)
    outcome = labels_match(frame, "1m")
    assert outcome.passed is True and outcome.metadata["rows"] == 600
