"""The gap-fill summary records its limit; filled candles get float prices and a close time only
when the frame has one (found loose by `make mutate`, docs/mutation.md)."""

from __future__ import annotations

import pandas as pd
import pytest

from btc_lifecycle.domain.gaps import FILLED_COLUMN, fill_trade_less_minutes, gap_fill_summary

START = pd.Timestamp("2024-03-01T00:00:00Z")


def at(minute: float) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=minute)


def iso(minute: float) -> str:
    return at(minute).isoformat()


# gap_fill_summary


def test_the_gap_fill_summary_records_its_limit():
    times = pd.Series([at(0), at(1), at(4), at(20)])
    summary = gap_fill_summary(times, "1m", max_fill_minutes=3)
    assert summary.max_fill_minutes == 3
    assert (summary.gaps_filled, summary.minutes_filled) == (1, 2)
    assert (summary.gaps_left_open, summary.minutes_left_open) == (1, 15)


# fill_trade_less_minutes


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


def test_without_a_close_time_column_none_is_added():
    filled = fill_trade_less_minutes(plain_candles([0, 2], [5, 6]), "1m", 3)
    assert "close_time" not in filled.columns


def test_a_filled_candle_closes_one_millisecond_before_the_next_opens():
    candles = plain_candles([0, 3], [5, 6])
    candles["close_time"] = candles["open_time"] + pd.Timedelta(minutes=1) - pd.Timedelta(milliseconds=1)
    filled = fill_trade_less_minutes(candles, "1m", 3)
    assert filled["close_time"].tolist() == [at(m + 1) - pd.Timedelta(milliseconds=1) for m in range(4)]
