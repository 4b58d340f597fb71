"""The candle series' daily UTC partitions, and how a day reads its neighbours.

A day is the unit a person backfills, repairs or inspects in the UI. Ranges of days run as one
run (``BackfillPolicy.single_run()``): one paginated fetch and one transaction per range.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from btc_lifecycle.config import Settings

SINGLE_RUN = dg.BackfillPolicy.single_run()
# An unpartitioned asset that reads the stored history: single-run, so one `--partition-range` run
# takes the whole graph, and in the "duckdb" pool (the DuckDB file takes one writer at a time).
WHOLE_HISTORY = {"backfill_policy": SINGLE_RUN, "pool": "duckdb"}
# A day's first label compares with the previous day's last close.
WITH_PREVIOUS_DAY = dg.TimeWindowPartitionMapping(start_offset=-1)
# A day's features read the previous day's last hour (windows, gap filling), and its last row's
# target is the next day's first candle: that day may not exist yet.
WITH_NEIGHBOUR_DAYS = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=1, allow_nonexistent_upstream_partitions=True
)

# Run tags Dagster sets on a run of one partition, or of a range of them.
PARTITION_TAG = "dagster/partition"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
DAY_FORMAT = "%Y-%m-%d"


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """One partition per UTC day from ``history_start``; today's partial day is one too
    (``end_offset=1``), so the routine ingest keeps it current."""
    return dg.DailyPartitionsDefinition(
        start_date=settings.ingest.history_start, end_offset=1, timezone="UTC", fmt=DAY_FORMAT
    )


def day_writes_pool(settings: Settings) -> str | None:
    """The pool of the steps that write days: the DuckDB file takes one writer at a time
    ("duckdb", limit 1 in dagster.yaml); the Parquet store writes each day to its own files, so
    runs of different days take no pool and write at the same time."""
    return "duckdb" if settings.feature_store_backend == "duckdb" else None


def range_tags(first: str, last: str) -> dict[str, str]:
    """The tags of one run over the days ``first`` .. ``last`` (what ``--partition-range`` sets)."""
    return dict(zip(RANGE_TAGS, (first, last), strict=True))


def window_of(context: dg.AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The [start, end) UTC times of the day or days this run materializes."""
    window = context.partition_time_window
    return pd.Timestamp(window.start).tz_convert("UTC"), pd.Timestamp(window.end).tz_convert("UTC")


def run_window(tags: dict[str, str]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The [start, end) of the days a run targeted, from its tags; None for an unpartitioned run.

    Checks on the partitioned assets judge exactly the days the run just wrote.
    """
    if PARTITION_TAG in tags:
        first = last = tags[PARTITION_TAG]
    elif all(tag in tags for tag in RANGE_TAGS):
        first, last = (tags[tag] for tag in RANGE_TAGS)
    else:
        return None
    start = pd.Timestamp(first, tz="UTC")
    return start, pd.Timestamp(last, tz="UTC") + pd.Timedelta(days=1)
