"""End to end on the day-partitioned Parquet feature store (``FEATURE_STORE_BACKEND=parquet``):
``make run``'s command runs the whole graph with no DuckDB file anywhere, and every table lives
as one Parquet file per UTC day that the same readers read."""

from __future__ import annotations

import re

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from btc_lifecycle.adapters.feature_store import read_candles, read_table
from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection
from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle_tests.conftest import write_generic_csv
from btc_lifecycle_tests.e2e.workspace import GRAPH_ASSETS, Workspace

pytestmark = pytest.mark.e2e

CANDLES = 4 * 1440  # four whole UTC days (the synthetic walk starts at a midnight)


@pytest.fixture(scope="module")
def parquet_graph(tmp_path_factory):
    root = tmp_path_factory.mktemp("parquet_graph")
    candles = synthetic_candles(CANDLES, seed=41)
    path = write_generic_csv(candles, root / "candles.csv")
    workspace = Workspace(root / "state")
    parquet_dir = root / "state" / "parquet"
    result = workspace.materialize(path, FEATURE_STORE_BACKEND="parquet", FEATURE_PARQUET_DIR=str(parquet_dir))
    with dg.DagsterInstance.from_config(str(workspace.root / "dagster_home")) as instance:
        materialized = {name for name in GRAPH_ASSETS if instance.get_latest_materialization_event(dg.AssetKey(name))}
    # What the replay exchange serves: the file as the candle reader reads it (prices in text).
    return workspace, read_candle_file(path), parquet_dir, result, materialized


def test_the_whole_graph_materializes_on_the_parquet_store_without_a_duckdb_file(parquet_graph):
    workspace, _, _, _, materialized = parquet_graph
    assert sorted(set(GRAPH_ASSETS) - materialized) == []
    assert not workspace.feature_db.exists()
    assert list(workspace.root.rglob("*.duckdb")) == []


def test_every_check_of_the_run_passes_on_the_parquet_store(parquet_graph):
    output = parquet_graph[3].stdout + parquet_graph[3].stderr
    verdicts = re.findall(r"Asset check '(\w+)' on '\w+' (passed|failed)", output)
    assert {name for name, _ in verdicts} >= {
        "raw_candles_unique_keys",
        "labels_recompute",
        "features_no_look_ahead",
        "feast_features_match_the_features_table",
        "data_drift",
    }, output[-3000:]
    assert [name for name, verdict in verdicts if verdict == "failed"] == []


def test_each_table_is_one_file_per_utc_day_and_reads_back_every_candle(parquet_graph):
    _, candles, parquet_dir, _, _ = parquet_graph
    days = sorted(pd.to_datetime(candles["open_time"], utc=True).dt.strftime("%Y-%m-%d").unique())
    for table in ("candles", "candles_labeled", "candles_features"):
        rows = {path.stem: pq.ParquetFile(path).metadata.num_rows for path in (parquet_dir / table).glob("*.parquet")}
        # The run also covers the day after the last candle (today's partial partition): it is
        # written, empty, so that a re-run of a day that lost its candles leaves no stale rows.
        assert sorted(day for day, count in rows.items() if count) == days, table
        assert sum(rows.values()) == CANDLES, table
    with ParquetStoreConnection(parquet_dir) as conn:
        stored = read_candles(conn, "candles", "BTC/USDT", "1m")
        predictions = read_table(conn, "candles_predictions")
    assert len(stored) == CANDLES
    assert stored["open_time"].is_monotonic_increasing and stored["open_time"].is_unique
    # Binance's klines carry prices as strings with 8 decimals; the replay exchange writes them so.
    for column in ("open", "high", "low", "close", "volume"):
        assert (stored[column].to_numpy() == candles[column].round(8).to_numpy()).all(), column
    assert predictions is not None and len(predictions) > 0
