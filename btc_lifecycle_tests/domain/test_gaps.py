"""The gap policy: short gaps are trade-less minutes, filled flat and flagged; long gaps stay."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given

from btc_lifecycle.domain.candles import EXTRA_COLUMNS, PRICE_COLUMNS, find_gaps, validate_candles
from btc_lifecycle.domain.gaps import FILLED_COLUMN, fill_trade_less_minutes, gap_fill_summary
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle_tests.strategies import MINUTE, gappy_cases, stored_gaps

# Gaps of 1, 3, 5 and 40 minutes, after the candles at positions 9, 19, 29 and 59.
HOLES = [10, *range(20, 23), *range(30, 35), *range(60, 100)]


@pytest.fixture(scope="module")
def complete() -> pd.DataFrame:
    return synthetic_candles(200, seed=4)


@pytest.fixture(scope="module")
def holed(complete) -> pd.DataFrame:
    return without_minutes(complete, HOLES)


def test_a_short_gap_becomes_flat_trade_less_candles_at_the_previous_close(complete, holed):
    filled = fill_trade_less_minutes(holed, "1m", max_fill_minutes=3).set_index("open_time")
    previous_close = complete["close"].iloc[19]
    for position in range(20, 23):
        candle = filled.loc[complete["open_time"].iloc[position]]
        assert candle[FILLED_COLUMN]
        assert candle[["open", "high", "low", "close"]].tolist() == [previous_close] * 4
        assert candle["volume"] == 0 and candle["trades"] == 0


def test_stored_candles_are_kept_as_they_are_and_flagged_not_filled(holed):
    filled = fill_trade_less_minutes(holed, "1m", max_fill_minutes=5)
    stored = filled.loc[~filled[FILLED_COLUMN]].reset_index(drop=True)
    pd.testing.assert_frame_equal(stored.drop(columns=FILLED_COLUMN), holed)


def test_a_gap_longer_than_the_limit_stays_a_gap(holed):
    filled = fill_trade_less_minutes(holed, "1m", max_fill_minutes=5)
    assert [gap.missing for gap in find_gaps(filled["open_time"], "1m")] == [40]
    assert int(filled[FILLED_COLUMN].sum()) == 1 + 3 + 5


def test_nothing_is_filled_before_the_first_or_after_the_last_stored_candle(complete):
    trimmed = complete.iloc[5:150].reset_index(drop=True)
    filled = fill_trade_less_minutes(without_minutes(trimmed, [0, 144]), "1m", max_fill_minutes=60)
    assert filled["open_time"].iloc[0] == trimmed["open_time"].iloc[1]
    assert filled["open_time"].iloc[-1] == trimmed["open_time"].iloc[143]


def test_a_limit_of_zero_fills_nothing(holed):
    filled = fill_trade_less_minutes(holed, "1m", max_fill_minutes=0)
    assert not filled[FILLED_COLUMN].any()
    pd.testing.assert_frame_equal(filled.drop(columns=FILLED_COLUMN), holed)


def test_filled_candles_are_valid_candles_in_time_order(holed):
    filled = fill_trade_less_minutes(holed, "1m", max_fill_minutes=40)
    validate_candles(filled, "filled")
    assert filled["open_time"].is_monotonic_increasing and not filled["open_time"].duplicated().any()
    assert find_gaps(filled["open_time"], "1m") == []


def test_the_summary_counts_what_is_filled_and_what_stays_open(holed):
    summary = gap_fill_summary(holed["open_time"], "1m", max_fill_minutes=5)
    assert (summary.minutes_filled, summary.gaps_filled) == (9, 3)
    assert (summary.gaps_left_open, summary.minutes_left_open) == (1, 40)
    assert summary.missing_minutes == len(HOLES)
    filled = fill_trade_less_minutes(holed, "1m", max_fill_minutes=5)
    assert summary.minutes_filled == int(filled[FILLED_COLUMN].sum())


@pytest.mark.parametrize("limit", [-1, 2.5, True])
def test_a_limit_that_is_not_a_whole_number_of_candles_is_refused(holed, limit):
    with pytest.raises(ValueError, match="max_fill_minutes"):
        fill_trade_less_minutes(holed, "1m", limit)


# small hand-laid frames

START = pd.Timestamp("2024-03-01T00:00:00Z")


def at(minute: float) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=minute)


def test_the_gap_fill_summary_records_its_limit():
    times = pd.Series([at(0), at(1), at(4), at(20)])
    summary = gap_fill_summary(times, "1m", max_fill_minutes=3)
    assert summary.max_fill_minutes == 3
    assert (summary.gaps_filled, summary.minutes_filled) == (1, 2)
    assert (summary.gaps_left_open, summary.minutes_left_open) == (1, 15)


def plain_candles(minutes: list[int], closes: list[int]) -> pd.DataFrame:
    """Candles of integer prices (as a csv without decimals reads) and no close time."""
    return pd.DataFrame(
        {
            "open_time": [at(m) for m in minutes],
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": [1] * len(minutes),
        }
    )


def test_unsorted_candles_are_refused_with_the_rule():
    with pytest.raises(ValueError, match=r"^candles must be sorted by open_time without duplicates$"):
        fill_trade_less_minutes(plain_candles([1, 0], [5, 6]), "1m", 3)


def test_a_frame_without_gaps_comes_back_flagged_with_its_own_types():
    filled = fill_trade_less_minutes(plain_candles([0, 1, 2], [5, 6, 7]), "1m", 3)
    assert filled[FILLED_COLUMN].dtype == bool and not filled[FILLED_COLUMN].any()
    assert str(filled["close"].dtype) == "int64" and filled["close"].tolist() == [5, 6, 7]


def test_filled_prices_are_floats_at_the_previous_close_even_for_integer_prices():
    filled = fill_trade_less_minutes(plain_candles([0, 3], [5, 6]), "1m", 3)
    assert filled["open_time"].tolist() == [at(0), at(1), at(2), at(3)]
    assert {str(filled[name].dtype) for name in ("open", "high", "low", "close")} == {"float64"}
    assert filled["close"].tolist() == [5.0, 5.0, 5.0, 6.0]


def test_filling_a_frame_without_a_close_time_column_adds_none():
    filled = fill_trade_less_minutes(plain_candles([0, 2], [5, 6]), "1m", 3)
    assert "close_time" not in filled.columns


def test_a_filled_candle_closes_one_millisecond_before_the_next_opens():
    candles = plain_candles([0, 3], [5, 6])
    candles["close_time"] = candles["open_time"] + pd.Timedelta(minutes=1) - pd.Timedelta(milliseconds=1)
    filled = fill_trade_less_minutes(candles, "1m", 3)
    assert filled["close_time"].tolist() == [at(m + 1) - pd.Timedelta(milliseconds=1) for m in range(4)]


# any gappy series


@given(gappy_cases())
def test_the_fill_adds_flat_flagged_candles_for_exactly_the_short_gaps_and_keeps_the_stored_ones(case):
    candles, max_fill_minutes = case
    before = candles.copy()
    filled = fill_trade_less_minutes(candles, "1m", max_fill_minutes)
    pd.testing.assert_frame_equal(candles, before)  # the input frame is not touched
    flags = filled[FILLED_COLUMN]
    assert flags.dtype == bool and filled["open_time"].is_monotonic_increasing
    pd.testing.assert_frame_equal(
        filled.loc[~flags].drop(columns=FILLED_COLUMN).reset_index(drop=True), candles, check_exact=True
    )
    expected = [
        (after + k * MINUTE, close)
        for after, before_, missing in stored_gaps(candles)
        if missing <= max_fill_minutes
        for k in range(1, missing + 1)
        for close in [candles.loc[candles["open_time"] == after, "close"].item()]
    ]
    invented = filled.loc[flags]
    assert list(invented["open_time"]) == [moment for moment, _ in expected]
    for name in PRICE_COLUMNS:  # flat at the previous stored close
        assert list(invented[name]) == [close for _, close in expected]
    assert (invented[["volume", *EXTRA_COLUMNS]] == 0).all().all()
