"""Candles the project makes itself: for tests and benchmarks on a machine without real data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candles import complete_candle_frame, interval_ms


def synthetic_candles(
    count: int,
    start: str | pd.Timestamp = "2024-01-01T00:00:00Z",
    interval: str = "1m",
    seed: int = 7,
    start_price: float = 30_000.0,
    volatility: float = 0.0008,
    tick: float = 0.01,
    tie_share: float = 0.025,
) -> pd.DataFrame:
    """A random-walk candle frame with valid OHLC; about ``tie_share`` of closes repeat the last."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, volatility, count)
    returns[rng.random(count) < tie_share] = 0.0  # real minutes often close where they opened
    close = np.round(start_price * np.exp(np.cumsum(returns)) / tick) * tick
    open_ = np.concatenate([[start_price], close[:-1]])
    spread = np.abs(rng.normal(0.0, volatility / 2, count)) * close
    high = np.maximum(open_, close) + np.round(spread, 2)
    low = np.minimum(open_, close) - np.round(spread * rng.uniform(0.2, 1.0, count), 2)
    volume = np.round(rng.gamma(2.0, 1.5, count), 6)
    open_time = pd.Timestamp(start).tz_convert("UTC") if pd.Timestamp(start).tzinfo else pd.Timestamp(start, tz="UTC")
    times = open_time + pd.to_timedelta(np.arange(count) * interval_ms(interval), unit="ms")
    frame = pd.DataFrame(
        {"open_time": times, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )
    return complete_candle_frame(frame, interval)


def without_minutes(candles: pd.DataFrame, positions: list[int] | range) -> pd.DataFrame:
    """The frame with the candles at ``positions`` removed: a series with gaps."""
    return candles.drop(index=candles.index[list(positions)]).reset_index(drop=True)


def thin_venue_candles(
    candles: pd.DataFrame,
    no_trade_share: float = 0.62,
    seed: int = 7,
    interval: str = "1m",
    price_decimals: int = 2,
) -> pd.DataFrame:
    """The candles a thin venue would print beside a liquid one: most minutes have no trade.

    Trades arrive in each minute as a Poisson process whose rate is proportional to the liquid
    minute's volume, scaled so that about ``no_trade_share`` of minutes get none; a minute without
    a trade has no candle. Each remaining candle is rebuilt from its own trades: they happen at
    uniform times on a Brownian bridge from the liquid open to the liquid close (kept inside its
    high-low range, rounded to ``price_decimals``), so open, high, low and close are the thin
    venue's own, and its volume is the sum of exponential trade sizes.
    """
    if not 0 < no_trade_share < 1:
        raise ValueError(f"no_trade_share must be between 0 and 1, got {no_trade_share}")
    rng = np.random.default_rng(seed)
    volume = candles["volume"].to_numpy(dtype="float64")
    weight = volume / volume.mean() if volume.mean() > 0 else np.ones(len(volume))
    trades = rng.poisson(_trade_rate(weight, no_trade_share) * weight)
    traded = np.flatnonzero(trades > 0)
    counts = trades[traded]
    minute = np.repeat(np.arange(len(traded)), counts)  # which traded minute each trade is in

    # Trade times inside the minute, sorted within each minute (lexsort: minute, then time).
    when = rng.random(counts.sum())
    order = np.lexsort((when, minute))
    when = when[order]
    first = np.cumsum(counts) - counts  # index of each minute's first trade
    last = first + counts - 1
    # A standard Brownian bridge at those times: W(t) - t W(1), W built from independent steps.
    previous = np.concatenate([[0.0], when[:-1]])
    previous[first] = 0.0
    steps = np.sqrt(when - previous) * rng.standard_normal(len(when))
    walk = np.cumsum(steps)
    walk -= np.repeat(walk[first] - steps[first], counts)  # restart the walk in every minute
    at_end = walk[last] + np.sqrt(1.0 - when[last]) * rng.standard_normal(len(traded))
    bridge = walk - when * np.repeat(at_end, counts)

    liquid = candles.iloc[traded]
    o, h, l, c = (
        np.repeat(liquid[name].to_numpy(dtype="float64"), counts) for name in ("open", "high", "low", "close")
    )
    # A bridge's expected range is about 1.25: its swings roughly span the liquid range. Prices
    # are rounded to the venue's tick; clipping again keeps them inside bounds that are not.
    price = np.clip(o + when * (c - o) + bridge * (h - l) / 1.25, l, h)
    price = np.clip(np.round(price, price_decimals), l, h)
    size = rng.exponential(np.median(volume[volume > 0]) / 4 if (volume > 0).any() else 1.0, len(when))
    frame = pd.DataFrame(
        {
            "open_time": liquid["open_time"].reset_index(drop=True),
            "open": price[first],
            "high": np.maximum.reduceat(price, first),
            "low": np.minimum.reduceat(price, first),
            "close": price[last],
            "volume": np.round(np.add.reduceat(size, first), 8),
        }
    )
    return complete_candle_frame(frame, interval)


def _trade_rate(weight: np.ndarray, no_trade_share: float) -> float:
    """The scale s with mean(exp(-s * weight)) = no_trade_share, by bisection on log s."""
    low, high = -12.0, 12.0
    for _ in range(100):
        middle = (low + high) / 2
        if np.mean(np.exp(-np.exp(middle) * weight)) > no_trade_share:
            low = middle
        else:
            high = middle
    return float(np.exp((low + high) / 2))
