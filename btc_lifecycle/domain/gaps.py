"""The gap policy: on a thin market a missing minute means "no trade", not "no data".

An exchange that only writes a candle when a trade happens leaves a hole for every quiet minute.
Short holes between two stored candles are filled with flat trade-less candles (open, high, low
and close at the previous close, volume 0), as freqtrade does, and flagged. Long holes are left
open: hours without a candle are an outage or maintenance, and inventing flat prices for them
would hide that. Nothing is filled after the last stored candle: the next trade is unknown yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candles import EXTRA_COLUMNS, PRICE_COLUMNS, find_gaps, interval_ms

FILLED_COLUMN = "filled"


@dataclass(frozen=True)
class GapFillSummary:
    """What a gap policy does to one candle series: what it fills and what stays a gap."""

    max_fill_minutes: int
    minutes_filled: int
    gaps_filled: int
    gaps_left_open: int  # longer than max_fill_minutes
    minutes_left_open: int

    @property
    def missing_minutes(self) -> int:
        return self.minutes_filled + self.minutes_left_open


def gap_fill_summary(open_times: pd.Series, interval: str, max_fill_minutes: int) -> GapFillSummary:
    """The effect of filling gaps of up to ``max_fill_minutes`` candles on a sorted series."""
    _check_limit(max_fill_minutes)
    gaps = find_gaps(open_times, interval)
    fillable = [gap.missing for gap in gaps if gap.missing <= max_fill_minutes]
    left_open = [gap.missing for gap in gaps if gap.missing > max_fill_minutes]
    return GapFillSummary(
        max_fill_minutes=max_fill_minutes,
        minutes_filled=sum(fillable),
        gaps_filled=len(fillable),
        gaps_left_open=len(left_open),
        minutes_left_open=sum(left_open),
    )


def fill_trade_less_minutes(candles: pd.DataFrame, interval: str, max_fill_minutes: int) -> pd.DataFrame:
    """``candles`` plus a flat trade-less candle for every minute of a gap of at most
    ``max_fill_minutes`` candles, in time order, with a boolean ``filled`` column and a fresh index.

    A filled candle opens, peaks, bottoms and closes at the previous stored close; its volume and
    the exchange's extras (quote volume, trades, taker volumes) are 0. Columns beyond the candle
    columns are missing (NA) on filled rows: nothing was observed there.
    """
    _check_limit(max_fill_minutes)
    open_times = candles["open_time"]
    if not open_times.is_monotonic_increasing or open_times.duplicated().any():
        raise ValueError("candles must be sorted by open_time without duplicates")
    stored = candles.reset_index(drop=True).assign(**{FILLED_COLUMN: False})
    step = pd.Timedelta(milliseconds=interval_ms(interval))
    times = pd.DatetimeIndex(stored["open_time"])
    missing = np.zeros(len(stored), dtype="int64")  # missing[i]: candles missing before row i
    missing[1:] = (times[1:] - times[:-1]) // step - 1
    fill_before = np.flatnonzero((missing > 0) & (missing <= max_fill_minutes))
    if len(fill_before) == 0:
        return stored
    counts = missing[fill_before]
    previous = np.repeat(fill_before - 1, counts)
    # 1, 2, ..., n within each gap: how many steps after the previous stored candle a fill lies.
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    previous_close = stored["close"].to_numpy(dtype="float64")[previous]
    fill_times = times[previous] + offsets * step
    fills = pd.DataFrame(
        {
            "open_time": fill_times,
            **{name: previous_close for name in PRICE_COLUMNS},
            "volume": 0.0,
        }
    )
    if "close_time" in stored:
        fills["close_time"] = fill_times + (step - pd.Timedelta(milliseconds=1))
    for name in EXTRA_COLUMNS:
        if name in stored:
            fills[name] = 0.0
    fills[FILLED_COLUMN] = True
    combined = pd.concat([stored, fills], ignore_index=True)
    return combined.sort_values("open_time", kind="stable").reset_index(drop=True)


def _check_limit(max_fill_minutes: int) -> None:
    whole = isinstance(max_fill_minutes, (int, np.integer)) and not isinstance(max_fill_minutes, bool)
    if not whole or max_fill_minutes < 0:
        raise ValueError(f"max_fill_minutes must be a whole number of candles >= 0, got {max_fill_minutes!r}")
