"""The DuckDB feature store: idempotent, order-free upserts (hypothesis properties), atomic writes,
typed reads, and summaries counted in DuckDB that equal the pandas ones."""

from __future__ import annotations

import itertools
from datetime import UTC

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_lifecycle.adapters.feature_store import (
    count_rows,
    last_open_time,
    read_candles,
    replace_labeled_between,
    replace_labeled_candles,
    stored_label_summary,
    stored_summary,
    upsert_candles,
)
from btc_lifecycle.domain.candles import CANDLE_COLUMNS, EXTRA_COLUMNS, CandleSeries
from btc_lifecycle.domain.ingestion import label_summary, store_summary
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.feature_engineering import BitcoinCandle, count_candles, load_candle_frame, load_candles_from_duckdb
from btc_lifecycle_tests.strategies import START, candle_frames

SERIES = CandleSeries(table="candles", symbol="BTC/USDT", interval="1m")

# Each upsert commits to a file (about 15 ms): fewer examples than the pure properties.
STORE_EXAMPLES = settings(max_examples=30)


@pytest.fixture
def store_file(tmp_path):
    """A fresh DuckDB file per test: its path and an open connection."""
    path = tmp_path / "store.duckdb"
    with duckdb.connect(str(path)) as conn:
        yield path, conn


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One DuckDB file in a tmp dir for the module; ``new_series`` gives each example its own table."""
    with duckdb.connect(str(tmp_path_factory.mktemp("store") / "store.duckdb")) as conn:
        yield conn


def test_upsert_counts_only_new_candles_and_never_duplicates(store_file, generated_candles):
    _, conn = store_file
    assert upsert_candles(conn, SERIES, generated_candles.iloc[:1000]) == 1000
    assert upsert_candles(conn, SERIES, generated_candles.iloc[500:1500]) == 500
    assert upsert_candles(conn, SERIES, generated_candles.iloc[:1500]) == 0
    assert count_rows(conn, "candles", SERIES.symbol, SERIES.interval) == 1500


def test_upsert_replaces_a_revised_candle(store_file, generated_candles):
    _, conn = store_file
    upsert_candles(conn, SERIES, generated_candles.iloc[:10])
    revised = generated_candles.iloc[5:6].copy()
    revised["volume"] = 123.0
    upsert_candles(conn, SERIES, revised)
    assert read_candles(conn, "candles", SERIES.symbol, SERIES.interval)["volume"].iloc[5] == 123.0


def test_a_failed_upsert_leaves_the_table_as_it_was(store_file, generated_candles):
    _, conn = store_file
    upsert_candles(conn, SERIES, generated_candles.iloc[:100])
    broken = generated_candles.iloc[100:200].copy()
    broken.loc[broken.index[50], "open"] = None  # NOT NULL violation halfway through the batch
    with pytest.raises(duckdb.ConstraintException):
        upsert_candles(conn, SERIES, broken)
    assert count_rows(conn, "candles", SERIES.symbol, SERIES.interval) == 100


def test_reads_return_utc_times_in_order_and_the_last_stored_candle(store_file, generated_candles):
    _, conn = store_file
    upsert_candles(conn, SERIES, generated_candles.iloc[::-1])
    frame = read_candles(conn, "candles", SERIES.symbol, SERIES.interval)
    pd.testing.assert_series_equal(frame["open_time"], generated_candles["open_time"], check_dtype=False)
    assert last_open_time(conn, SERIES) == generated_candles["open_time"].iloc[-1]


def test_series_are_kept_apart_by_symbol_and_interval(store_file, generated_candles):
    _, conn = store_file
    upsert_candles(conn, SERIES, generated_candles.iloc[:10])
    upsert_candles(conn, CandleSeries("candles", "ETH/USDT", "1m"), generated_candles.iloc[:5])
    assert count_rows(conn, "candles", "BTC/USDT", "1m") == 10
    assert count_rows(conn, "candles", "ETH/USDT", "1m") == 5


def test_a_table_name_with_sql_in_it_is_refused(store_file, generated_candles):
    _, conn = store_file
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        upsert_candles(conn, CandleSeries('candles"; DROP TABLE x; --', "BTC/USDT", "1m"), generated_candles)


def test_typed_candles_carry_labels_and_utc_times(store_file, generated_candles):
    path, conn = store_file
    replace_labeled_candles(conn, SERIES, label_candles(generated_candles.iloc[:50], "1m"))
    conn.close()
    candles = load_candles_from_duckdb(path, "candles", "BTC/USDT", "1m", limit=3)
    assert all(isinstance(c, BitcoinCandle) for c in candles)
    assert candles[0].price_increase_label is None
    assert candles[1].open_time.tzinfo == UTC
    assert candles[1].price_increase_label == int(generated_candles.close[1] > generated_candles.close[0])
    assert count_candles(path, "candles", "BTC/USDT", "1m") == 50


def test_time_range_and_limit_select_candles(store_file, generated_candles):
    path, conn = store_file
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


# Summaries: ingestion_stats counts in DuckDB what domain.ingestion counts in pandas, the same numbers.


def test_duckdb_summaries_equal_the_pandas_ones_on_candles_with_gaps_and_ties(tmp_path):
    candles = synthetic_candles(3_000, seed=8)
    candles.loc[100:140, "close"] = candles.loc[99, "close"]  # a run of ties
    candles = without_minutes(candles, list(range(500, 530)) + list(range(2_000, 2_003)))
    labeled = label_candles(candles, "1m")
    start = labeled["open_time"].iloc[0].floor("D")
    with duckdb.connect(str(tmp_path / "store.duckdb")) as conn:
        replace_labeled_between(conn, SERIES, labeled, start, start + pd.Timedelta(days=3))
        assert stored_summary(conn, SERIES.labeled_table, SERIES) == store_summary(labeled["open_time"], "1m")
        assert stored_label_summary(conn, SERIES) == label_summary(labeled)


# Properties: a batch upserted twice changes nothing; consistent batches in any order agree.


_tables = itertools.count()


def new_series() -> CandleSeries:
    return CandleSeries(table=f"candles_{next(_tables)}", symbol="BTC/USDT", interval="1m")


def stored(conn: duckdb.DuckDBPyConnection, series: CandleSeries) -> pd.DataFrame:
    return read_candles(conn, series.table, series.symbol, series.interval)


def assert_same_candles(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    expected = expected.sort_values("open_time")[list(CANDLE_COLUMNS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(actual[list(CANDLE_COLUMNS)], expected, check_dtype=False, check_exact=True)


# Batches over one short stretch of minutes, so they overlap; each draws its own prices, so an
# overlapping batch revises the stored candles (values, and extras between NULL and a number).
revising_batch = candle_frames(max_size=12, max_gap=3, with_extras=True, start=START)


@st.composite
def revisions(draw: st.DrawFn) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """Earlier batches, then a new batch or a copy of an earlier one with only its extras revised
    (a NULL becoming a number must count as a change too)."""
    earlier = draw(st.lists(revising_batch, min_size=1, max_size=4))
    if not draw(st.booleans()):
        return earlier, draw(revising_batch)
    batch = draw(st.sampled_from(earlier))
    extras = draw(candle_frames(min_size=len(batch), max_size=len(batch), with_extras=True))
    return earlier, batch.assign(**{name: extras[name].to_numpy() for name in EXTRA_COLUMNS})


@STORE_EXAMPLES
@given(revisions())
def test_upserting_a_batch_twice_changes_nothing_and_the_batch_wins(store, case):
    earlier, batch = case
    series = new_series()
    for frame in earlier:
        upsert_candles(store, series, frame)
    before = stored(store, series)
    upsert_candles(store, series, batch)
    once = stored(store, series)
    assert upsert_candles(store, series, batch) == 0
    pd.testing.assert_frame_equal(stored(store, series), once, check_exact=True)
    # Once: the batch replaces the candles it names and leaves every other stored candle alone.
    untouched = before.loc[~before["open_time"].isin(batch["open_time"])]
    assert_same_candles(once, pd.concat([untouched, batch]))


@st.composite
def consistent_batches(draw: st.DrawFn) -> tuple[pd.DataFrame, list[pd.DataFrame], list[int]]:
    """Overlapping slices of one candle series (no two batches disagree on a minute), and an order."""
    candles = draw(candle_frames(min_size=1, max_size=30, max_gap=4, with_extras=True))
    positions = st.lists(st.integers(0, len(candles) - 1), min_size=1, max_size=len(candles), unique=True)
    batches = [candles.iloc[sorted(rows)] for rows in draw(st.lists(positions, min_size=1, max_size=5))]
    order = draw(st.permutations(range(len(batches))))
    return candles, batches, order


@STORE_EXAMPLES
@given(consistent_batches())
def test_upserting_the_same_batches_in_any_order_gives_the_same_store(store, case):
    candles, batches, order = case
    stores, new_counts = [], []
    for sequence in (range(len(batches)), order):
        series = new_series()
        new_counts.append(sum(upsert_candles(store, series, batches[i]) for i in sequence))
        stores.append(stored(store, series))
    pd.testing.assert_frame_equal(stores[0], stores[1], check_exact=True)
    union = candles.loc[sorted(set().union(*(batch.index for batch in batches)))]
    assert_same_candles(stores[0], union)
    # Every minute is new exactly once, whichever batch brings it first.
    assert new_counts == [len(union), len(union)]
