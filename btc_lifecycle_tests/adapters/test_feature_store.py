"""The DuckDB feature store: idempotent upserts, atomic writes, typed reads."""

from __future__ import annotations

from datetime import UTC

import duckdb
import pandas as pd
import pytest

from btc_lifecycle.adapters.feature_store import (
    count_rows,
    last_open_time,
    read_candles,
    replace_labeled_candles,
    upsert_candles,
)
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.feature_engineering import BitcoinCandle, count_candles, load_candle_frame, load_candles_from_duckdb

SERIES = CandleSeries(table="candles", symbol="BTC/USDT", interval="1m")


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store.duckdb"
    with duckdb.connect(str(path)) as conn:
        yield path, conn


def test_upsert_counts_only_new_candles_and_never_duplicates(store, generated_candles):
    _, conn = store
    assert upsert_candles(conn, SERIES, generated_candles.iloc[:1000]) == 1000
    assert upsert_candles(conn, SERIES, generated_candles.iloc[500:1500]) == 500
    assert upsert_candles(conn, SERIES, generated_candles.iloc[:1500]) == 0
    assert count_rows(conn, "candles", SERIES.symbol, SERIES.interval) == 1500


def test_upsert_replaces_a_revised_candle(store, generated_candles):
    _, conn = store
    upsert_candles(conn, SERIES, generated_candles.iloc[:10])
    revised = generated_candles.iloc[5:6].copy()
    revised["volume"] = 123.0
    upsert_candles(conn, SERIES, revised)
    assert read_candles(conn, "candles", SERIES.symbol, SERIES.interval)["volume"].iloc[5] == 123.0


def test_a_failed_upsert_leaves_the_table_as_it_was(store, generated_candles):
    _, conn = store
    upsert_candles(conn, SERIES, generated_candles.iloc[:100])
    broken = generated_candles.iloc[100:200].copy()
    broken.loc[broken.index[50], "open"] = None  # NOT NULL violation halfway through the batch
    with pytest.raises(duckdb.ConstraintException):
        upsert_candles(conn, SERIES, broken)
    assert count_rows(conn, "candles", SERIES.symbol, SERIES.interval) == 100


def test_reads_return_utc_times_in_order_and_the_last_stored_candle(store, generated_candles):
    _, conn = store
    upsert_candles(conn, SERIES, generated_candles.iloc[::-1])
    frame = read_candles(conn, "candles", SERIES.symbol, SERIES.interval)
    pd.testing.assert_series_equal(frame["open_time"], generated_candles["open_time"], check_dtype=False)
    assert last_open_time(conn, SERIES) == generated_candles["open_time"].iloc[-1]


def test_series_are_kept_apart_by_symbol_and_interval(store, generated_candles):
    _, conn = store
    upsert_candles(conn, SERIES, generated_candles.iloc[:10])
    upsert_candles(conn, CandleSeries("candles", "ETH/USDT", "1m"), generated_candles.iloc[:5])
    assert count_rows(conn, "candles", "BTC/USDT", "1m") == 10
    assert count_rows(conn, "candles", "ETH/USDT", "1m") == 5


def test_a_table_name_with_sql_in_it_is_refused(store, generated_candles):
    _, conn = store
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        upsert_candles(conn, CandleSeries('candles"; DROP TABLE x; --', "BTC/USDT", "1m"), generated_candles)


def test_typed_candles_carry_labels_and_utc_times(store, generated_candles):
    path, conn = store
    replace_labeled_candles(conn, SERIES, label_candles(generated_candles.iloc[:50], "1m"))
    conn.close()
    candles = load_candles_from_duckdb(path, "candles", "BTC/USDT", "1m", limit=3)
    assert all(isinstance(c, BitcoinCandle) for c in candles)
    assert candles[0].price_increase_label is None
    assert candles[1].open_time.tzinfo == UTC
    assert candles[1].price_increase_label == int(generated_candles.close[1] > generated_candles.close[0])
    assert count_candles(path, "candles", "BTC/USDT", "1m") == 50


def test_time_range_and_limit_select_candles(store, generated_candles):
    path, conn = store
    replace_labeled_candles(conn, SERIES, label_candles(generated_candles, "1m"))
    conn.close()
    start, end = generated_candles.open_time[100], generated_candles.open_time[200]
    candles = load_candles_from_duckdb(
        path, "candles", "BTC/USDT", "1m", start=start.to_pydatetime(), end=end.to_pydatetime()
    )
    assert len(candles) == 100 and candles[0].open_time == start.to_pydatetime()
    frame = load_candle_frame(path, "candles", "BTC/USDT", "1m", start=start, limit=7)
    assert len(frame) == 7 and "price_increase_label" in frame


def test_reading_a_store_that_does_not_exist_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make ingest"):
        count_candles(tmp_path / "none.duckdb", "candles", "BTC/USDT", "1m")
