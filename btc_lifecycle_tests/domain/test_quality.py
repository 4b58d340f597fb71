"""The data-quality checks of btc_lifecycle.domain.quality: each passes on good data and fails,
naming what and where, on a known fault; every outcome's description and metadata whole (what a
person reads beside the asset), the errors naming the frame and column, naive times taken as UTC;
and on any valid series, every check passes and any single planted fault is caught."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle_tests.minute_candles import assert_json_able, at, candles, iso
from btc_lifecycle_tests.strategies import MINUTE, candle_frames

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


def test_a_duplicated_minute_fails_the_unique_key_check_and_is_named():
    times = candles([0, 1, 2, 2, 3])["open_time"]
    outcome = unique_keys(times)
    assert not outcome.passed
    assert outcome.metadata["duplicate_rows"] == 1
    assert outcome.metadata["duplicated_open_times"] == 1
    assert outcome.metadata["first_duplicated_open_times"] == [iso(2)]
    assert iso(2) in outcome.description and "1 open time appears" in outcome.description
    assert_json_able(outcome)


def test_a_minute_stored_three_times_counts_two_extra_rows_for_one_open_time():
    outcome = unique_keys(candles([0, 5, 5, 5])["open_time"])
    assert outcome.metadata["duplicate_rows"] == 2 and outcome.metadata["duplicated_open_times"] == 1


def test_duplicates_are_listed_earliest_first_whatever_the_row_order():
    times = pd.Series([at(9), at(3), at(9), at(3), at(1)])
    outcome = unique_keys(times)
    assert outcome.metadata["first_duplicated_open_times"] == [iso(3), iso(9)]
    assert iso(3) in outcome.description


def test_an_empty_series_has_unique_keys():
    assert unique_keys(pd.Series([], dtype="datetime64[ns, UTC]")).passed


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


def test_generated_candles_are_ohlc_consistent():
    outcome = ohlc_consistent(synthetic_candles(500, seed=3))
    assert outcome.passed and outcome.metadata["violating_rows"] == 0


def test_prices_below_one_are_still_positive_prices():
    frame = quality_candles(2).assign(open=0.5, high=0.7, low=0.4, close=0.6)
    assert ohlc_consistent(frame).passed is True


def test_a_high_below_the_close_fails_under_its_rule_naming_the_minute():
    frame = candles(list(range(6)), closes=[100, 101, 102, 103, 104, 105])
    frame.loc[3, "high"] = frame.loc[3, "close"] - 0.5
    outcome = ohlc_consistent(frame)
    assert not outcome.passed
    assert outcome.metadata["violating_rows"] == 1
    assert outcome.metadata["high_below_open_or_close"] == 1
    assert outcome.metadata["low_above_open_or_close"] == 0
    assert outcome.metadata["price_missing_infinite_or_not_positive"] == 0
    assert outcome.metadata["first_violating_open_times"] == [iso(3)]
    assert iso(3) in outcome.description and "high below max(open, close)" in outcome.description
    assert_json_able(outcome)


def test_a_high_below_the_open_counts_like_one_below_the_close():
    frame = candles(list(range(3)), closes=[100, 90, 80])  # falling: open above close
    frame.loc[1, "high"] = frame.loc[1, "close"] + 1  # above the close, below the open
    outcome = ohlc_consistent(frame)
    assert outcome.metadata["high_below_open_or_close"] == 1


def test_a_low_above_the_open_fails_under_the_low_rule():
    frame = candles(list(range(3)), closes=[100, 110, 120])  # rising: open below close
    frame.loc[2, "low"] = frame.loc[2, "open"] + 1
    outcome = ohlc_consistent(frame)
    assert not outcome.passed
    assert outcome.metadata["low_above_open_or_close"] == 1 and outcome.metadata["high_below_open_or_close"] == 0


def test_a_low_above_the_close_counts_like_one_above_the_open():
    frame = candles(list(range(3)), closes=[100, 90, 80])  # falling: close below open
    frame.loc[1, "low"] = frame.loc[1, "close"] + 1  # below the open, above the close
    outcome = ohlc_consistent(frame)
    assert outcome.metadata["low_above_open_or_close"] == 1 and outcome.metadata["first_violating_open_times"] == [
        iso(1)
    ]


@pytest.mark.parametrize("price", [0.0, -1.0, np.nan, np.inf])
def test_a_price_that_is_zero_negative_missing_or_infinite_fails(price):
    frame = candles(list(range(4)))
    frame.loc[1, "open"] = price
    outcome = ohlc_consistent(frame)
    assert not outcome.passed
    assert outcome.metadata["price_missing_infinite_or_not_positive"] == 1
    assert outcome.metadata["first_violating_open_times"] == [iso(1)]
    assert_json_able(outcome)


@pytest.mark.parametrize("volume", [-0.1, np.nan, np.inf])
def test_a_volume_that_is_negative_missing_or_infinite_fails(volume):
    frame = candles(list(range(4)))
    frame.loc[2, "volume"] = volume
    outcome = ohlc_consistent(frame)
    assert not outcome.passed and outcome.metadata["volume_missing_infinite_or_negative"] == 1


def test_a_zero_volume_minute_is_consistent():
    frame = candles(list(range(4)))
    frame.loc[2, "volume"] = 0.0
    assert ohlc_consistent(frame).passed


def test_a_candle_breaking_two_rules_counts_once_as_a_row_and_once_under_each_rule():
    frame = candles(list(range(5)))
    frame.loc[1, "high"] = frame.loc[1, "low"] - 5  # below open and close
    frame.loc[1, "volume"] = -1.0
    frame.loc[4, "low"] = frame.loc[4, "high"] + 5  # above open and close
    outcome = ohlc_consistent(frame)
    assert outcome.metadata["violating_rows"] == 2
    assert outcome.metadata["high_below_open_or_close"] == 1
    assert outcome.metadata["volume_missing_infinite_or_negative"] == 1
    assert outcome.metadata["low_above_open_or_close"] == 1
    assert outcome.metadata["first_violating_open_times"] == [iso(1), iso(4)]
    assert "2 candles of 5 break" in outcome.description


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


def test_a_90_minute_gap_fails_a_60_minute_threshold_naming_where_it_is():
    times = candles([0, 1, 92, 93])["open_time"]  # minutes 2..91 missing: 90 minutes
    outcome = gaps_within(times, "1m", max_gap_minutes=60)
    assert not outcome.passed
    assert outcome.metadata["gaps_over_threshold"] == 1
    assert outcome.metadata["longest_gap_minutes"] == 90
    assert outcome.metadata["longest_gap_after"] == iso(1)
    assert outcome.metadata["first_gaps_over_threshold_after"] == [iso(1)]
    assert "90 minutes" in outcome.description and iso(1) in outcome.description and iso(92) in outcome.description
    assert_json_able(outcome)


def test_a_gap_exactly_at_the_threshold_passes():
    outcome = gaps_within(candles([0, 61])["open_time"], "1m", max_gap_minutes=60)
    assert outcome.passed and outcome.metadata["longest_gap_minutes"] == 60 and outcome.metadata["gaps"] == 1


def test_gaps_within_counts_every_gap_but_fails_only_on_the_long_ones():
    times = candles([0, 3, 4, 80, 81, 200, 230])["open_time"]  # gaps of 2, 75, 118, 29 minutes
    outcome = gaps_within(times, "1m", max_gap_minutes=60)
    assert outcome.metadata["gaps"] == 4
    assert outcome.metadata["missing_minutes"] == 2 + 75 + 118 + 29
    assert outcome.metadata["gaps_over_threshold"] == 2
    assert outcome.metadata["longest_gap_minutes"] == 118 and outcome.metadata["longest_gap_after"] == iso(81)
    assert outcome.metadata["first_gaps_over_threshold_after"] == [iso(4), iso(81)]
    assert "2 gaps exceed 60 minutes" in outcome.description


def test_gaps_are_found_in_time_order_even_when_rows_are_not():
    times = candles([0, 1, 92])["open_time"].iloc[::-1]
    assert gaps_within(times, "1m", 60).metadata["longest_gap_minutes"] == 90


def test_the_gap_threshold_is_in_minutes_for_any_interval():
    times = candles([0, 5, 35], interval="5m")["open_time"]  # 5 five-minute candles missing: 25 minutes
    assert gaps_within(times, "5m", max_gap_minutes=25).passed
    outcome = gaps_within(times, "5m", max_gap_minutes=20)
    assert not outcome.passed and outcome.metadata["longest_gap_minutes"] == 25


def test_a_series_without_gaps_passes_with_zero_gaps_and_no_longest_gap():
    outcome = gaps_within(candles(list(range(30)))["open_time"], "1m", 0)
    assert outcome.passed and outcome.metadata["gaps"] == 0 and outcome.metadata["longest_gap_minutes"] == 0
    assert outcome.description == "No gap exceeds 0 minutes (0 gaps, longest 0 minutes)."
    assert outcome.metadata["longest_gap_after"] is None


def test_a_negative_gap_threshold_is_refused_with_its_value():
    with pytest.raises(ValueError, match=r"^max_gap_minutes must be >= 0, got -1$"):
        gaps_within([at(0)], "1m", -1)


# fresh


def test_a_fresh_candle_is_described_and_recorded_exactly():
    outcome = fresh(at(720), at(726), "1m", max_lag_minutes=5)
    assert outcome.passed is True
    assert outcome.description == (
        f"The newest candle ({iso(720)}) closed 5 minutes before {iso(726)}, within the 5 minutes allowed."
    )
    assert outcome.metadata == {"last_open_time": iso(720), "now": iso(726), "lag_minutes": 5, "max_lag_minutes": 5}
    assert_json_able(outcome)


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


def test_the_lag_is_counted_from_the_end_of_the_interval():
    # An hourly candle opened at 11:00 closed at 12:00: at 12:02 it is 2 minutes old, not 62.
    outcome = fresh(at(660), at(722), "1h", max_lag_minutes=3)
    assert outcome.passed and outcome.metadata["lag_minutes"] == 2


def test_freshness_accepts_python_datetimes_in_any_zone():
    plus_two = dt.timezone(dt.timedelta(hours=2))
    now = (at(726) + pd.Timedelta(0)).to_pydatetime().astimezone(plus_two)
    outcome = fresh(at(720).to_pydatetime(), now, "1m", max_lag_minutes=5)
    assert outcome.passed and outcome.metadata["now"] == iso(726)


@pytest.mark.parametrize("missing", [None, pd.NaT])
def test_no_candles_is_a_failure_with_every_metadata_key(missing):
    outcome = fresh(missing, at(0), "1m", max_lag_minutes=60)
    assert outcome.passed is False
    assert outcome.description == f"There are no candles, so none is fresh as of {iso(0)}."
    assert outcome.metadata == {"last_open_time": None, "now": iso(0), "lag_minutes": None, "max_lag_minutes": 60}
    assert_json_able(outcome)


# labels_match


def labeled(minutes: list[int], closes: list[float]) -> pd.DataFrame:
    return label_candles(candles(minutes, closes), "1m")


MINUTES = [0, 1, 2, 3, 5, 6, 7]  # minute 4 missing: minute 5 has no label


CLOSES = [100.0, 101.0, 100.0, 100.0, 99.0, 99.5, 98.0]


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


def test_a_flipped_stored_label_fails_naming_its_minute():
    frame = labeled(MINUTES, CLOSES)
    frame.loc[2, LABEL_COLUMN] = 1 - frame.loc[2, LABEL_COLUMN]
    outcome = labels_match(frame, "1m")
    assert not outcome.passed
    assert outcome.metadata["labels_differing"] == 1 and outcome.metadata["mismatching_rows"] == 1
    assert outcome.metadata["first_mismatching_open_times"] == [iso(2)]
    assert iso(2) in outcome.description and "1 stored label of 7 differs" in outcome.description
    assert_json_able(outcome)


def test_a_label_stored_across_a_gap_is_one_where_none_is_due():
    frame = labeled(MINUTES, CLOSES)
    frame.loc[4, LABEL_COLUMN] = 0  # minute 5 follows the hole at minute 4
    outcome = labels_match(frame, "1m")
    assert outcome.metadata["labels_unexpected"] == 1 and outcome.metadata["first_mismatching_open_times"] == [iso(5)]


def test_a_missing_stored_label_where_one_is_due_fails():
    frame = labeled(MINUTES, CLOSES)
    frame.loc[6, LABEL_COLUMN] = pd.NA
    outcome = labels_match(frame, "1m")
    assert outcome.metadata["labels_missing"] == 1 and outcome.metadata["first_mismatching_open_times"] == [iso(7)]


def test_labels_read_back_as_floats_with_nan_match():
    frame = labeled(MINUTES, CLOSES)
    frame[LABEL_COLUMN] = frame[LABEL_COLUMN].astype("float64")  # how a NULL-able column may come back
    assert labels_match(frame, "1m").passed


def test_without_context_the_first_row_of_a_day_slice_cannot_keep_its_label():
    day = labeled(list(range(10)), [100.0 + (i % 4) for i in range(10)]).iloc[4:]
    outcome = labels_match(day, "1m")
    assert not outcome.passed and outcome.metadata["labels_unexpected"] == 1
    assert outcome.metadata["first_mismatching_open_times"] == [iso(4)]


def test_context_candles_let_the_first_row_be_checked():
    whole = labeled(list(range(10)), [100.0 + (i % 4) for i in range(10)])
    day, previous_day = whole.iloc[4:], whole.iloc[:4]
    outcome = labels_match(day, "1m", context=previous_day)
    assert outcome.passed and outcome.metadata["context_rows"] == 4 and outcome.metadata["rows"] == 6
    flipped = day.copy()
    flipped.loc[4, LABEL_COLUMN] = 1 - flipped.loc[4, LABEL_COLUMN]
    outcome = labels_match(flipped, "1m", context=previous_day)
    assert not outcome.passed and outcome.metadata["first_mismatching_open_times"] == [iso(4)]


def test_context_rows_are_not_judged_and_overlapping_ones_are_ignored():
    whole = labeled(list(range(10)), [100.0 + (i % 4) for i in range(10)])
    context = whole.iloc[:6].drop(columns=LABEL_COLUMN)  # minutes 4 and 5 overlap the day
    context.loc[5, "close"] = 1_000.0  # would change minute 5's and 6's labels if it were used
    outcome = labels_match(whole.iloc[4:], "1m", context=context)
    assert outcome.passed and outcome.metadata["context_rows"] == 4


def test_context_that_ends_before_a_gap_leaves_the_first_row_unlabeled():
    whole = labeled([0, 1, 2, 5, 6], [100.0, 101.0, 102.0, 90.0, 91.0])
    assert pd.isna(whole.loc[3, LABEL_COLUMN])
    assert labels_match(whole.iloc[3:], "1m", context=whole.iloc[:3]).passed


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


# any valid series: every check passes, and a single planted fault is caught


def longest_gap(candles: pd.DataFrame) -> int:
    """The most minutes missing between two stored candles, written out."""
    times = list(candles["open_time"])
    return max([(b - a) // MINUTE - 1 for a, b in zip(times, times[1:], strict=False)], default=0)


@given(candle_frames(max_size=80))
def test_every_valid_candle_series_passes_the_key_and_ohlc_checks(candles):
    assert unique_keys(candles["open_time"]).passed
    outcome = ohlc_consistent(candles)
    assert outcome.passed, outcome.description
    json.dumps(outcome.metadata, allow_nan=False)


@given(candle_frames(min_size=2, max_size=60), st.data())
def test_repeating_any_minute_fails_the_key_check_naming_that_minute(candles, data):
    row = data.draw(st.integers(0, len(candles) - 1))
    repeated = pd.concat([candles, candles.iloc[[row]]], ignore_index=True)
    outcome = unique_keys(repeated["open_time"])
    assert not outcome.passed
    assert outcome.metadata["first_duplicated_open_times"] == [candles["open_time"].iloc[row].isoformat()]


@given(candle_frames(max_size=60), st.integers(0, 100))
def test_the_gap_check_fails_exactly_when_the_longest_gap_exceeds_the_threshold(candles, threshold):
    outcome = gaps_within(candles["open_time"], "1m", threshold)
    assert outcome.passed is (longest_gap(candles) <= threshold)
    assert outcome.metadata["longest_gap_minutes"] == longest_gap(candles)


@st.composite
def split_labeled(draw: st.DrawFn) -> tuple[pd.DataFrame, int]:
    """Labeled candles and where a day boundary splits them into context and the judged rows."""
    labeled = label_candles(draw(candle_frames(min_size=2, max_size=60, max_gap=3)), "1m")
    return labeled, draw(st.integers(1, len(labeled) - 1))


@given(split_labeled())
def test_stored_labels_match_on_any_split_with_the_earlier_part_as_context(case):
    labeled, split = case
    outcome = labels_match(labeled.iloc[split:], "1m", context=labeled.iloc[:split])
    assert outcome.passed, outcome.description
    assert outcome.metadata["rows"] == len(labeled) - split


@given(split_labeled(), st.data())
def test_flipping_any_one_stored_label_is_caught_at_its_minute(case, data):
    labeled, split = case
    judged = labeled.iloc[split:].copy()
    present = np.flatnonzero(judged[LABEL_COLUMN].notna().to_numpy())
    row = data.draw(st.sampled_from(list(present))) if len(present) else data.draw(st.integers(0, len(judged) - 1))
    column = judged.columns.get_loc(LABEL_COLUMN)
    # A present label is flipped; where none is due, one is invented.
    judged.iloc[row, column] = 1 - judged.iloc[row, column] if len(present) else 1
    outcome = labels_match(judged, "1m", context=labeled.iloc[:split])
    assert not outcome.passed
    assert outcome.metadata["mismatching_rows"] == 1
    assert outcome.metadata["first_mismatching_open_times"] == [judged["open_time"].iloc[row].isoformat()]


# the outcome


def test_an_outcome_is_frozen():
    outcome = unique_keys(candles([0])["open_time"])
    with pytest.raises(AttributeError):
        outcome.passed = False  # type: ignore[misc]
