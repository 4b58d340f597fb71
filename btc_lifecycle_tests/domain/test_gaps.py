"""The gap policy: short gaps are trade-less minutes, filled flat and flagged; long gaps stay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.candles import OHLCV_COLUMNS, find_gaps, validate_candles
from btc_lifecycle.domain.gaps import FILLED_COLUMN, fill_trade_less_minutes, gap_fill_summary
from btc_lifecycle.domain.synthetic import synthetic_candles, thin_venue_candles, without_minutes

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


def test_unsorted_candles_are_refused(holed):
    with pytest.raises(ValueError, match="sorted"):
        fill_trade_less_minutes(holed.iloc[::-1], "1m", 5)


# --- the thin venue the tests and the study use -------------------------------------------


@pytest.mark.parametrize("share, seed", [(0.55, 1), (0.62, 2), (0.70, 3)])
def test_a_thin_venue_misses_about_the_asked_share_of_minutes(share, seed):
    liquid = synthetic_candles(6_000, seed=seed)
    thin = thin_venue_candles(liquid, no_trade_share=share, seed=seed)
    assert abs((1 - len(thin) / len(liquid)) - share) < 0.03
    validate_candles(thin, "thin venue")
    assert set(thin["open_time"]) <= set(liquid["open_time"])


def test_a_thin_venues_candles_are_rebuilt_from_its_own_trades_inside_the_liquid_range():
    liquid = synthetic_candles(3_000, seed=8).set_index("open_time")
    thin = thin_venue_candles(liquid.reset_index(), seed=8).set_index("open_time")
    same_minutes = liquid.loc[thin.index]
    assert (thin["high"] <= same_minutes["high"] + 1e-9).all()
    assert (thin["low"] >= same_minutes["low"] - 1e-9).all()
    assert not np.allclose(thin["close"], same_minutes["close"])  # its last trade, not the liquid close
    assert (thin["volume"] > 0).all()


def test_a_thin_venue_is_the_same_for_the_same_seed_and_differs_for_another():
    liquid = synthetic_candles(2_000, seed=9)
    first, again = thin_venue_candles(liquid, seed=5), thin_venue_candles(liquid, seed=5)
    pd.testing.assert_frame_equal(first, again)
    other = thin_venue_candles(liquid, seed=6)
    assert not first["open_time"].equals(other["open_time"])
    assert list(first.columns)[: len(OHLCV_COLUMNS) + 1] == ["open_time", *OHLCV_COLUMNS]
