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
