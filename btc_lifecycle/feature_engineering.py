"""Read access to the feature store: typed candles, counts and frames for modelling.

Defaults come from the project's settings (``FEATURE_DB_PATH``, the config's table, symbol and
interval); every argument can be given to read another store or series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from btc_lifecycle.adapters.feature_store import checked_identifier, range_clause, read_candles
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


def _resolve(db_path: str | Path | None, table: str | None, symbol: str | None, interval: str | None) -> tuple[Path, CandleSeries]:
    if db_path is None or table is None or symbol is None or interval is None:
        settings = load_settings()
        db_path = db_path or settings.feature_db_path
        series = settings.ingest.series
        table, symbol, interval = table or series.table, symbol or series.symbol, interval or series.interval
    return Path(db_path), CandleSeries(table=table, symbol=symbol, interval=interval)


def _connect(db_path: Path) -> duckdb.DuckDBPyConnection:
    if not db_path.exists():
        raise FileNotFoundError(f"{db_path}: no feature store yet; run `make ingest` first")
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
        rows = conn.execute(
            "SELECT symbol, interval, open_time, open, high, low, close, volume, close_time, "
            f"price_increase_label FROM {checked_identifier(series.labeled_table)} "
            f"WHERE symbol = ? AND interval = ?{clause}",
            [series.symbol, series.interval, *params],
        ).fetchall()
    utc = timezone.utc
    return [
        BitcoinCandle(s, i, ot.replace(tzinfo=utc), o, h, lo, c, v, ct.replace(tzinfo=utc), label)
        for s, i, ot, o, h, lo, c, v, ct, label in rows
    ]


def count_candles(
    db_path: str | Path | None = None,
    table: str | None = None,
    symbol: str | None = None,
    interval: str | None = None,
) -> int:
    """How many labeled candles the store holds for the series, without loading them."""
    path, series = _resolve(db_path, table, symbol, interval)
    with _connect(path) as conn:
        return int(
            conn.execute(
                f"SELECT count(*) FROM {checked_identifier(series.labeled_table)} WHERE symbol = ? AND interval = ?",
                [series.symbol, series.interval],
            ).fetchone()[0]
        )


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

