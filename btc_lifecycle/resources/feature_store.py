"""The feature store as a Dagster resource: the DuckDB file, or day-partitioned Parquet."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from btc_lifecycle.production.processes import start_time

if TYPE_CHECKING:
    import duckdb

    from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection
    from btc_lifecycle.config import Settings


class FeatureStoreLocked(RuntimeError):
    """Another process kept the DuckDB file locked through every connection attempt."""


class FeatureStoreResource(dg.ConfigurableResource):
    """dagster-duckdb's ``DuckDBResource``, creating the store's folder and always closing the
    connection; duckdb is imported when a connection is opened, not when the code location loads.

    Same fields and connection as dagster-duckdb's (``custom_user_agent='dagster'``, 10 retries of
    a locked file with doubling waits, 0.1 s .. 51.2 s, about 100 s in all); after that the step
    fails with ``FeatureStoreLocked`` naming the file.
    """

    database: str = Field(description="Path to the DuckDB database; ':memory:' for an in-memory one.")
    connection_config: dict[str, Any] = Field(
        default={}, description="DuckDB connection configuration options (duckdb.connect's config)."
    )
    backend: str = Field(
        default="duckdb",
        description="'duckdb': the database file, one writer at a time; 'parquet': a file per table and "
        "UTC day under parquet_dir, queried by DuckDB, so runs of different days write at the same time.",
    )
    parquet_dir: str = Field(default="", description="The Parquet backend's folder.")

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureStoreResource:
        return cls(
            database=str(settings.feature_db_path),
            backend=settings.feature_store_backend,
            parquet_dir=str(settings.feature_store_parquet_dir),
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Here, not in a sensor: `make run` and `dagster asset materialize` run without a daemon,
        # and a slot held by a killed run would block them forever.
        if context.instance is not None:
            release_slots_of_dead_runs(context.instance, context.log)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection | ParquetStoreConnection]:
        if self.backend == "parquet":  # no lock to wait for: each write swaps its own days' files
            from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection

            with ParquetStoreConnection(self.parquet_dir) as conn:
                yield conn
            return
        import duckdb
        from dagster._utils.backoff import backoff

        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        # Opened as dagster-duckdb's DuckDBResource.get_connection opens it.
        try:
            conn = backoff(
                fn=duckdb.connect,
                retry_on=(RuntimeError, duckdb.IOException),
                kwargs={
                    "database": self.database,
                    "read_only": False,
                    "config": {"custom_user_agent": "dagster", **self.connection_config},
                },
                max_retries=10,
            )
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            raise FeatureStoreLocked(
                f"the feature store {self.database} stayed locked by another process through "
                f"10 connection attempts over about 100 s (DuckDB allows one writing process "
                f"per file; the 'duckdb' pool in dagster.yaml serializes the runs of one "
                f"Dagster instance): {error}"
            ) from error
        try:
            yield conn
        finally:
            conn.close()


def release_slots_of_dead_runs(instance: dg.DagsterInstance, log=None) -> list[str]:
    """Mark runs whose process is gone (SIGKILL, OOM) failed and free their pool slots.

    Without this a killed run holds the 'duckdb' pool slot forever and every later run waits
    ("Step blocked by limit for pool duckdb"). Only for a SQLite instance, whose runs all live
    on this machine, so a missing pid means a dead run.
    """
    if not _runs_stored_in_sqlite(instance):
        return []
    released = []
    for run, pids in started_runs_without_a_process(instance):
        message = f"the process of this run (pid {', '.join(map(str, pids))}) is gone: killed"
        instance.report_run_failed(run, message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
        if log is not None:
            log.warning(f"run {run.run_id}: {message}; marked failed and its pool slots freed")
    return released


def _runs_stored_in_sqlite(instance: dg.DagsterInstance) -> bool:
    """Whether the instance keeps its runs in SQLite (``dagster.yaml``'s storage, as its ref says):
    then every run lives on this machine. An ephemeral instance has no ref: its runs may be
    anywhere."""
    if instance.is_ephemeral:
        return False
    return instance.get_ref().run_storage_data.class_name == "SqliteRunStorage"


def started_runs_without_a_process(instance: dg.DagsterInstance) -> list[tuple[dg.DagsterRun, list[int]]]:
    """The runs ``instance`` holds as started whose every process (the pids of their RUN_START
    events) is gone or a zombie, with those pids. A run with an unknown pid, or any live one
    (ours, or a recycled pid), is left out: never fail a run that may still run."""
    orphaned = []
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)
        pids = {entry.dagster_event.pid for entry in starts if entry.dagster_event is not None}
        if pids and None not in pids and all(start_time(pid) is None for pid in pids):
            orphaned.append((run, sorted(pids)))
    return orphaned
