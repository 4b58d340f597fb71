"""Runs whose process is gone (SIGKILL, out of memory, a lost database) while the instance still
holds them as started: marked failed, their pool slots freed. Dagster's run monitoring cannot
see them: the default run launcher has no run worker health check, and ``dagster asset
materialize`` runs without a launcher."""

from __future__ import annotations

import dagster as dg

from btc_lifecycle.production.processes import start_time


def runs_stored_on_this_machine(instance: dg.DagsterInstance) -> bool:
    """Whether the instance keeps its runs in SQLite (``dagster.yaml``'s storage): then every run
    lives on this machine, and a pid that is gone here is a dead run."""
    return not instance.is_ephemeral and instance.get_ref().run_storage_data.class_name == "SqliteRunStorage"


def started_runs_without_a_process(instance: dg.DagsterInstance) -> list[tuple[dg.DagsterRun, list[int]]]:
    """The started runs whose every process (the pids of their RUN_START events) is gone or a
    zombie, with those pids; a run with an unknown pid, or any live one, is left out."""
    orphaned = []
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)
        pids = {entry.dagster_event.pid for entry in starts if entry.dagster_event is not None}
        if pids and None not in pids and all(start_time(pid) is None for pid in pids):
            orphaned.append((run, sorted(pids)))
    return orphaned


def fail_runs_without_a_process(instance: dg.DagsterInstance, reason: str) -> list[str]:
    """Mark failed the started runs whose process is gone, saying ``reason``, and free their pool
    slots (a killed run would hold the 'duckdb' slot for ever); their ids."""
    failed = []
    for run, pids in started_runs_without_a_process(instance):
        gone = f"the run's process (pid {', '.join(map(str, pids))}) is gone and its end was never recorded"
        instance.report_run_failed(run, f"{gone}: {reason}")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        failed.append(run.run_id)
    return failed
