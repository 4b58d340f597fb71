"""The data-quality checks of btc_lifecycle.modelling.quality on the feature frame: no missing value
in a trainable row, no look-ahead at the default cut points (with compute_features and with small
feature functions standing in for it), each outcome's description and metadata whole."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, TRAINABLE_COLUMN, compute_features
from btc_lifecycle.modelling.quality import default_cut_points, no_look_ahead, no_nan_in_trainable
from btc_lifecycle_tests.minute_candles import assert_json_able, at, candles, iso
from btc_lifecycle_tests.strategies import candle_frames, fill_limits

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


def trainable_frame(**columns) -> pd.DataFrame:
    count = len(next(iter(columns.values())))
    return pd.DataFrame({"open_time": [at(n) for n in range(count)], TRAINABLE_COLUMN: True, **columns})


def test_a_feature_frame_without_a_checked_column_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"^the feature frame lacks the column\(s\) rsi_14$"):
        no_nan_in_trainable(trainable_frame(other=[1.0]), columns=["rsi_14"])


def test_a_value_that_is_not_a_number_counts_as_not_finite():
    frame = trainable_frame(rsi_14=pd.Series([50.0, "n/a", 40.0], dtype=object))
    outcome = no_nan_in_trainable(frame, columns=["rsi_14"])
    assert outcome.passed is False
    assert outcome.metadata["non_finite_by_feature"] == {"rsi_14": 1}
    assert outcome.metadata["first_violating_open_times"] == [iso(1)]


def test_checking_no_columns_passes_every_trainable_row():
    outcome = no_nan_in_trainable(trainable_frame(rsi_14=[np.nan, 1.0]), columns=())
    assert outcome.passed is True
    assert outcome.metadata["violating_rows"] == 0 and outcome.metadata["trainable_rows"] == 2


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


def test_one_cut_point_is_the_first_candle():
    assert default_cut_points([at(0), at(1), at(2)], "1m", count=1) == [at(0)]


def test_fewer_than_one_cut_point_is_refused_with_the_count():
    with pytest.raises(ValueError, match=r"^count must be at least 1, got 0$"):
        default_cut_points([at(0)], "1m", count=0)


def test_cut_points_of_naive_times_are_utc():
    cuts = default_cut_points(pd.Series([at(m) for m in range(3)]).dt.tz_localize(None), "1m", count=2)
    assert cuts == [at(0), at(2)] and all(str(cut.tz) == "UTC" for cut in cuts)


# no_look_ahead with compute_features


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


# Each example recomputes the features once per cut point: fewer, smaller examples.
@settings(max_examples=15)
@given(candle_frames(min_size=1, max_size=120), fill_limits)
def test_compute_features_passes_the_look_ahead_check_at_the_default_cut_points(candles, max_fill_minutes):
    cuts = default_cut_points(candles["open_time"], "1m", count=4)
    assert candles["open_time"].iloc[-1] in cuts
    outcome = no_look_ahead(candles, "1m", max_fill_minutes, cuts)
    assert outcome.passed, outcome.description


# no_look_ahead with small feature functions standing in for compute_features


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
