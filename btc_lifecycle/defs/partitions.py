"""The candle series' daily UTC partitions, and how a day reads its neighbours.

A day is the unit a person backfills, repairs or inspects in the UI. Ranges of days run as one
run (``BackfillPolicy.single_run()``): one paginated fetch and one transaction per range, so a
30-day backfill costs what one loop over the exchange costs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from btc_lifecycle.config import project_settings

if TYPE_CHECKING:
    import pandas as pd

# Today's partial day is a partition too (end_offset=1): the routine ingest keeps it current.
DAILY = dg.DailyPartitionsDefinition(
    start_date=project_settings().ingest.history_start, end_offset=1, timezone="UTC", fmt="%Y-%m-%d"
)
SINGLE_RUN = dg.BackfillPolicy.single_run()
# The pool of the steps that write days: the DuckDB file takes one writer at a time ("duckdb",
# limit 1 in dagster.yaml); the Parquet store (FEATURE_STORE_BACKEND=parquet) writes each day to
# its own files, so runs of different days take no pool and write at the same time.
DAY_WRITES_POOL = "duckdb" if project_settings().feature_store_backend == "duckdb" else None
# A day's first label compares with the previous day's last close.
WITH_PREVIOUS_DAY = dg.TimeWindowPartitionMapping(start_offset=-1)
# A day's features read the previous day's last hour (windows, gap filling), and its last row's
# target is the next day's first candle: that day may not exist yet.
WITH_NEIGHBOUR_DAYS = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=1, allow_nonexistent_upstream_partitions=True
)

# Run tags Dagster sets on a run of one partition, or of a range of them.
_PARTITION_TAG = "dagster/partition"
_RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def window_of(context: dg.AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The [start, end) UTC times of the day or days this run materializes."""
    import pandas as pd

    window = context.partition_time_window
    return pd.Timestamp(window.start).tz_convert("UTC"), pd.Timestamp(window.end).tz_convert("UTC")


def run_window(tags: dict[str, str]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The [start, end) of the days a run targeted, from its tags; None for an unpartitioned run.

    Checks on the partitioned assets judge exactly the days the run just wrote.
    """
    import pandas as pd

    if _PARTITION_TAG in tags:
        first = last = tags[_PARTITION_TAG]
    elif all(tag in tags for tag in _RANGE_TAGS):
        first, last = (tags[tag] for tag in _RANGE_TAGS)
    else:
        return None
    start = DAILY.time_window_for_partition_key(first).start
    end = DAILY.time_window_for_partition_key(last).end
    return pd.Timestamp(start).tz_convert("UTC"), pd.Timestamp(end).tz_convert("UTC")
