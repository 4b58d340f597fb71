"""Reduce long candle ranges to what a chart can show without losing their shape."""

from __future__ import annotations

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candles import interval_ms

MAX_CANDLESTICK_BARS = 2_000
MAX_LINE_POINTS = 40_000
MAX_SCATTER_POINTS = 8_000

# Bar sizes a reader recognises; the smallest one that fits the bar budget is used.
_BAR_MINUTES = (1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 240, 360, 480, 720, 1440, 2880, 10080)


def bar_size(
    first: pd.Timestamp, last: pd.Timestamp, interval: str, max_bars: int = MAX_CANDLESTICK_BARS
) -> pd.Timedelta:
    """The smallest readable multiple of ``interval`` that covers the range in ``max_bars``."""
    step = pd.Timedelta(milliseconds=interval_ms(interval))
    span = last - first + step
    for minutes in _BAR_MINUTES:
        size = pd.Timedelta(minutes=minutes)
        if size >= step and size % step == pd.Timedelta(0) and span / size <= max_bars:
            return size
    weeks = int(np.ceil(span / (pd.Timedelta(weeks=1) * max_bars)))
    return pd.Timedelta(weeks=weeks)


def bar_label(size: pd.Timedelta) -> str:
    """'1 min', '30 min', '4 h', '1 d' for a chart title."""
    minutes = int(size / pd.Timedelta(minutes=1))
    if minutes % 1440 == 0:
        return f"{minutes // 1440} d"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def aggregate_ohlcv(candles: pd.DataFrame, size: pd.Timedelta) -> pd.DataFrame:
    """OHLCV bars of ``size``: first open, max high, min low, last close, summed volume.

    Bins with no candle (inside a gap) are dropped rather than drawn as flat bars.
    """
    indexed = candles.set_index("open_time")[["open", "high", "low", "close", "volume"]]
    bars = indexed.resample(size, origin="epoch", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    counts = indexed["close"].resample(size, origin="epoch").count()
    return bars.loc[counts > 0].reset_index()


def close_line(candles: pd.DataFrame, interval: str, max_points: int = MAX_LINE_POINTS) -> pd.DataFrame:
    """open_time and close, thinned to ``max_points``, with a NaN row at each gap.

    The NaN breaks the line so a hole in the data is visible instead of bridged.
    """
    line = candles[["open_time", "close"]]
    if len(line) > max_points:
        line = line.iloc[evenly_spaced(len(line), max_points)]
    step = pd.Timedelta(milliseconds=interval_ms(interval))
    stride = step * max(1, int(np.ceil(len(candles) / max_points)))
    jumps = line["open_time"].diff() > stride
    breaks = pd.DataFrame({"open_time": line.loc[jumps, "open_time"] - step, "close": np.nan})
    return pd.concat([line, breaks]).sort_values("open_time", kind="stable").reset_index(drop=True)


def evenly_spaced(total: int, count: int) -> np.ndarray:
    """``count`` positions spread evenly over ``range(total)``, always keeping the last."""
    if total <= count:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, count).round().astype("int64"))


def sample_positions(total: int, count: int, seed: int = 0) -> np.ndarray:
    """A reproducible uniform sample of ``count`` positions, in order."""
    if total <= count:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
