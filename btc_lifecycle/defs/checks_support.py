"""What the data checks share: which days a run wrote, and a check result from an outcome."""

import dagster as dg
import pandas as pd

from btc_lifecycle.adapters.feature_store import last_open_time
from btc_lifecycle.defs.partitions import run_window
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.quality import CheckOutcome


def judged_window(context: dg.AssetCheckExecutionContext, conn, series: CandleSeries):
    """The [start, end) of the days the run wrote; run on its own, the newest stored day."""
    window = run_window(dict(context.run.tags))
    if window is not None:
        return window
    newest = last_open_time(conn, series)
    day = (newest if newest is not None else pd.Timestamp.now(tz="UTC")).floor("D")
    return day, day + pd.Timedelta(days=1)


def check_result(
    outcome: CheckOutcome,
    window,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    check_name: str | None = None,
    asset_key: dg.AssetKey | None = None,
) -> dg.AssetCheckResult:
    """The result of one check; a multi-asset check names which (``check_name``, ``asset_key``)."""
    start, end = window
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=outcome.passed,
        severity=severity,
        description=outcome.description,
        metadata={"judged_from": start.isoformat(), "judged_until": end.isoformat(), **outcome.metadata},
    )
