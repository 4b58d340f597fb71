"""Read access to the feature store: typed candles, counts and frames for modelling.

Defaults come from the project's settings (``FEATURE_DB_PATH``, or the Parquet folder when
``FEATURE_STORE_BACKEND=parquet``; the config's table, symbol and interval); every argument can be
given to read another store or series. ``db_path`` may name either: a folder is a Parquet store.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from btc_lifecycle.adapters.feature_store import checked_identifier, count_rows, range_clause, read_candles
from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection
from btc_lifecycle.config import load_settings
from btc_lifecycle.domain.candles import CandleSeries


@dataclass(frozen=True, slots=True)
class BitcoinCandle:
    """One closed candle and its label (None for the first candle and after a gap)."""

    symbol: str
    interval: str
    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_time: datetime
    price_increase_label: int | None


# The generated __init__ of a frozen dataclass sets each field through object.__setattr__; setting
# the slots through their descriptors builds the same object in about half the time. Only for
# rows the store already validated.
_FIELDS = (
    "symbol",
    "interval",
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "price_increase_label",
)
assert _FIELDS == tuple(field.name for field in fields(BitcoinCandle)), "keep _new_candle in step"
_allocate = object.__new__
(
    _set_symbol,
    _set_interval,
    _set_open_time,
    _set_open,
    _set_high,
    _set_low,
    _set_close,
    _set_volume,
    _set_close_time,
    _set_label,
) = (getattr(BitcoinCandle, name).__set__ for name in _FIELDS)


def _new_candle(symbol, interval, open_time, open, high, low, close, volume, close_time, label):
    candle = _allocate(BitcoinCandle)
    _set_symbol(candle, symbol)
    _set_interval(candle, interval)
    _set_open_time(candle, open_time)
    _set_open(candle, open)
    _set_high(candle, high)
    _set_low(candle, low)
    _set_close(candle, close)
    _set_volume(candle, volume)
    _set_close_time(candle, close_time)
    _set_label(candle, label)
    return candle


def _resolve(
    db_path: str | Path | None, table: str | None, symbol: str | None, interval: str | None
) -> tuple[Path, CandleSeries]:
    if db_path is None or table is None or symbol is None or interval is None:
        settings = load_settings()
        db_path = db_path or settings.feature_store_location
        series = settings.ingest.series
        table, symbol, interval = table or series.table, symbol or series.symbol, interval or series.interval
    return Path(db_path), CandleSeries(table=table, symbol=symbol, interval=interval)


def _connect(db_path: Path) -> duckdb.DuckDBPyConnection | ParquetStoreConnection:
    if not db_path.exists():
        raise FileNotFoundError(f"{db_path}: no feature store yet; run `make ingest` first")
    if db_path.is_dir():  # the Parquet store: no lock, readers never wait on a writer
        return ParquetStoreConnection(db_path)
    return duckdb.connect(str(db_path), read_only=True)


def load_candles_from_duckdb(
    db_path: str | Path | None = None,
    table: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[BitcoinCandle]:
    """Labeled candles in time order within [start, end), at most ``limit`` of them."""
    path, series = _resolve(db_path, table, symbol, interval)
    clause, params = range_clause(start, end, limit)
    with _connect(path) as conn:
        # Columns as NumPy, not a million row tuples: symbol and interval are the filter's own.
        columns = conn.execute(
            "SELECT open_time, open, high, low, close, volume, close_time, price_increase_label "
            f"FROM {checked_identifier(series.labeled_table)} WHERE symbol = ? AND interval = ?{clause}",
            [series.symbol, series.interval, *params],
        ).fetchnumpy()
    with _gc_paused():
        return list(
            map(
                _new_candle,
                repeat(series.symbol),
                repeat(series.interval),
                _utc_datetimes(columns["open_time"]),
                *(columns[name].tolist() for name in ("open", "high", "low", "close", "volume")),
                _utc_datetimes(columns["close_time"]),
                _optional_ints(columns["price_increase_label"]),
            )
        )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building a million candles otherwise triggers hundreds of collections, the late ones
    traversing every candle made so far; none of these objects can form a cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _utc_datetimes(values: np.ndarray) -> list[datetime]:
    return pd.DatetimeIndex(values).tz_localize(UTC).to_pydatetime().tolist()


def _optional_ints(values: np.ndarray) -> list[int | None]:
    """A nullable integer column (NumPy masked array) as Python ints and None."""
    ints = np.ma.getdata(values).astype(object)
    ints[np.ma.getmaskarray(values)] = None
    return ints.tolist()


def count_candles(
    db_path: str | Path | None = None,
    table: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
) -> int:
    """How many labeled candles the store holds for the series, without loading them."""
    path, series = _resolve(db_path, table, symbol, interval)
    with _connect(path) as conn:
        return count_rows(conn, series.labeled_table, series.symbol, series.interval)


def load_candle_frame(
    db_path: str | Path | None = None,
    table: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The labeled candles as a candle frame (UTC times) for modelling."""
    path, series = _resolve(db_path, table, symbol, interval)
    with _connect(path) as conn:
        return read_candles(conn, series.labeled_table, series.symbol, series.interval, start, end, limit)
