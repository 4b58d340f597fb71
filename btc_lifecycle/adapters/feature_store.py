"""The feature store: candle tables keyed by symbol, interval and open time, and their derivatives.

Functions take an open connection (``resources.FeatureStoreResource``'s, or a plain DuckDB one) so
the caller owns its lifetime. Identifiers are validated; values are always bound parameters.

Either backend serves them (``adapters.store_backends``): a read runs its SQL on the connection,
which answers DuckDB's query API on both; a write hands its SQL to ``store_of(conn).rewrite``, which
runs it as one transaction on the DuckDB file or on the days it touches of the Parquet store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from btc_lifecycle.adapters.parquet_store import days_between
from btc_lifecycle.adapters.sql_text import checked_identifier
from btc_lifecycle.adapters.store_backends import FeatureStore, store_of
from btc_lifecycle.domain.candles import CANDLE_COLUMNS, CandleSeries, interval_ms
from btc_lifecycle.domain.labels import LABEL_COLUMN

_CANDLE_SCHEMA = """
    symbol VARCHAR NOT NULL,
    interval VARCHAR NOT NULL,
    open_time TIMESTAMP NOT NULL,
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    volume DOUBLE NOT NULL,
    close_time TIMESTAMP NOT NULL,
    quote_volume DOUBLE,
    trades DOUBLE,
    taker_buy_base_volume DOUBLE,
    taker_buy_quote_volume DOUBLE
"""


_CANDLE_VALUES = ", ".join(CANDLE_COLUMNS)
_VALUE_COLUMNS = tuple(name for name in CANDLE_COLUMNS if name != "open_time")
_REVISED_VALUES = ", ".join(f"{name} = i.{name}" for name in _VALUE_COLUMNS)
_VALUES_DIFFER = " OR ".join(f"t.{name} IS DISTINCT FROM i.{name}" for name in _VALUE_COLUMNS)


def ensure_candle_table(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {checked_identifier(table)} ({_CANDLE_SCHEMA}, "
        f"PRIMARY KEY (symbol, interval, open_time))"
    )


def ensure_labeled_table(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {checked_identifier(table)} ({_CANDLE_SCHEMA}, "
        f"{LABEL_COLUMN} TINYINT, PRIMARY KEY (symbol, interval, open_time))"
    )


def _naive_utc_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Times stored as naive UTC TIMESTAMP, so no session time zone can shift them."""
    frame = frame.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def _utc_columns(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if pd.api.types.is_datetime64_dtype(frame[column]):
            frame[column] = frame[column].astype("datetime64[ns]").dt.tz_localize("UTC")
    return frame


def _arrow_candles(candles: pd.DataFrame) -> pa.Table:
    """The candle columns as Arrow, times naive UTC, NaN as NULL; no copy of the float columns.

    Symbol and interval are not columns here: the SQL binds them, rather than scanning a million
    repeated strings. Arrow is what DuckDB scans fastest (about a third faster than pandas here).
    """
    columns = {}
    for name in CANDLE_COLUMNS:
        column = candles[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            column = column.dt.tz_convert(None)
        columns[name] = pa.Array.from_pandas(column)
    return pa.table(columns)


def _to_store_frame(series: CandleSeries, candles: pd.DataFrame) -> pd.DataFrame:
    frame = _naive_utc_columns(candles[list(CANDLE_COLUMNS)])
    frame.insert(0, "interval", series.interval)
    frame.insert(0, "symbol", series.symbol)
    return frame


def _from_store_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return _utc_columns(frame).drop(columns=["symbol", "interval"])


@contextmanager
def _registered(conn: duckdb.DuckDBPyConnection, view: str, rows) -> Iterator[None]:
    """``rows`` visible as ``view`` inside the block; a write that fails leaves it to its
    backend: a rolled-back transaction drops it, as a discarded scratch database does."""
    # DuckDB (un)registers only once the last result of execute() is read to its end.
    conn.complete()
    conn.register(view, rows)
    yield
    conn.complete()
    conn.unregister(view)


def upsert_candles(conn: duckdb.DuckDBPyConnection | FeatureStore, series: CandleSeries, candles: pd.DataFrame) -> int:
    """Insert or replace ``candles`` in one write; returns how many were new.

    Re-ingesting an overlapping page replaces the stored candle instead of duplicating it; any
    failure rolls back, leaving the table as it was.
    """
    times = candles["open_time"]
    days = days_between(times.min(), times.max() + pd.Timedelta(microseconds=1)) if len(times) else []
    return store_of(conn).rewrite(series.table, days, lambda db: _upsert_candles(db, series, candles))


def _upsert_candles(db: duckdb.DuckDBPyConnection, series: CandleSeries, candles: pd.DataFrame) -> int:
    table = checked_identifier(series.table)
    ensure_candle_table(db, series.table)
    incoming = _arrow_candles(candles)
    key = [series.symbol, series.interval]
    with _registered(db, "incoming_candles", incoming):
        stored = db.execute(
            f"SELECT count(*) FROM incoming_candles i SEMI JOIN {table} t "
            f"ON t.symbol = ? AND t.interval = ? AND t.open_time = i.open_time",
            key,
        ).fetchone()[0]
        # A plain INSERT when nothing overlaps (a backfill); otherwise rewrite only the stored
        # candles whose values changed and insert the rest. INSERT OR REPLACE rewrites every row.
        if stored:
            db.execute(
                f"UPDATE {table} t SET {_REVISED_VALUES} FROM incoming_candles i "
                f"WHERE t.symbol = ? AND t.interval = ? AND t.open_time = i.open_time "
                f"AND ({_VALUES_DIFFER})",
                key,
            )
        if stored < incoming.num_rows:
            db.execute(
                f"INSERT INTO {table} SELECT ?, ?, {_CANDLE_VALUES} FROM incoming_candles i"
                + (
                    f" ANTI JOIN {table} t ON t.symbol = ? AND t.interval = ? AND t.open_time = i.open_time"
                    if stored
                    else ""
                ),
                key + (key if stored else []),
            )
    return incoming.num_rows - int(stored)


# The series' rows of a table aliased ``t`` in [start, end): symbol, interval, start, end bound.
_IN_WINDOW = "t.symbol = ? AND t.interval = ? AND t.open_time >= ? AND t.open_time < ?"


@dataclass(frozen=True)
class WindowWrite:
    """What replacing one time window of a table did."""

    rows: int  # rows the window holds now
    new: int  # of them, keys the window did not hold before
    removed: int  # keys the window held that the replacement does not


def _check_within(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, what: str) -> None:
    times = frame["open_time"]
    if len(times) and (times.min() < start or times.max() >= end):
        raise ValueError(
            f"{what}: rows from {times.min().isoformat()} to {times.max().isoformat()} fall outside "
            f"the window [{start.isoformat()}, {end.isoformat()}) being replaced"
        )


def _replace_window(
    db: duckdb.DuckDBPyConnection, table: str, rows, series: CandleSeries, start, end, insert_sql: str
) -> WindowWrite:
    """Count, delete the series' rows in [start, end), insert ``rows`` (within one write)."""
    name = checked_identifier(table)
    key = [series.symbol, series.interval]
    window = [_naive_utc(start), _naive_utc(end)]
    with _registered(db, "window_rows", rows):
        before, kept = db.execute(
            f"SELECT (SELECT count(*) FROM {name} t WHERE {_IN_WINDOW}), "
            f"(SELECT count(*) FROM window_rows i SEMI JOIN {name} t ON {_IN_WINDOW} AND t.open_time = i.open_time)",
            [*key, *window, *key, *window],
        ).fetchone()
        db.execute(f"DELETE FROM {name} t WHERE {_IN_WINDOW}", [*key, *window])
        db.execute(insert_sql.format(table=name), key)
        count = db.execute("SELECT count(*) FROM window_rows").fetchone()[0]
    return WindowWrite(rows=int(count), new=int(count) - int(kept), removed=int(before) - int(kept))


def replace_candles_between(
    conn: duckdb.DuckDBPyConnection | FeatureStore, series: CandleSeries, candles: pd.DataFrame, start, end
) -> WindowWrite:
    """Make the stored candles in [start, end) exactly ``candles``, in one write.

    Re-materializing a day replaces that day and nothing else: no duplicate, no candle of another
    day touched; a failure rolls back to the table as it was.
    """
    _check_within(candles, start, end, f"candles for {series.table}")
    insert = f"INSERT INTO {{table}} SELECT ?, ?, {_CANDLE_VALUES} FROM window_rows"

    def write(db: duckdb.DuckDBPyConnection) -> WindowWrite:
        ensure_candle_table(db, series.table)
        return _replace_window(db, series.table, _arrow_candles(candles), series, start, end, insert)

    return store_of(conn).rewrite(series.table, days_between(start, end), write)


def replace_labeled_between(
    conn: duckdb.DuckDBPyConnection | FeatureStore, series: CandleSeries, labeled: pd.DataFrame, start, end
) -> WindowWrite:
    """Make the labeled candles in [start, end) exactly ``labeled``, in one write."""
    _check_within(labeled, start, end, f"labeled candles for {series.labeled_table}")
    frame = _naive_utc_columns(labeled[list(CANDLE_COLUMNS)])
    frame[LABEL_COLUMN] = labeled[LABEL_COLUMN].astype("Int8").to_numpy()
    columns = ", ".join([*CANDLE_COLUMNS, LABEL_COLUMN])
    insert = f"INSERT INTO {{table}} SELECT ?, ?, {columns} FROM window_rows"

    def write(db: duckdb.DuckDBPyConnection) -> WindowWrite:
        ensure_labeled_table(db, series.labeled_table)
        return _replace_window(db, series.labeled_table, frame, series, start, end, insert)

    return store_of(conn).rewrite(series.labeled_table, days_between(start, end), write)


def replace_features_between(
    conn: duckdb.DuckDBPyConnection | FeatureStore, series: CandleSeries, features: pd.DataFrame, start, end
) -> tuple[WindowWrite, bool]:
    """Make the feature rows in [start, end) exactly ``features``, in one write.

    Returns the write and whether the table was rebuilt: rows of another column layout (older
    code's features) cannot share a table with these, so it then holds this window alone and the
    other days must be materialized again (derived rows; the candles are untouched).
    """
    _check_within(features, start, end, f"features for {series.features_table}")
    frame = _naive_utc_columns(features)
    frame.insert(0, "interval", series.interval)
    frame.insert(0, "symbol", series.symbol)
    columns = ", ".join(f'"{column}"' for column in frame.columns[2:])
    insert = f"INSERT INTO {{table}} SELECT ?, ?, {columns} FROM window_rows"
    return store_of(conn).rewrite(
        series.features_table,
        days_between(start, end),
        lambda db: _replace_features(db, series, frame, start, end, insert),
    )


def _replace_features(
    db: duckdb.DuckDBPyConnection, series: CandleSeries, frame: pd.DataFrame, start, end, insert_sql: str
) -> tuple[WindowWrite, bool]:
    name = checked_identifier(series.features_table)
    exists = table_exists(db, series.features_table)
    rebuilt = exists and [row[0] for row in db.execute(f"DESCRIBE {name}").fetchall()] != list(frame.columns)
    if rebuilt or not exists:
        with _registered(db, "window_rows", frame):
            db.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM window_rows")
        return WindowWrite(rows=len(frame), new=len(frame), removed=0), rebuilt
    return _replace_window(db, series.features_table, frame, series, start, end, insert_sql), False


_ARCHIVES_SCHEMA = (
    "symbol VARCHAR NOT NULL, interval VARCHAR NOT NULL, open_time TIMESTAMP NOT NULL, "
    "archive VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, PRIMARY KEY (symbol, interval, open_time)"
)


def replace_archive_sources_between(
    conn: duckdb.DuckDBPyConnection | FeatureStore, series: CandleSeries, sources: pd.DataFrame, start, end
) -> WindowWrite:
    """Make the archive records of the days in [start, end) exactly ``sources`` (one row per
    archived day: ``open_time`` its midnight, ``archive``, ``sha256``); days that came from the
    exchange have none."""
    _check_within(sources, start, end, f"archive records for {series.archives_table}")
    rows = _naive_utc_columns(sources[["open_time", "archive", "sha256"]])
    insert = "INSERT INTO {table} SELECT ?, ?, open_time, archive, sha256 FROM window_rows"

    def write(db: duckdb.DuckDBPyConnection) -> WindowWrite:
        db.execute(f"CREATE TABLE IF NOT EXISTS {checked_identifier(series.archives_table)} ({_ARCHIVES_SCHEMA})")
        return _replace_window(db, series.archives_table, rows, series, start, end, insert)

    return store_of(conn).rewrite(series.archives_table, days_between(start, end), write)


def archive_sources_between(conn: duckdb.DuckDBPyConnection, series: CandleSeries, start, end) -> pd.DataFrame:
    """The stored archive records (``open_time``, ``archive``, ``sha256``) of the days in [start, end)."""
    if not table_exists(conn, series.archives_table):
        return pd.DataFrame(
            {
                "open_time": pd.Series(dtype="datetime64[ns, UTC]"),
                "archive": pd.Series(dtype="object"),
                "sha256": pd.Series(dtype="object"),
            }
        )
    frame = read_table(
        conn,
        series.archives_table,
        "symbol = ? AND interval = ? AND open_time >= ? AND open_time < ?",
        [series.symbol, series.interval, _naive_utc(start), _naive_utc(end)],
    )
    return frame[["open_time", "archive", "sha256"]].sort_values("open_time").reset_index(drop=True)


def last_open_time(conn: duckdb.DuckDBPyConnection, series: CandleSeries) -> pd.Timestamp | None:
    ensure_candle_table(conn, series.table)
    value = conn.execute(
        f"SELECT max(open_time) FROM {checked_identifier(series.table)} WHERE symbol = ? AND interval = ?",
        [series.symbol, series.interval],
    ).fetchone()[0]
    return None if value is None else pd.Timestamp(value, tz="UTC")


def count_rows(conn: duckdb.DuckDBPyConnection, table: str, symbol: str, interval: str) -> int:
    return int(
        conn.execute(
            f"SELECT count(*) FROM {checked_identifier(table)} WHERE symbol = ? AND interval = ?",
            [symbol, interval],
        ).fetchone()[0]
    )


def range_clause(start: pd.Timestamp | None, end: pd.Timestamp | None, limit: int | None) -> tuple[str, list[object]]:
    """SQL after the series filter: [start, end), time order, at most ``limit`` rows."""
    clause, params = "", []
    if start is not None:
        clause += " AND open_time >= ?"
        params.append(_naive_utc(start))
    if end is not None:
        clause += " AND open_time < ?"
        params.append(_naive_utc(end))
    clause += " ORDER BY open_time"
    if limit is not None:
        clause += " LIMIT ?"
        params.append(int(limit))
    return clause, params


def read_candles(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    symbol: str,
    interval: str,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Candles of one series in time order, optionally within [start, end) and at most ``limit``."""
    clause, params = range_clause(start, end, limit)
    sql = f"SELECT * FROM {checked_identifier(table)} WHERE symbol = ? AND interval = ?{clause}"
    return _from_store_frame(conn.execute(sql, [symbol, interval, *params]).fetchdf())


def replace_labeled_candles(
    conn: duckdb.DuckDBPyConnection | FeatureStore, series: CandleSeries, labeled: pd.DataFrame
) -> None:
    """Swap the labeled series for ``labeled`` atomically."""
    frame = _to_store_frame(series, labeled)
    frame[LABEL_COLUMN] = labeled[LABEL_COLUMN].astype("Int8").to_numpy()

    def write(db: duckdb.DuckDBPyConnection) -> None:
        table = checked_identifier(series.labeled_table)
        ensure_labeled_table(db, series.labeled_table)
        with _registered(db, "labeled_candles", frame):
            db.execute(f"DELETE FROM {table} WHERE symbol = ? AND interval = ?", [series.symbol, series.interval])
            db.execute(f"INSERT INTO {table} SELECT * FROM labeled_candles")

    store_of(conn).rewrite(series.labeled_table, None, write)


def _naive_utc(moment: pd.Timestamp) -> pd.Timestamp:
    moment = pd.Timestamp(moment)
    return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment


def table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()[0]
    )


def replace_table(conn: duckdb.DuckDBPyConnection | FeatureStore, table: str, frame: pd.DataFrame) -> None:
    """Swap the whole table for ``frame`` in one write (derived tables: features)."""
    rows = _naive_utc_columns(frame)

    def write(db: duckdb.DuckDBPyConnection) -> None:
        with _registered(db, "replacement_rows", rows):
            db.execute(f"CREATE OR REPLACE TABLE {checked_identifier(table)} AS SELECT * FROM replacement_rows")

    store_of(conn).rewrite(table, None, write)


def read_table(
    conn: duckdb.DuckDBPyConnection, table: str, where: str = "", params: list | None = None
) -> pd.DataFrame:
    """All rows of ``table`` (optionally filtered by a parameterized ``where``), times in UTC."""
    sql = f"SELECT * FROM {checked_identifier(table)}" + (f" WHERE {where}" if where else "")
    return _utc_columns(conn.execute(sql, params or []).fetchdf())


def read_features(
    conn: duckdb.DuckDBPyConnection, series: CandleSeries, start: pd.Timestamp | None = None
) -> pd.DataFrame:
    """The series' feature rows in time order (from ``start`` on, if given)."""
    clause, params = range_clause(start, None, None)
    frame = read_table(
        conn, series.features_table, f"symbol = ? AND interval = ?{clause}", [series.symbol, series.interval, *params]
    )
    return frame.drop(columns=["symbol", "interval"]).reset_index(drop=True)


def read_predictions(conn: duckdb.DuckDBPyConnection, series: CandleSeries) -> pd.DataFrame | None:
    """The series' stored predictions, or None before the predictions asset first ran."""
    table = series.predictions_table
    return read_table(conn, table) if table_exists(conn, table) else None


def stored_summary(
    conn: duckdb.DuckDBPyConnection, table: str, series: CandleSeries, gaps_listed: int = 50
) -> dict[str, object]:
    """Rows, range and gaps of a stored series, counted by DuckDB: the same numbers as
    ``domain.ingestion.store_summary`` on the series' open times, without loading the rows."""
    name = checked_identifier(table)
    step_ms = interval_ms(series.interval)
    key = [series.symbol, series.interval]
    total, first, last = conn.execute(
        f"SELECT count(*), min(open_time), max(open_time) FROM {name} WHERE symbol = ? AND interval = ?", key
    ).fetchone()
    gaps = conn.execute(
        f"""SELECT previous, open_time, (epoch_ms(open_time) - epoch_ms(previous)) // ? - 1 AS missing
        FROM (SELECT open_time, lag(open_time) OVER (ORDER BY open_time) AS previous
              FROM {name} WHERE symbol = ? AND interval = ?)
        WHERE epoch_ms(open_time) - epoch_ms(previous) > ? ORDER BY open_time""",
        [step_ms, *key, step_ms],
    ).fetchall()

    def iso(moment) -> str | None:
        return None if moment is None else pd.Timestamp(moment, tz="UTC").isoformat()

    return {
        "total_rows": int(total),
        "first_candle": iso(first),
        "last_candle": iso(last),
        "missing_minutes": int(sum(row[2] for row in gaps)),
        "gaps": [
            {"after": iso(after), "before": iso(before), "missing": int(missing)}
            for after, before, missing in gaps[:gaps_listed]
        ],
    }


def stored_label_summary(conn: duckdb.DuckDBPyConnection, series: CandleSeries) -> dict[str, float | int]:
    """``domain.ingestion.label_summary`` of the stored labeled series, counted by DuckDB."""
    labeled, unlabeled, up, ties = conn.execute(
        f"""SELECT count({LABEL_COLUMN}), count(*) - count({LABEL_COLUMN}),
               count(*) FILTER (WHERE {LABEL_COLUMN} = 1),
               count(*) FILTER (WHERE {LABEL_COLUMN} IS NOT NULL AND close = previous_close)
        FROM (SELECT {LABEL_COLUMN}, close, lag(close) OVER (ORDER BY open_time) AS previous_close
              FROM {checked_identifier(series.labeled_table)} WHERE symbol = ? AND interval = ?)""",
        [series.symbol, series.interval],
    ).fetchone()

    def share(n: int) -> float:
        return round(n / labeled, 6) if labeled else 0.0

    return {
        "labeled_rows": int(labeled),
        "unlabeled_rows": int(unlabeled),
        "up_share": share(up),
        "tie_share": share(ties),
    }
