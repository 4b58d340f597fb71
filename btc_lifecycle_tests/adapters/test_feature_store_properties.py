"""upsert_candles: a batch upserted twice changes nothing; consistent batches in any order agree."""

from __future__ import annotations

import itertools

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_lifecycle.adapters.feature_store import read_candles, upsert_candles
from btc_lifecycle.domain.candles import CANDLE_COLUMNS, EXTRA_COLUMNS, CandleSeries
from btc_lifecycle_tests.strategies import START, candle_frames

# Each upsert commits to a file (about 15 ms): fewer examples than the pure properties.
STORE_EXAMPLES = settings(max_examples=30)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One DuckDB file in a tmp dir for the module; ``new_series`` gives each example its own table."""
    with duckdb.connect(str(tmp_path_factory.mktemp("store") / "store.duckdb")) as conn:
        yield conn


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
