"""Candle frames: the one shape every stage passes around, and pure transforms over it.

A candle frame is a pandas DataFrame sorted by ``open_time`` with the columns of
``CANDLE_COLUMNS``. Times are tz-aware UTC; the Binance extras are NaN where a source lacks them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV_COLUMNS = (*PRICE_COLUMNS, "volume")
EXTRA_COLUMNS = ("quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume")
CANDLE_COLUMNS = ("open_time", *OHLCV_COLUMNS, "close_time", *EXTRA_COLUMNS)

# A market as ccxt names it: base and quote asset, in capitals, e.g. BTC/USDT.
SYMBOL_PATTERN = r"^[A-Z0-9]{2,12}/[A-Z0-9]{2,12}$"
INTERVAL_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


@dataclass(frozen=True)
class CandleSeries:
    """Which candles: the store table and the symbol and interval inside it."""

    table: str
    symbol: str
    interval: str

    @property
    def labeled_table(self) -> str:
        return f"{self.table}_labeled"

    @property
    def features_table(self) -> str:
        return f"{self.table}_features"

    @property
    def predictions_table(self) -> str:
        return f"{self.table}_predictions"

    @property
    def archives_table(self) -> str:
        """Which published archive (and checksum) each archived day of candles came from."""
        return f"{self.table}_archives"


@dataclass(frozen=True)
class Market:
    """One market the project ingests: a ccxt exchange id, a symbol on it, a candle interval, and
    the store table its candles go to."""

    exchange: str
    symbol: str
    interval: str
    table: str

    @property
    def slug(self) -> str:
        """The market as one lowercase name (``binanceus_btc_usd_1m``): a further market's asset
        key prefix, asset group and table suffix."""
        return market_slug(self.exchange, self.symbol, self.interval)

    @property
    def series(self) -> CandleSeries:
        return CandleSeries(table=self.table, symbol=self.symbol, interval=self.interval)


def market_slug(exchange: str, symbol: str, interval: str) -> str:
    return "_".join((exchange, *symbol.split("/"), interval)).lower()


class CandleDataError(ValueError):
    """Candles that break an invariant (prices, order, duplicates); the message says which."""


def interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"interval {interval!r} is not supported; use one of {', '.join(INTERVAL_MS)}") from None


def empty_candle_frame() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype="float64") for name in CANDLE_COLUMNS})
    frame["open_time"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["close_time"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def candle_frame_from_rows(rows: list[list], interval: str) -> pd.DataFrame:
    """Build a candle frame from ccxt/Binance rows ``[open_ms, o, h, l, c, v, ...]``."""
    if not rows:
        return empty_candle_frame()
    width = max(len(row) for row in rows)
    try:
        # Binance's rows: 12 fields, prices as strings; NumPy parses the whole page at once.
        array = np.asarray(rows, dtype="float64")
        if array.ndim != 2 or array.shape[1] != 12:
            raise ValueError("not a 12-field page")
    except (ValueError, TypeError):  # ragged rows or None values: field by field
        array = np.full((len(rows), 12), np.nan)
        for index, row in enumerate(rows):
            array[index, : len(row)] = [np.nan if value is None else float(value) for value in row[:12]]
    frame = pd.DataFrame(
        {
            "open_time": pd.to_datetime(array[:, 0].astype("int64"), unit="ms", utc=True),
            "open": array[:, 1],
            "high": array[:, 2],
            "low": array[:, 3],
            "close": array[:, 4],
            "volume": array[:, 5],
        }
    )
    return complete_candle_frame(frame, interval, extras=array[:, 7:11] if width >= 11 else None)


def complete_candle_frame(frame: pd.DataFrame, interval: str, extras: np.ndarray | None = None) -> pd.DataFrame:
    """Add close time and the Binance extras (NaN when absent) in the canonical column order."""
    frame = frame.copy()
    frame["close_time"] = frame["open_time"] + pd.Timedelta(milliseconds=interval_ms(interval) - 1)
    for position, name in enumerate(EXTRA_COLUMNS):
        if name in frame:
            continue
        frame[name] = extras[:, position] if extras is not None else np.nan
    return frame[list(CANDLE_COLUMNS)].reset_index(drop=True)


def validate_candles(frame: pd.DataFrame, source: str) -> None:
    """Raise ``CandleDataError`` naming ``source`` and the first offending candle."""

    def fail(mask: np.ndarray, problem: str) -> None:
        if mask.any():
            first = frame["open_time"].iloc[int(np.argmax(mask))]
            raise CandleDataError(
                f"{source}: {problem} at candle {first.isoformat()} ({int(mask.sum())} candle(s) affected)"
            )

    # NumPy on the columns: this runs on every page of a back-fill.
    prices = frame[list(OHLCV_COLUMNS)].to_numpy(dtype="float64", na_value=np.nan)
    open_, high, low, close, volume = prices.T
    fail(np.isnan(prices).any(axis=1), "missing or non-numeric open/high/low/close/volume")
    fail(~np.isfinite(prices).all(axis=1), "non-finite open/high/low/close/volume")
    fail((prices[:, :4] <= 0).any(axis=1), "zero or negative price")
    fail(volume < 0, "negative volume")
    fail(high < low, "high below low")
    fail(
        (high < np.maximum(open_, close)) | (low > np.minimum(open_, close)),
        "open or close outside the high-low range",
    )


def sort_and_deduplicate(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, int]:
    """Sort by open time and drop exact repeats; conflicting repeats are an error.

    Returns the frame and how many duplicate rows were dropped. Overlapping pages from an
    exchange repeat candles; two different candles for one minute mean the data is wrong.
    """
    frame = frame.sort_values("open_time", kind="stable")
    repeated = frame["open_time"].duplicated(keep=False)
    if not repeated.any():
        return frame.reset_index(drop=True), 0
    values = frame.loc[repeated, ["open_time", *OHLCV_COLUMNS]]
    conflicting = values.drop_duplicates().duplicated("open_time", keep=False)
    if conflicting.any():
        first = values.loc[conflicting, "open_time"].iloc[0]
        raise CandleDataError(f"{source}: different candles share the open time {first.isoformat()}")
    deduplicated = frame.drop_duplicates("open_time", keep="last")
    return deduplicated.reset_index(drop=True), len(frame) - len(deduplicated)


def closed_candles(frame: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """Candles whose interval has ended by ``now``; the still-forming one is dropped."""
    return frame.loc[frame["close_time"] < now].reset_index(drop=True)


@dataclass(frozen=True)
class Gap:
    """Minutes missing between two stored candles: ``after`` and ``before`` are present."""

    after: pd.Timestamp
    before: pd.Timestamp
    missing: int


def follows_previous(open_times: pd.Series, interval: str) -> pd.Series:
    """True where the previous row is the candle one interval earlier (no gap between them):
    the one test of adjacency behind labels, returns and feature windows."""
    return open_times.diff() == pd.Timedelta(milliseconds=interval_ms(interval))


def find_gaps(open_times: pd.Series, interval: str) -> list[Gap]:
    """Every hole in a sorted series of open times, with how many candles it misses."""
    if len(open_times) < 2:
        return []
    step = pd.Timedelta(milliseconds=interval_ms(interval))
    times = pd.Series(open_times).reset_index(drop=True)
    deltas = times.diff()
    holes = deltas[deltas > step].index
    return [Gap(after=times[i - 1], before=times[i], missing=int(deltas[i] / step) - 1) for i in holes]


def missing_candle_count(open_times: pd.Series, interval: str) -> int:
    return sum(gap.missing for gap in find_gaps(open_times, interval))
