"""The Dagster UI, as a person uses it: see the lineage and the automation, backfill every replayed
day, repair one day."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from btc_lifecycle_tests.e2e.workspace import Workspace

pytestmark = pytest.mark.e2e

BACKFILL_TIMEOUT_SECONDS = 360  # the daemon runs the backfill's runs one layer of the graph at a time
RUN_TIMEOUT_SECONDS = 120
PRICES = ["open", "high", "low", "close", "volume"]


def lineage_asset_names() -> list[str]:
    """Every asset of the code location, from the Definitions object itself (the graph grows).

    Read from the asset definitions it was given: resolving the repository would bind it to
    whichever Dagster instance an earlier test left current. Checks are asset definitions too
    (their keys name the checked asset), hence the set.
    """
    from btc_lifecycle.definitions import defs

    return sorted({key.path[-1] for assets in defs.assets for key in assets.keys})


def test_a_backfill_of_the_replayed_days_stores_every_candle_and_one_day_can_be_redone(
    dagster_dev, ui, generated_candles
):
    expected_assets = lineage_asset_names()  # while dagster dev starts
    candles_per_day = generated_candles.groupby(generated_candles["open_time"].dt.strftime("%Y-%m-%d")).size()
    days = list(candles_per_day.index)  # 2024-01-01 .. 2024-01-03: two full days and two hours
    dagster_dev.wait_until_ready()

    # The routine's schedules and the drift sensor are on the automation page.
    ui.automation_shows(["ingestion_schedule", "report_schedule", "monitoring_schedule", "retrain_on_drift_sensor"])
    ui.screenshot("automation")

    # The lineage shows every asset.
    lineage = ui.open_global_lineage()
    lineage.expand_all_groups()
    assert lineage.missing_assets(expected_assets) == [], f"graph labels: {lineage.asset_labels()}"
    ui.screenshot("lineage-expanded")

    # "Materialize all…" asks for partitions; the replayed file's days, typed as a range, make a backfill.
    dialog = lineage.materialize_all()
    dialog.select(f"[{days[0]}...{days[-1]}]", count=len(days))
    ui.screenshot("backfill-dialog")
    backfill = dialog.launch_backfill()
    status = backfill.wait_for_end(BACKFILL_TIMEOUT_SECONDS)
    ui.screenshot("backfill-finished")
    progress = {name: backfill.asset_progress(name) for name in expected_assets}
    assert status == "Succeeded", (
        f"backfill {backfill.backfill_id} ended {status}: {progress}\n{dagster_dev.log_tail()}"
    )
    assert backfill.listed_assets() == expected_assets
    assert all(row.startswith("100% completed") for row in progress.values()), progress
    # Every replayed day of raw_candles, and no other, was targeted and succeeded.
    assert progress["raw_candles"] == f"100% completed {len(days)} 0 {len(days)} 0"

    # The replay clock stands at the file's end, so every candle is closed and stored.
    stats = ui.open_asset("ingestion_stats")
    total_rows = stats.row_count()
    ui.screenshot("ingestion-stats-row-count")
    assert total_rows == len(generated_candles)
    before = stored_tables(dagster_dev.workspace)
    assert stored_per_day(before["candles"]) == candles_per_day.to_dict()

    # Re-materializing one day from raw_candles' partitions view rewrites that day only.
    day = days[1]
    partitions = ui.open_partitions("raw_candles")
    assert partitions.count_of("Materialized") == len(days)
    other_day_run = partitions.select(days[0]).latest_run()
    dialog = partitions.materialize()
    dialog.select(day, count=1)
    ui.screenshot("one-day-dialog")
    run = dialog.launch_run()
    status = run.wait_for_end(RUN_TIMEOUT_SECONDS)
    assert status == "SUCCESS", f"run {run.run_id} ended {status} ({run.step_counts()}):\n{dagster_dev.log_tail()}"

    redone = ui.open_partitions("raw_candles").select(day)
    assert redone.latest_run() == run.run_id[:8]
    assert redone.metadata_int("dagster/row_count") == candles_per_day[day]
    ui.screenshot("one-day-rematerialized")
    other_day = ui.open_partitions("raw_candles").select(days[0])
    assert other_day.latest_run() == other_day_run  # the other days keep their run

    after = stored_tables(dagster_dev.workspace)
    assert stored_per_day(after["candles"]) == candles_per_day.to_dict()
    for table, frame in after.items():
        others_before, others_after = (rows[rows["day"] != day] for rows in (before[table], frame))
        pd.testing.assert_frame_equal(others_after, others_before, obj=f"{table} outside {day}")
    redone_rows = after["candles"][after["candles"]["day"] == day].reset_index(drop=True)
    generated_day = generated_candles[generated_candles["open_time"].dt.strftime("%Y-%m-%d") == day]
    pd.testing.assert_frame_equal(redone_rows[PRICES], generated_day[PRICES].reset_index(drop=True), check_dtype=False)
    # The labels, read from the previous minute across the re-written day, are unchanged.
    pd.testing.assert_frame_equal(after["candles_labeled"], before["candles_labeled"])


def stored_tables(workspace: Workspace, timeout_seconds: float = 30) -> dict[str, pd.DataFrame]:
    """The raw and labeled candles in the feature store, each with its UTC ``day``.

    DuckDB lets one process write: while a Dagster process holds the file, a read-only open
    fails, so it is retried (bounded) until the lock is free.
    """
    import duckdb

    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            tables = {table: workspace.stored(table) for table in ("candles", "candles_labeled")}
            break
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    for frame in tables.values():
        frame["day"] = frame["open_time"].dt.strftime("%Y-%m-%d")
    return tables


def stored_per_day(candles: pd.DataFrame) -> dict[str, int]:
    return candles.groupby("day").size().to_dict()
