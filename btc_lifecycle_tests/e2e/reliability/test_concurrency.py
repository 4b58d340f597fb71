"""Several runs at once against one DuckDB file: none fails on the lock, the table is exact.

DuckDB allows one writing process per file. Within one Dagster instance the 'duckdb' pool
(config/dagster.yaml, limit 1) serializes the steps; across instances only dagster-duckdb's
connection retry (10 tries, doubling waits) stands between two writers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.instance.ref import InstanceRef

from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle_tests.e2e.reliability.conftest import (
    assert_stored,
    materialize_command,
    replay_days,
    start,
    write_ingest_config,
)
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT, Workspace

pytestmark = pytest.mark.e2e

PROCESSES = 4


def open_instance(dagster_home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))


def run_all(commands: list[tuple[list[str], dict]], logs: Path) -> list[str]:
    """Start every command at once; wait for all; return their outputs."""
    logs.mkdir(exist_ok=True)
    processes = [start(command, env, logs / f"{n}.log") for n, (command, env) in enumerate(commands)]
    for process in processes:
        process.wait(timeout=600)
    outputs = [(logs / f"{n}.log").read_text() for n in range(len(commands))]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-6000:]
        assert "Could not set lock" not in output and "FeatureStoreLocked" not in output, output[-6000:]
    return outputs


def initialize_instance(dagster_home: Path) -> None:
    """Create the instance's SQLite storage once: processes first opening a fresh home at the
    same moment race on its schema (alembic_version UNIQUE), a Dagster limitation."""
    with open_instance(dagster_home) as instance:
        instance.get_runs(limit=1)


def new_rows_by_run(dagster_home: Path) -> dict[str, int]:
    with open_instance(dagster_home) as instance:
        events = instance.fetch_materializations(dg.AssetKey("raw_candles"), limit=100).records
        return {event.run_id: event.asset_materialization.metadata["new_rows"].value for event in events}


def routine_days(days: str) -> str:
    """The days an ingestion schedule tick ingests: the newest day and the one before it."""
    last = pd.Timestamp(days.split("...")[1])
    return f"{last - pd.Timedelta(days=1):%Y-%m-%d}...{last:%Y-%m-%d}"


def test_four_ingests_and_a_routine_ingest_at_once_in_one_instance_store_each_candle_once(tmp_path, candles):
    workspace = Workspace(tmp_path / "state")
    config = write_ingest_config(tmp_path)
    initialize_instance(tmp_path / "state" / "dagster_home")
    with ReplayExchange(candles, speed=0) as exchange:
        env = workspace.env(BINANCE_API_URL=exchange.base_url, INGEST_CONFIG=str(config), INGEST_BACKFILL_DAYS="all")
        days = replay_days(exchange.base_url)
        # Four manual backfills, plus what the ingestion schedule launches while they run: a run
        # of the ingestion assets over the newest two days.
        routine = materialize_command(routine_days(days))
        run_all([(materialize_command(days), env)] * PROCESSES + [(routine, env)], tmp_path / "logs")
    assert_stored(workspace.stored(), candles)
    new_rows = new_rows_by_run(tmp_path / "state" / "dagster_home")
    assert len(new_rows) == PROCESSES + 1
    assert sorted(new_rows.values()) == [0] * PROCESSES + [len(candles)]  # one run inserted, the rest found them
    assert workspace.stats["total_rows"] == len(candles)


def test_four_ingests_from_separate_instances_share_the_store_through_the_lock_retry(tmp_path, candles):
    config = write_ingest_config(tmp_path)
    shared = Workspace(tmp_path / "shared")
    homes = []
    with ReplayExchange(candles, speed=0) as exchange:
        days = replay_days(exchange.base_url)
        commands = []
        for n in range(PROCESSES):
            home = tmp_path / f"home{n}"
            home.mkdir()
            shutil.copy(REPO_ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
            homes.append(home)
            env = shared.env(
                BINANCE_API_URL=exchange.base_url,
                INGEST_CONFIG=str(config),
                INGEST_BACKFILL_DAYS="all",
                DAGSTER_HOME=str(home),
            )
            commands.append((materialize_command(days), env))
        run_all(commands, tmp_path / "logs")
    assert_stored(shared.stored(), candles)
    new_rows = [value for home in homes for value in new_rows_by_run(home).values()]
    assert sorted(new_rows) == [0] * (PROCESSES - 1) + [len(candles)]
