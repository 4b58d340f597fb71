"""The feature store resource: a clear error when another process holds the file, dead runs' slots freed."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import dagster as dg
import duckdb
import pytest
from dagster._core.events import DagsterEvent

from btc_lifecycle.resources.feature_store import FeatureStoreLocked, FeatureStoreResource, release_slots_of_dead_runs

HOLD_THE_LOCK = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def no_backoff_waits(monkeypatch):
    """The resource's ten retries of a locked file, without their ~100 s of waiting."""
    import dagster._utils.backoff

    monkeypatch.setattr(dagster._utils.backoff, "exponential_delay_generator", lambda: itertools.repeat(0.0))


@pytest.fixture
def locked_store(tmp_path):
    """A DuckDB file that another process holds open for writing."""
    path = tmp_path / "store" / "bitcoin.duckdb"
    path.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield path
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_a_store_locked_by_another_process_fails_with_feature_store_locked_naming_the_file(
    locked_store, no_backoff_waits
):
    resource = FeatureStoreResource(database=str(locked_store))
    with pytest.raises(FeatureStoreLocked) as raised:
        with resource.get_connection():
            pass
    message = str(raised.value)
    assert str(locked_store) in message
    assert "stayed locked by another process through 10 connection attempts" in message
    assert "'duckdb' pool" in message
    assert isinstance(raised.value.__cause__, duckdb.IOException)


def test_an_io_error_that_is_not_a_lock_is_raised_as_it_is(tmp_path, no_backoff_waits):
    not_a_database = tmp_path / "store.duckdb"
    not_a_database.write_text("these bytes are not a DuckDB file")
    with pytest.raises(duckdb.Error) as raised:
        with FeatureStoreResource(database=str(not_a_database)).get_connection():
            pass
    assert not isinstance(raised.value, FeatureStoreLocked)


def test_the_connection_is_closed_when_the_block_ends(tmp_path):
    with FeatureStoreResource(database=str(tmp_path / "new" / "store.duckdb")).get_connection() as conn:
        conn.execute("create table t as select 1 as x")
    with pytest.raises(duckdb.ConnectionException):
        conn.execute("select 1")


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def started_run(instance: dg.DagsterInstance, run_id: str, pid: int, holds_slot: bool = True) -> None:
    """A run that started in process ``pid`` and holds a 'duckdb' pool slot."""
    instance.add_run(dg.DagsterRun(job_name="ingestion", run_id=run_id, status=dg.DagsterRunStatus.STARTED))
    instance.report_dagster_event(DagsterEvent("PIPELINE_START", job_name="ingestion", pid=pid), run_id)
    if not holds_slot:
        return
    claim = instance.event_log_storage.claim_concurrency_slot("duckdb", run_id, f"{run_id}_step")
    assert claim.is_claimed


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        instance.event_log_storage.set_concurrency_slots("duckdb", 2)
        yield instance


def test_a_run_whose_process_is_gone_is_marked_failed_and_its_pool_slot_freed(instance):
    started_run(instance, "killed-run", dead_pid())
    assert release_slots_of_dead_runs(instance) == ["killed-run"]
    assert instance.get_run_by_id("killed-run").status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_info("duckdb").active_slot_count == 0


def test_a_run_whose_process_is_alive_keeps_its_pool_slot(instance):
    started_run(instance, "live-run", os.getpid())
    assert release_slots_of_dead_runs(instance) == []
    assert instance.get_run_by_id("live-run").status == dg.DagsterRunStatus.STARTED
    assert instance.event_log_storage.get_concurrency_info("duckdb").active_slot_count == 1


def test_only_the_dead_run_is_released_when_a_live_one_runs_beside_it(instance):
    started_run(instance, "live-run", os.getpid())
    started_run(instance, "killed-run", dead_pid())
    assert release_slots_of_dead_runs(instance) == ["killed-run"]
    assert instance.event_log_storage.get_concurrency_info("duckdb").active_run_ids == {"live-run"}


def test_a_non_sqlite_instance_is_left_alone():
    # An ephemeral (in-memory) instance's runs may live in other processes: never declared dead.
    instance = dg.DagsterInstance.ephemeral()
    started_run(instance, "killed-run", dead_pid(), holds_slot=False)
    assert release_slots_of_dead_runs(instance) == []
    assert instance.get_run_by_id("killed-run").status == dg.DagsterRunStatus.STARTED
