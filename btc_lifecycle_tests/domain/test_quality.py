"""The data-quality checks: each passes on good data and fails, naming what and where, on a known fault."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.candles import complete_candle_frame
from btc_lifecycle.domain.labels import LABEL_COLUMN, label_candles
from btc_lifecycle.domain.quality import (
    CheckOutcome,
    fresh,
    gaps_within,
    labels_match,
    ohlc_consistent,
    unique_keys,
)
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, TRAINABLE_COLUMN, compute_features
from btc_lifecycle.modelling.quality import default_cut_points, no_look_ahead, no_nan_in_trainable

START = pd.Timestamp("2024-03-01T00:00:00Z")


def at(minute: int) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=minute)


def iso(minute: int) -> str:
    return at(minute).isoformat()


def candles(minutes: list[int], closes: list[float] | None = None, interval: str = "1m") -> pd.DataFrame:
    """Valid candles at ``START + minutes``: open at the previous close, a 1-wide wick each side."""
    closes = [float(c) for c in closes] if closes is not None else [100.0 + (i % 3) for i in range(len(minutes))]
    opens = [closes[0], *closes[:-1]]
    frame = pd.DataFrame(
        {
            "open_time": [at(m) for m in minutes],
            "open": opens,
            "high": [max(o, c) + 1 for o, c in zip(opens, closes, strict=True)],
            "low": [min(o, c) - 1 for o, c in zip(opens, closes, strict=True)],
            "close": closes,
            "volume": 2.0,
        }
    )
    return complete_candle_frame(frame, interval)


def assert_json_able(outcome: CheckOutcome) -> None:
    json.dumps(outcome.metadata, allow_nan=False)


# unique_keys


def test_distinct_open_times_pass_the_unique_key_check():
    outcome = unique_keys(candles(list(range(10)))["open_time"])
    assert outcome.passed
    assert outcome.metadata["duplicate_rows"] == 0 and outcome.metadata["rows"] == 10


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


# ohlc_consistent


def test_generated_candles_are_ohlc_consistent():
    outcome = ohlc_consistent(synthetic_candles(500, seed=3))
    assert outcome.passed and outcome.metadata["violating_rows"] == 0


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


def test_the_ohlc_check_on_a_frame_without_volume_is_a_callers_error():
    with pytest.raises(ValueError, match="volume"):
        ohlc_consistent(candles([0, 1]).drop(columns="volume"))


# gaps_within


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


def test_a_series_without_gaps_passes_with_zero_longest_gap():
    outcome = gaps_within(candles(list(range(30)))["open_time"], "1m", 0)
    assert outcome.passed and outcome.metadata["gaps"] == 0 and outcome.metadata["longest_gap_minutes"] == 0


# fresh


def test_the_newest_candle_is_fresh_while_its_close_is_within_the_lag():
    # The 12:00 candle closes at 12:01; at 12:06 it is 5 minutes old.
    outcome = fresh(at(720), at(726), "1m", max_lag_minutes=5)
    assert outcome.passed
    assert outcome.metadata["lag_minutes"] == 5 and outcome.metadata["last_open_time"] == iso(720)
    assert_json_able(outcome)


def test_a_candle_older_than_the_lag_is_stale():
    outcome = fresh(at(720), at(726), "1m", max_lag_minutes=4)
    assert not outcome.passed
    assert iso(720) in outcome.description and "more than" in outcome.description


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
def test_no_candles_at_all_are_not_fresh(missing):
    outcome = fresh(missing, at(0), "1m", max_lag_minutes=60)
    assert not outcome.passed and "no candles" in outcome.description
    assert outcome.metadata["last_open_time"] is None
    assert_json_able(outcome)


# labels_match


def labeled(minutes: list[int], closes: list[float]) -> pd.DataFrame:
    return label_candles(candles(minutes, closes), "1m")


MINUTES = [0, 1, 2, 3, 5, 6, 7]  # minute 4 missing: minute 5 has no label
CLOSES = [100.0, 101.0, 100.0, 100.0, 99.0, 99.5, 98.0]


def test_labels_computed_by_the_pipeline_match_their_recomputation():
    outcome = labels_match(labeled(MINUTES, CLOSES), "1m")
    assert outcome.passed and outcome.metadata["mismatching_rows"] == 0 and outcome.metadata["rows"] == 7


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


# no_nan_in_trainable


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    gappy = without_minutes(synthetic_candles(400, seed=5), [*range(150, 153), *range(250, 330)])
    return compute_features(gappy, "1m", max_fill_minutes=5)


def test_the_feature_frame_has_no_missing_value_in_a_trainable_row(features):
    outcome = no_nan_in_trainable(features)
    assert outcome.passed
    assert 0 < outcome.metadata["trainable_rows"] < outcome.metadata["rows"]  # the check saw both kinds


def test_a_nan_in_a_trainable_row_fails_naming_the_feature_and_the_minute(features):
    tampered = features.copy()
    row = int(np.flatnonzero(tampered[TRAINABLE_COLUMN])[10])
    tampered.loc[row, "rsi_14"] = np.nan
    outcome = no_nan_in_trainable(tampered)
    assert not outcome.passed
    assert outcome.metadata["violating_rows"] == 1
    assert outcome.metadata["non_finite_by_feature"] == {"rsi_14": 1}
    moment = tampered.loc[row, "open_time"].isoformat()
    assert outcome.metadata["first_violating_open_times"] == [moment]
    assert moment in outcome.description and "rsi_14" in outcome.description
    assert_json_able(outcome)


def test_an_infinite_feature_in_a_trainable_row_fails(features):
    tampered = features.copy()
    row = int(np.flatnonzero(tampered[TRAINABLE_COLUMN])[0])
    tampered.loc[row, "log_volume_ratio_60"] = -np.inf
    assert no_nan_in_trainable(tampered).metadata["non_finite_by_feature"] == {"log_volume_ratio_60": 1}


def test_a_nan_in_a_row_that_is_not_trainable_is_allowed(features):
    tampered = features.copy()
    row = int(np.flatnonzero(~tampered[TRAINABLE_COLUMN])[-1])
    tampered.loc[row, list(FEATURE_COLUMNS)] = np.nan
    assert no_nan_in_trainable(tampered).passed


def test_a_missing_trainable_flag_counts_as_not_trainable(features):
    tampered = features.copy()
    tampered[TRAINABLE_COLUMN] = pd.array([pd.NA] * len(tampered), dtype="boolean")
    tampered[list(FEATURE_COLUMNS)] = np.nan
    outcome = no_nan_in_trainable(tampered)
    assert outcome.passed and outcome.metadata["trainable_rows"] == 0


# no_look_ahead and default_cut_points


@pytest.fixture(scope="module")
def gappy_candles() -> pd.DataFrame:
    # A 3-minute gap the policy fills and a 40-minute one it leaves open.
    return without_minutes(synthetic_candles(300, seed=9), [*range(90, 93), *range(180, 220)])


def peeking(name: str, shift: int = -1):
    """A feature function where ``name`` is replaced by the same column ``-shift`` rows later."""

    def compute(candles: pd.DataFrame, interval: str, max_fill_minutes: int = 0) -> pd.DataFrame:
        features = compute_features(candles, interval, max_fill_minutes)
        features[name] = features[name].shift(shift)
        return features

    return compute


def test_compute_features_does_not_look_ahead_at_the_default_cut_points(gappy_candles):
    cuts = default_cut_points(gappy_candles["open_time"], "1m")
    outcome = no_look_ahead(gappy_candles, "1m", 5, cuts)
    assert outcome.passed, outcome.description
    assert outcome.metadata["cut_points"] == len(cuts) and outcome.metadata["differing_features"] == []
    assert_json_able(outcome)


def test_a_feature_reading_the_next_candle_is_caught_and_named(gappy_candles):
    cuts = default_cut_points(gappy_candles["open_time"], "1m")
    outcome = no_look_ahead(gappy_candles, "1m", 5, cuts, compute=peeking("log_return_1"))
    assert not outcome.passed
    assert outcome.metadata["differing_features"] == ["log_return_1"]
    assert outcome.metadata["cut_points_differing"] >= 1
    assert "log_return_1" in outcome.description
    assert_json_able(outcome)


def test_the_look_ahead_shows_at_the_cut_and_not_where_the_next_candle_is_unknown_anyway(gappy_candles):
    last = len(gappy_candles) - 1
    compute = peeking("volatility_15")
    # At the last candle both runs lack the next one: equal. One earlier, only the prefix lacks it.
    assert no_look_ahead(gappy_candles, "1m", 5, [last], compute=compute).passed
    outcome = no_look_ahead(gappy_candles, "1m", 5, [last - 1], compute=compute)
    assert not outcome.passed
    assert outcome.metadata["first_differing_open_times"] == [gappy_candles["open_time"].iloc[last - 1].isoformat()]


def test_cut_points_may_be_positions_or_open_times(gappy_candles):
    compute = peeking("rsi_14")
    by_position = no_look_ahead(gappy_candles, "1m", 5, [10, -2], compute=compute)
    times = [gappy_candles["open_time"].iloc[10], gappy_candles["open_time"].iloc[-2]]
    by_time = no_look_ahead(gappy_candles, "1m", 5, times, compute=compute)
    assert by_position.metadata == by_time.metadata
    assert by_position.metadata["checked_open_times"] == [t.isoformat() for t in times]


def test_a_cut_point_that_is_not_a_candle_is_a_callers_error(gappy_candles):
    with pytest.raises(ValueError, match="not the open time"):
        no_look_ahead(gappy_candles, "1m", 5, [gappy_candles["open_time"].iloc[0] + pd.Timedelta(seconds=30)])
    with pytest.raises(ValueError, match="outside"):
        no_look_ahead(gappy_candles, "1m", 5, [len(gappy_candles)])


@pytest.mark.parametrize(("noise", "passes"), [(1e-15, True), (1e-9, False)])
def test_rounding_noise_below_the_tolerance_is_equal_and_above_it_differs(gappy_candles, noise, passes):
    def noisy(candles: pd.DataFrame, interval: str, max_fill_minutes: int = 0) -> pd.DataFrame:
        features = compute_features(candles, interval, max_fill_minutes)
        # Relative noise growing with the rows: the full run and a prefix differ by about noise x 250.
        features["body_to_open"] = features["body_to_open"] * (1 + noise * len(candles))
        return features

    outcome = no_look_ahead(gappy_candles, "1m", 5, [50, 150], compute=noisy)
    assert outcome.passed is passes
    assert outcome.metadata["differing_features"] == ([] if passes else ["body_to_open"])


def test_a_row_that_exists_only_with_later_candles_is_a_difference(gappy_candles):
    def drops_last(candles: pd.DataFrame, interval: str, max_fill_minutes: int = 0) -> pd.DataFrame:
        return compute_features(candles, interval, max_fill_minutes).iloc[:-1]

    outcome = no_look_ahead(gappy_candles, "1m", 5, [100], compute=drops_last)
    assert not outcome.passed and outcome.metadata["cut_points_without_row"] == 1


def test_default_cut_points_spread_over_the_series_and_include_the_last_row_and_rows_after_gaps():
    frame = candles([*range(0, 50), *range(60, 100), *range(130, 200)])
    cuts = default_cut_points(frame["open_time"], "1m", count=4)
    assert cuts == sorted(set(cuts))
    assert at(0) in cuts and at(199) in cuts  # the first and the last row
    assert at(60) in cuts and at(130) in cuts  # right after each gap
    assert len(cuts) <= 8 and set(cuts) <= set(frame["open_time"])
    assert cuts == default_cut_points(frame["open_time"].sample(frac=1, random_state=1), "1m", count=4)


def test_default_cut_points_pick_evenly_among_many_gaps():
    minutes = [m for m in range(0, 400) if m % 20 != 19]  # 19 gaps
    cuts = default_cut_points(candles(minutes)["open_time"], "1m", count=3)
    after_gaps = {at(m) for m in range(20, 400, 20)}
    assert sorted(set(cuts) & after_gaps) == [at(20), at(200), at(380)]


def test_default_cut_points_of_an_empty_or_short_series():
    assert default_cut_points(pd.Series([], dtype="datetime64[ns, UTC]"), "1m") == []
    assert default_cut_points(candles([0, 1])["open_time"], "1m", count=8) == [at(0), at(1)]


# the modules themselves


def test_the_quality_modules_load_without_pandas_or_numpy():
    code = (
        "import sys, btc_lifecycle.domain.quality, btc_lifecycle.modelling.quality; "
        "print([name for name in ('pandas', 'numpy') if name in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_an_outcome_is_frozen():
    outcome = unique_keys(candles([0])["open_time"])
    with pytest.raises(AttributeError):
        outcome.passed = False  # type: ignore[misc]
