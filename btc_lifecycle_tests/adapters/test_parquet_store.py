"""The day-partitioned Parquet store (FEATURE_STORE_BACKEND=parquet): runs of different days write
at the same time, writers of one day take turns, a day's write replaces that day alone without
changing a file a reader may be reading, and every reader gives what the DuckDB file gives for the
same writes."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from btc_lifecycle.adapters.feature_store import (
    WindowWrite,
    archive_sources_between,
    last_open_time,
    read_candles,
    read_features,
    read_predictions,
    read_table,
    replace_archive_sources_between,
    replace_candles_between,
    replace_features_between,
    replace_labeled_between,
    replace_labeled_candles,
    replace_table,
    stored_label_summary,
    stored_summary,
    table_exists,
    upsert_candles,
)
from btc_lifecycle.adapters.parquet_store import (
    MARKER,
    RETENTION,
    FeatureStoreUnreachable,
    ParquetStoreConnection,
    days_between,
)
from btc_lifecycle.config import ConfigError, load_settings
from btc_lifecycle.definitions import build_definitions
from btc_lifecycle.defs.modelling.assets import daily_feature_asset
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.feature_engineering import count_candles, load_candle_frame, load_candles_from_duckdb
from btc_lifecycle.modelling.features import LONGEST_WINDOW, compute_features
from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle.resources import CandleExchangeResource, FeatureStoreResource
from btc_lifecycle_tests.e2e.reliability.conftest import Store, ingestion_assets, partition_range_tags

SERIES = CandleSeries(table="candles", symbol="BTC/USDT", interval="1m")
OTHER = CandleSeries(table="candles", symbol="ETH/USDT", interval="1m")
DAY = pd.Timedelta(days=1)
FIRST = pd.Timestamp("2024-01-01", tz="UTC")
TABLES = (SERIES.table, SERIES.labeled_table, SERIES.features_table)
BACKENDS = ("duckdb", "parquet")


def candles_of_days(days: int = 6, seed: int = 7) -> pd.DataFrame:
    return synthetic_candles(days * 1440, start=FIRST, seed=seed)


def within(frame: pd.DataFrame, start, end) -> pd.DataFrame:
    return frame.loc[(frame["open_time"] >= start) & (frame["open_time"] < end)].reset_index(drop=True)


def write_day(conn, candles: pd.DataFrame, start: pd.Timestamp) -> None:
    """What raw_candles, labeled_candles and features do for one day, on one connection each."""
    end = start + DAY
    replace_candles_between(conn, SERIES, within(candles, start, end), start, end)
    stored = read_candles(conn, SERIES.table, SERIES.symbol, SERIES.interval, start - pd.Timedelta(minutes=1), end)
    labeled = label_candles(stored, SERIES.interval)
    replace_labeled_between(conn, SERIES, labeled.loc[labeled["open_time"] >= start], start, end)
    context = read_candles(
        conn,
        SERIES.labeled_table,
        SERIES.symbol,
        SERIES.interval,
        start - pd.Timedelta(minutes=LONGEST_WINDOW + 1),
        end + pd.Timedelta(minutes=1),
    )
    replace_features_between(conn, SERIES, within(compute_features(context, SERIES.interval), start, end), start, end)


def _write_days_process(root: str, days: list[str], barrier) -> None:
    candles = candles_of_days()
    barrier.wait()
    for day in days:
        with ParquetStoreConnection(root) as conn:
            write_day(conn, candles, pd.Timestamp(day, tz="UTC"))


def _write_one_day_process(root: str, day: str) -> None:
    with ParquetStoreConnection(root) as conn:
        write_day(conn, candles_of_days(), pd.Timestamp(day, tz="UTC"))


def all_rows(conn) -> dict[str, pd.DataFrame]:
    return {
        table: read_table(conn, table).sort_values(["symbol", "interval", "open_time"]).reset_index(drop=True)
        for table in TABLES
    }


def test_two_processes_write_different_days_at_once_and_store_what_one_sequential_run_stores(tmp_path):
    # Days two apart: neither day's labels or features read the other's candles.
    days = ["2024-01-02", "2024-01-04"]
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    writers = [
        spawn.Process(target=_write_days_process, args=(str(tmp_path / "parallel"), [day], barrier)) for day in days
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [writer.exitcode for writer in writers] == [0, 0]

    candles = candles_of_days()
    with ParquetStoreConnection(tmp_path / "sequential") as conn:
        for day in days:
            write_day(conn, candles, pd.Timestamp(day, tz="UTC"))
        sequential = all_rows(conn)
    with ParquetStoreConnection(tmp_path / "parallel") as conn:
        parallel = all_rows(conn)
    for table in TABLES:
        pd.testing.assert_frame_equal(parallel[table], sequential[table])
    assert len(parallel[SERIES.table]) == 2 * 1440
    assert sorted(path.name for path in (tmp_path / "parallel" / SERIES.table).iterdir()) == [
        "2024-01-02.parquet",
        "2024-01-04.parquet",
    ]


def test_a_day_is_written_while_another_process_is_in_the_middle_of_writing_another_day(tmp_path):
    """The DuckDB file would make the second writer wait (or fail); here it finishes first."""
    spawn = multiprocessing.get_context("spawn")
    candles = candles_of_days()
    start = pd.Timestamp("2024-01-02", tz="UTC")
    root = tmp_path / "store"
    finished = {}

    def write_while_the_other_runs(scratch):
        other = spawn.Process(target=_write_one_day_process, args=(str(root), "2024-01-04"))
        other.start()
        other.join(timeout=120)
        finished["exitcode"] = other.exitcode
        return replace_candles_between(scratch, SERIES, within(candles, start, start + DAY), start, start + DAY)

    with ParquetStoreConnection(root) as conn:
        conn.rewrite(SERIES.table, days_between(start, start + DAY), write_while_the_other_runs)
        assert finished == {"exitcode": 0}
        stored = read_candles(conn, SERIES.table, SERIES.symbol, SERIES.interval)
    assert sorted(stored["open_time"].dt.strftime("%Y-%m-%d").unique()) == ["2024-01-02", "2024-01-04"]
    assert len(stored) == 2 * 1440


def test_rewriting_a_day_adds_a_file_for_that_day_alone_and_changes_no_file_written_before(tmp_path):
    """A reader may be in the middle of any file written before: none of them changes."""
    candles = candles_of_days()
    with ParquetStoreConnection(tmp_path / "store") as conn:
        for offset in (1, 2, 3):
            write_day(conn, candles, FIRST + offset * DAY)
        folder = tmp_path / "store" / SERIES.table
        before = {path.name: path.read_bytes() for path in folder.iterdir()}
        day = FIRST + 2 * DAY
        revised = without_minutes(within(candles, day, day + DAY), range(100, 160))
        revised["close"] = revised["close"] + 1.0
        write = replace_candles_between(conn, SERIES, revised, day, day + DAY)
        after = {path.name: path.read_bytes() for path in folder.iterdir()}
        stored = read_candles(conn, SERIES.table, SERIES.symbol, SERIES.interval)

    assert write == WindowWrite(rows=1380, new=0, removed=60)
    assert sorted(after) == ["2024-01-02.parquet", "2024-01-03.1.parquet", "2024-01-03.parquet", "2024-01-04.parquet"]
    assert {name: after[name] for name in before} == before
    expected = pd.concat(
        [within(candles, FIRST + DAY, day), revised, within(candles, day + DAY, day + 2 * DAY)], ignore_index=True
    )
    pd.testing.assert_frame_equal(stored, expected[stored.columns], check_dtype=False)


def _writes(conn, candles: pd.DataFrame) -> dict[str, object]:
    """One sequence of writes of every kind the assets make; what each returned."""
    results = {}
    for offset in (1, 2, 3):
        write_day(conn, candles, FIRST + offset * DAY)
    day = FIRST + 2 * DAY
    # a gap of 30 minutes, and an exchange that stopped answering at noon (the window ends there)
    gapped = without_minutes(within(candles, day, day + pd.Timedelta(hours=12)), range(600, 630))
    results["stopped"] = replace_candles_between(conn, SERIES, gapped, day, day + pd.Timedelta(hours=12))
    results["upsert"] = upsert_candles(conn, OTHER, candles.iloc[1000:1100])
    results["upsert_again"] = upsert_candles(conn, OTHER, candles.iloc[1050:1200])
    labeled = label_candles(read_candles(conn, SERIES.table, SERIES.symbol, SERIES.interval), SERIES.interval)
    results["labeled"] = replace_labeled_between(
        conn, SERIES, within(labeled, FIRST + DAY, FIRST + 4 * DAY), FIRST + DAY, FIRST + 4 * DAY
    )
    predictions = within(candles, day, day + pd.Timedelta(minutes=90))[["open_time", "close"]].assign(version=3)
    replace_table(conn, SERIES.predictions_table, predictions)
    # the whole labeled series of another symbol, beside this one's days
    other = read_candles(conn, OTHER.table, OTHER.symbol, OTHER.interval)
    replace_labeled_candles(conn, OTHER, label_candles(other, OTHER.interval))
    archived = pd.DataFrame(
        {"open_time": [FIRST + DAY, FIRST + 3 * DAY], "archive": ["a.zip", "b.zip"], "sha256": ["1" * 64, "2" * 64]}
    )
    results["archives"] = replace_archive_sources_between(conn, SERIES, archived, FIRST + DAY, FIRST + 4 * DAY)
    return results


def _readers(conn) -> dict[str, object]:
    start, end = FIRST + DAY + pd.Timedelta(hours=20), FIRST + 2 * DAY + pd.Timedelta(hours=13)
    return {
        "candles": read_candles(conn, SERIES.table, SERIES.symbol, SERIES.interval),
        "window": read_candles(conn, SERIES.table, SERIES.symbol, SERIES.interval, start, end, limit=500),
        "other": read_candles(conn, OTHER.table, OTHER.symbol, OTHER.interval),
        "labeled": read_candles(conn, SERIES.labeled_table, SERIES.symbol, SERIES.interval),
        "other_labeled": read_candles(conn, OTHER.labeled_table, OTHER.symbol, OTHER.interval),
        "archives": archive_sources_between(conn, SERIES, FIRST, FIRST + 5 * DAY),
        "summary": stored_summary(conn, SERIES.table, SERIES),
        "labeled_summary": stored_summary(conn, SERIES.labeled_table, SERIES),
        "labels": stored_label_summary(conn, SERIES),
        "last": last_open_time(conn, SERIES),
        "features": read_features(conn, SERIES),
        "features_from": read_features(conn, SERIES, FIRST + 3 * DAY),
        "predictions": read_predictions(conn, SERIES),
        "no_such_table": table_exists(conn, "nothing_here"),
    }


def assert_same(left, right) -> None:
    assert left.keys() == right.keys()
    for key in left:
        if isinstance(left[key], pd.DataFrame):
            pd.testing.assert_frame_equal(left[key], right[key], obj=key)
        else:
            assert left[key] == right[key], key


def test_every_reader_gives_the_same_answer_on_both_backends_for_the_same_writes(tmp_path):
    candles = candles_of_days()
    with duckdb.connect(str(tmp_path / "store.duckdb")) as conn:
        duckdb_writes = _writes(conn, candles)
        duckdb_reads = _readers(conn)
    with ParquetStoreConnection(tmp_path / "parquet") as conn:
        parquet_writes = _writes(conn, candles)
        parquet_reads = _readers(conn)

    assert parquet_writes == duckdb_writes
    assert duckdb_writes["stopped"] == WindowWrite(rows=690, new=0, removed=30)
    assert duckdb_reads["summary"]["missing_minutes"] == 30
    assert len(duckdb_reads["candles"]) == 3 * 1440 - 30
    assert len(duckdb_reads["other"]) == 200
    assert len(duckdb_reads["other_labeled"]) == 200
    assert duckdb_writes["archives"] == WindowWrite(rows=2, new=2, removed=0)
    assert_same(parquet_reads, duckdb_reads)
    typed = {
        name: (
            load_candles_from_duckdb(location, start=FIRST + 2 * DAY, limit=50),
            count_candles(location),
            load_candle_frame(location, end=FIRST + 2 * DAY),
        )
        for name, location in (("duckdb", tmp_path / "store.duckdb"), ("parquet", tmp_path / "parquet"))
    }
    assert typed["parquet"][:2] == typed["duckdb"][:2]
    assert typed["duckdb"][1] == 3 * 1440 - 30
    pd.testing.assert_frame_equal(typed["parquet"][2], typed["duckdb"][2])


def test_features_of_another_column_layout_rebuild_the_table_with_these_days_only_as_duckdb_does(tmp_path):
    candles = candles_of_days()
    outcomes = {}
    for name, conn in (
        ("duckdb", duckdb.connect(str(tmp_path / "store.duckdb"))),
        ("parquet", ParquetStoreConnection(tmp_path / "parquet")),
    ):
        with conn:
            for offset in (1, 2):
                write_day(conn, candles, FIRST + offset * DAY)
            day = FIRST + 3 * DAY
            newer = within(candles, day, day + DAY)[["open_time", "close"]].rename(columns={"close": "new_feature"})
            write, rebuilt = replace_features_between(conn, SERIES, newer, day, day + DAY)
            outcomes[name] = (write, rebuilt, read_features(conn, SERIES))
    assert outcomes["parquet"][:2] == outcomes["duckdb"][:2] == (WindowWrite(rows=1440, new=1440, removed=0), True)
    pd.testing.assert_frame_equal(outcomes["parquet"][2], outcomes["duckdb"][2])
    assert list(outcomes["duckdb"][2].columns) == ["open_time", "new_feature"]
    folder = tmp_path / "parquet" / SERIES.features_table
    assert sorted(path.name for path in folder.iterdir()) == [
        "2024-01-02.1.dropped",
        "2024-01-02.parquet",
        "2024-01-03.1.dropped",
        "2024-01-03.parquet",
        "2024-01-04.parquet",
    ]
    with ParquetStoreConnection(tmp_path / "parquet") as conn:
        conn.remove_superseded(retention=pd.Timedelta(0))
    assert sorted(path.name for path in folder.iterdir()) == ["2024-01-04.parquet"]


def connect(backend: str, folder: Path):
    """A fresh store of ``backend`` in ``folder``, as a test hands it to the write functions."""
    return (
        duckdb.connect(str(folder / "store.duckdb"))
        if backend == "duckdb"
        else ParquetStoreConnection(folder / "parquet")
    )


def not_a_price(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with the closes as text, the last one no number: DuckDB fails the write there."""
    rows = rows.copy()
    rows["close"] = rows["close"].map(str)
    rows.loc[rows.index[-1], "close"] = "not a price"
    return rows


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_write_that_fails_midway_leaves_every_table_and_file_as_it_was_on_either_backend(tmp_path, backend):
    candles = candles_of_days()
    day = FIRST + 2 * DAY
    with connect(backend, tmp_path) as conn:
        for offset in (1, 2):
            write_day(conn, candles, FIRST + offset * DAY)
        labeled = read_candles(conn, SERIES.labeled_table, SERIES.symbol, SERIES.interval)
        before = all_rows(conn)
        files = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
        bad_candles, bad_labeled = not_a_price(within(candles, day, day + DAY)), not_a_price(labeled)
        failing = {
            "upsert_candles": lambda: upsert_candles(conn, SERIES, bad_candles),
            "replace_candles_between": lambda: replace_candles_between(conn, SERIES, bad_candles, day, day + DAY),
            "replace_labeled_between": lambda: replace_labeled_between(
                conn, SERIES, within(bad_labeled, day, day + DAY), day, day + DAY
            ),
            "replace_labeled_candles": lambda: replace_labeled_candles(conn, SERIES, bad_labeled),
        }
        for name, write in failing.items():
            with pytest.raises(duckdb.ConversionException, match="not a price"):
                write()
            assert_same(all_rows(conn), before)
            if backend == "parquet":
                assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == files, name
        write_day(conn, candles, day)  # the store takes the next write
        assert_same(all_rows(conn), before)


def test_the_backend_is_chosen_by_the_environment_and_defaults_to_the_duckdb_file(tmp_path):
    base = {"FEATURE_DB_PATH": str(tmp_path / "store" / "bitcoin.duckdb")}
    default = load_settings(base)
    assert default.feature_store_backend == "duckdb"
    assert default.feature_store_location == tmp_path / "store" / "bitcoin.duckdb"
    assert FeatureStoreResource.from_settings(default).backend == "duckdb"

    parquet = load_settings({**base, "FEATURE_STORE_BACKEND": "parquet"})
    assert parquet.feature_store_location == tmp_path / "store" / "parquet"
    moved = load_settings({**base, "FEATURE_STORE_BACKEND": "parquet", "FEATURE_PARQUET_DIR": str(tmp_path / "days")})
    resource = FeatureStoreResource.from_settings(moved)
    assert (resource.backend, resource.parquet_dir) == ("parquet", str(tmp_path / "days"))
    with resource.get_connection() as conn:
        assert isinstance(conn, ParquetStoreConnection)
        assert Path(conn.root) == tmp_path / "days"

    with pytest.raises(ConfigError, match="FEATURE_STORE_BACKEND must be one of duckdb, parquet, got 'postgres'"):
        load_settings({**base, "FEATURE_STORE_BACKEND": "postgres"})


def test_days_between_lists_every_utc_day_a_window_touches():
    assert days_between(FIRST, FIRST + DAY) == [pd.Timestamp("2024-01-01")]
    assert days_between(FIRST + pd.Timedelta(hours=23), FIRST + DAY + pd.Timedelta(minutes=1)) == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-01-02"),
    ]
    assert days_between(FIRST, FIRST) == []


def _materialize_days(root: Path, api_url: str, backend: str) -> dict[str, pd.DataFrame]:
    """raw_candles → labeled_candles → ingestion_stats and features over every day, as one run."""
    store = Store(root)
    settings = load_settings({**store.env(api_url), "FEATURE_STORE_BACKEND": backend})
    feature_store = FeatureStoreResource.from_settings(settings)
    result = dg.materialize(
        [*ingestion_assets(settings), daily_feature_asset(settings)],
        resources={
            "settings": settings,
            "exchange": CandleExchangeResource.from_settings(settings),
            "feature_store": feature_store,
        },
        instance=store.instance,
        tags=partition_range_tags("2024-01-01...2024-01-03"),
    )
    assert result.success
    stats = json.loads(settings.ingestion_stats_path.read_text())
    with feature_store.get_connection() as conn:
        tables = all_rows(conn)
    return {**tables, "stats": {key: stats[key] for key in ("total_rows", "missing_minutes", "gaps", "up_share")}}


def test_the_assets_store_the_same_rows_through_either_backend(tmp_path):
    candles = without_minutes(synthetic_candles(3 * 1440, start=FIRST, seed=5), range(2000, 2010))
    with ReplayExchange(candles, speed=0) as exchange:
        stored = {backend: _materialize_days(tmp_path / backend, exchange.base_url, backend) for backend in BACKENDS}
    assert stored["parquet"]["stats"] == stored["duckdb"]["stats"]
    assert stored["duckdb"]["stats"]["missing_minutes"] == 10
    for table in TABLES:
        pd.testing.assert_frame_equal(stored["parquet"][table], stored["duckdb"][table], obj=table)
    assert len(stored["duckdb"][SERIES.table]) == 3 * 1440 - 10
    assert sorted(path.name for path in (tmp_path / "parquet" / "feature_store" / "parquet" / "candles").iterdir()) == [
        "2024-01-01.parquet",
        "2024-01-02.parquet",
        "2024-01-03.parquet",
    ]


def test_with_the_parquet_backend_the_day_writing_assets_leave_the_one_writer_pool(tmp_path):
    """Their runs then write different days at once; the whole-table assets keep the pool."""
    pools = {}
    for backend in BACKENDS:
        env = {"FEATURE_STORE_BACKEND": backend, "FEATURE_DB_PATH": str(tmp_path / "bitcoin.duckdb")}
        graph = build_definitions(load_settings(env)).resolve_asset_graph()
        names = ("raw_candles", "labeled_candles", "features", "ingestion_stats")
        pools[backend] = [f"{name} {graph.get(dg.AssetKey(name)).pools}" for name in names]
    assert pools["duckdb"] == [
        "raw_candles {'duckdb'}",
        "labeled_candles {'duckdb'}",
        "features {'duckdb'}",
        "ingestion_stats {'duckdb'}",
    ]
    assert pools["parquet"] == [
        "raw_candles set()",
        "labeled_candles set()",
        "features set()",
        "ingestion_stats {'duckdb'}",
    ]


def test_a_table_name_that_is_not_an_identifier_is_refused_before_any_file_is_written(tmp_path):
    with ParquetStoreConnection(tmp_path / "store") as conn, pytest.raises(ValueError, match="plain SQL identifier"):
        replace_table(conn, "../outside", pd.DataFrame({"open_time": [FIRST.tz_localize(None)]}))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["store"]
    assert list((tmp_path / "store").iterdir()) == [tmp_path / "store" / MARKER]


def test_a_store_folder_whose_path_holds_a_quote_is_read_and_written_like_any_other(tmp_path):
    # The views and COPY's target hold the path as a SQL literal: a quote in it must stay text.
    root = tmp_path / "it's; DROP TABLE candles; --"
    candles = candles_of_days(2)
    with ParquetStoreConnection(root) as conn:
        write_day(conn, candles, FIRST)
        write_day(conn, candles, FIRST + DAY)
    with ParquetStoreConnection(root) as conn:
        stored = read_candles(conn, SERIES.table, SERIES.symbol, SERIES.interval)
    assert len(stored) == len(candles) == 2 * 1440
    assert sorted(path.name for path in (root / SERIES.table).iterdir()) == ["2024-01-01.parquet", "2024-01-02.parquet"]


def test_a_new_store_is_created_with_a_marker_that_says_what_it_is(tmp_path):
    root = tmp_path / "shared" / "parquet"
    with ParquetStoreConnection(root):
        pass
    with ParquetStoreConnection(root):  # and opens again
        pass
    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")) == [
        "shared",
        "shared/parquet",
        f"shared/parquet/{MARKER}",
    ]
    assert "btc-lifecycle feature store" in (root / MARKER).read_text()


def test_an_empty_store_folder_without_the_marker_is_refused_by_name_and_left_as_it_is(tmp_path):
    """What a worker host sees where the shared file system is not mounted: an empty mount point."""
    mount_point = tmp_path / "share"
    mount_point.mkdir()
    for open_it in (ParquetStoreConnection, count_candles):  # a writer's connection, a reader's
        with pytest.raises(FeatureStoreUnreachable) as raised:
            open_it(mount_point)
        message = str(raised.value)
        assert str(mount_point) in message
        assert "a shared file system that is not mounted" in message
        assert "mount it and run again" in message and "remove it if it is empty" in message
    assert isinstance(raised.value, RuntimeError)
    assert list(tmp_path.rglob("*")) == [mount_point]


def test_a_folder_of_other_files_is_not_taken_for_a_store(tmp_path):
    (tmp_path / "notes.txt").write_text("not a table")
    (tmp_path / SERIES.table).mkdir()  # a table's name, but no day file in it
    with pytest.raises(FeatureStoreUnreachable, match="set FEATURE_PARQUET_DIR to a folder that does not exist"):
        ParquetStoreConnection(tmp_path)
    assert sorted(path.name for path in tmp_path.rglob("*")) == [SERIES.table, "notes.txt"]


def test_a_store_made_before_the_marker_opens_as_it_did_and_is_marked(tmp_path):
    root = tmp_path / "store"
    with ParquetStoreConnection(root) as conn:
        write_day(conn, candles_of_days(1), FIRST)
    (root / MARKER).unlink()
    with ParquetStoreConnection(root) as conn:
        assert len(read_candles(conn, SERIES.table, SERIES.symbol, SERIES.interval)) == 1440
    assert (root / MARKER).is_file()


def test_connections_opening_a_new_store_at_the_same_moment_all_open_the_one_store(tmp_path):
    """Runs that start together on a new store: none of them may see its folder made but empty."""
    for attempt in range(10):
        root = tmp_path / str(attempt) / "store"
        barrier = threading.Barrier(8)

        def open_store(root=root, barrier=barrier) -> None:
            barrier.wait()
            ParquetStoreConnection(root).close()

        with ThreadPoolExecutor(8) as pool:
            for opened in [pool.submit(open_store) for _ in range(8)]:
                opened.result()
        assert sorted(path.name for path in root.parent.iterdir()) == ["store"]
        assert [path.name for path in root.iterdir()] == [MARKER]


HALF = pd.Timedelta(hours=12)
SAME_DAY_ROUNDS = 8


def _write_one_half_of_each_day_process(root: str, half: int, barrier) -> None:
    """Round by round, released with the other writer: this half of the round's day."""
    candles = candles_of_days(SAME_DAY_ROUNDS)
    with ParquetStoreConnection(root) as conn:
        for round_ in range(SAME_DAY_ROUNDS):
            start = FIRST + round_ * DAY + half * HALF
            barrier.wait(timeout=60)
            replace_candles_between(conn, SERIES, within(candles, start, start + HALF), start, start + HALF)


def test_two_processes_writing_halves_of_the_same_day_at_once_keep_both_halves(tmp_path):
    """Each loads the day, adds its half and stores the day: unless they take turns, the last one
    stores the day without the other's half, which its writer was told is stored."""
    root = tmp_path / "store"
    ParquetStoreConnection(root).close()
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    writers = [
        spawn.Process(target=_write_one_half_of_each_day_process, args=(str(root), half, barrier)) for half in (0, 1)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [writer.exitcode for writer in writers] == [0, 0]

    with ParquetStoreConnection(root) as conn:
        stored = read_candles(conn, SERIES.table, SERIES.symbol, SERIES.interval)
    assert stored.groupby(stored["open_time"].dt.date).size().tolist() == [1440] * SAME_DAY_ROUNDS
    expected = candles_of_days(SAME_DAY_ROUNDS)
    pd.testing.assert_frame_equal(stored, expected[stored.columns], check_dtype=False)


def _rewrite_the_first_day_until_stopped_process(root: str, stop, writes) -> None:
    """The first day again and again, whole or its first two hours: a file of another size each time."""
    candles = within(candles_of_days(1), FIRST, FIRST + DAY)
    with ParquetStoreConnection(root) as conn:
        while not stop.is_set():
            rows = candles.iloc[:120] if writes.value % 2 else candles
            replace_candles_between(conn, SERIES, rows, FIRST, FIRST + DAY)
            writes.value += 1


def test_a_reader_querying_while_a_day_is_rewritten_sees_whole_days_and_never_fails(tmp_path):
    """DuckDB opens a day's file for its footer and again for its rows: when a write swapped a new
    file in under the day's name between the two, about one write in eight failed a summary here
    ("Prefetch registered for bytes outside file", TProtocolException)."""
    root = tmp_path / "store"
    with ParquetStoreConnection(root) as conn:
        replace_candles_between(conn, SERIES, candles_of_days(3), FIRST, FIRST + 3 * DAY)
    spawn = multiprocessing.get_context("spawn")
    stop, writes = spawn.Event(), spawn.Value("i", 0)
    writer = spawn.Process(target=_rewrite_the_first_day_until_stopped_process, args=(str(root), stop, writes))
    writer.start()
    failures, seen = [], set()
    try:
        with ParquetStoreConnection(root) as conn:
            deadline = time.monotonic() + 60
            while writes.value < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            deadline = min(deadline, time.monotonic() + 6)
            while writes.value < 50 and time.monotonic() < deadline and not failures:
                conn.refresh_views()  # the files written since
                try:
                    summary = stored_summary(conn, SERIES.table, SERIES)
                except duckdb.Error as error:
                    failures.append(str(error).splitlines()[0])
                    continue
                seen.add((summary["total_rows"], summary["missing_minutes"]))
    finally:
        stop.set()
        writer.join(timeout=60)
    assert failures == []
    assert seen == {(3 * 1440, 0), (120 + 2 * 1440, 1440 - 120)}


def test_a_write_of_every_day_waits_for_a_write_of_one_day_to_finish(tmp_path):
    root = tmp_path / "store"
    with ParquetStoreConnection(root) as conn:
        replace_candles_between(conn, SERIES, candles_of_days(2), FIRST, FIRST + 2 * DAY)
    inside, finished = threading.Event(), []

    def one_day(scratch) -> None:
        inside.set()
        time.sleep(0.5)  # the write of every day is started meanwhile
        finished.append("one day")

    def write(days, what) -> None:
        with ParquetStoreConnection(root) as conn:
            conn.rewrite(SERIES.table, days, what)

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(write, [FIRST.tz_localize(None)], one_day)
        assert inside.wait(timeout=30)
        second = pool.submit(write, None, lambda scratch: finished.append("every day"))
        first.result(), second.result()
    assert finished == ["one day", "every day"]


def test_a_file_superseded_longer_than_the_retention_is_removed_by_the_next_write_of_its_table(tmp_path):
    candles = candles_of_days(2)
    folder = tmp_path / "store" / SERIES.table

    def write_day_of(start: pd.Timestamp) -> None:
        replace_candles_between(conn, SERIES, within(candles, start, start + DAY), start, start + DAY)

    def names() -> list[str]:
        return sorted(path.name for path in folder.iterdir())

    with ParquetStoreConnection(tmp_path / "store") as conn:
        for start in (FIRST, FIRST, FIRST + DAY):
            write_day_of(start)
        assert names() == ["2024-01-01.1.parquet", "2024-01-01.parquet", "2024-01-02.parquet"]
        superseded_long_ago = time.time() - RETENTION.total_seconds() - 60
        os.utime(folder / "2024-01-01.1.parquet", (superseded_long_ago, superseded_long_ago))
        write_day_of(FIRST + DAY)
        assert names() == ["2024-01-01.1.parquet", "2024-01-02.1.parquet", "2024-01-02.parquet"]
        stored = read_candles(conn, SERIES.table, SERIES.symbol, SERIES.interval)
    pd.testing.assert_frame_equal(stored, candles[stored.columns], check_dtype=False)
