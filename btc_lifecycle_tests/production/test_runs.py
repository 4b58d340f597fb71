"""Runs whose process is gone: marked failed with the reason, their pool slots freed; a run whose
process lives, or whose pid is unknown, is never touched."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import psutil
import pytest
from dagster._core.events import DagsterEvent

from btc_lifecycle.production.processes import wait_for
from btc_lifecycle.production.runs import (
    fail_runs_without_a_process,
    runs_stored_on_this_machine,
    started_runs_without_a_process,
)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def started_run(instance: dg.DagsterInstance, run_id: str, pid: int | None, holds_slot: bool = True) -> None:
    """A run that started in process ``pid`` (None: unknown) and holds a 'duckdb' pool slot."""
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


def test_a_run_whose_process_is_gone_is_marked_failed_with_the_reason_and_its_pool_slot_freed(instance):
    pid = dead_pid()
    started_run(instance, "killed-run", pid)
    assert fail_runs_without_a_process(instance, "it was killed") == ["killed-run"]
    assert instance.get_run_by_id("killed-run").status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_info("duckdb").active_slot_count == 0
    (failure,) = instance.all_logs("killed-run", of_type=dg.DagsterEventType.RUN_FAILURE)
    assert failure.message == f"the run's process (pid {pid}) is gone and its end was never recorded: it was killed"


def test_a_run_whose_process_is_alive_keeps_its_pool_slot(instance):
    started_run(instance, "live-run", os.getpid())
    assert fail_runs_without_a_process(instance, "killed") == []
    assert instance.get_run_by_id("live-run").status == dg.DagsterRunStatus.STARTED
    assert instance.event_log_storage.get_concurrency_info("duckdb").active_slot_count == 1


def test_only_the_dead_run_is_failed_when_a_live_one_runs_beside_it(instance):
    started_run(instance, "live-run", os.getpid())
    started_run(instance, "killed-run", dead_pid())
    assert fail_runs_without_a_process(instance, "killed") == ["killed-run"]
    assert instance.event_log_storage.get_concurrency_info("duckdb").active_run_ids == {"live-run"}


def test_a_run_whose_process_is_a_zombie_counts_as_gone(instance):
    zombie = subprocess.Popen(["sh", "-c", "exit 0"])  # not waited for: a zombie until reaped
    try:
        assert wait_for(lambda: psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE, 10)
        started_run(instance, "zombie-run", zombie.pid, holds_slot=False)
        assert [(run.run_id, pids) for run, pids in started_runs_without_a_process(instance)] == [
            ("zombie-run", [zombie.pid])
        ]
    finally:
        zombie.wait()


def test_a_run_with_an_unknown_pid_is_never_failed(instance):
    started_run(instance, "unknown-pid", None)
    assert fail_runs_without_a_process(instance, "killed") == []
    assert instance.get_run_by_id("unknown-pid").status == dg.DagsterRunStatus.STARTED


def test_only_an_instance_keeping_its_runs_in_sqlite_has_every_run_on_this_machine(instance):
    assert runs_stored_on_this_machine(instance) is True
    # An ephemeral (in-memory) instance's runs may live in other processes: never declared dead.
    assert runs_stored_on_this_machine(dg.DagsterInstance.ephemeral()) is False
