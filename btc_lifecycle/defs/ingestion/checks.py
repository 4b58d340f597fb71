"""Checks on the candles, judged on the days the run wrote: bad keys or prices stop what is
downstream (blocking); long gaps and a stale newest candle are warnings."""

import dagster as dg
import pandas as pd

from btc_lifecycle.adapters.feature_store import last_open_time, read_candles
from btc_lifecycle.config import Settings
from btc_lifecycle.defs.checks_support import check_result, judged_window
from btc_lifecycle.defs.ingestion.assets import LABELED_CANDLES, RAW_CANDLES, FetchFacts
from btc_lifecycle.domain.candles import interval_ms
from btc_lifecycle.domain.quality import fresh, gaps_within, labels_match, ohlc_consistent, unique_keys
from btc_lifecycle.resources import FeatureStoreResource


def _judged_candles(context, feature_store: FeatureStoreResource, settings: Settings, table: str):
    """The window the run wrote and the candles of ``table`` in it."""
    series = settings.ingest.series
    with feature_store.get_connection() as conn:
        window = judged_window(context, conn, series)
        candles = read_candles(conn, table, series.symbol, series.interval, window[0], window[1])
    return window, candles


# The four judge the same days of the same table: one step reads them once (a step per check
# cost Dagster's per-step overhead four times over in every run).
RAW_CANDLES_CHECKS = [
    dg.AssetCheckSpec(
        "raw_candles_unique_keys",
        asset=RAW_CANDLES,
        blocking=True,
        description="No candle appears twice for one open time in the days written.",
    ),
    dg.AssetCheckSpec(
        "raw_candles_ohlc_consistent",
        asset=RAW_CANDLES,
        blocking=True,
        description="Every candle has low ≤ open, close ≤ high, positive finite prices and a volume ≥ 0.",
    ),
    dg.AssetCheckSpec(
        "raw_candles_gaps",
        asset=RAW_CANDLES,
        description="No gap between candles in the days written is longer than ingest.max_gap_minutes (a "
        "warning: an outage, or a market with minutes that have no trade).",
    ),
    dg.AssetCheckSpec(
        "raw_candles_fresh",
        asset=RAW_CANDLES,
        description="The newest stored candle closed at most ingest.max_lag_minutes before the exchange's "
        "clock at the latest ingest (a warning).",
    ),
]


@dg.multi_asset_check(specs=RAW_CANDLES_CHECKS, can_subset=True)
def raw_candles_checks(
    context: dg.AssetCheckExecutionContext, feature_store: FeatureStoreResource, settings: dg.ResourceParam[Settings]
):
    """The checks selected for this run (all four in a graph run; one when a person runs one)."""
    ingest = settings.ingest
    window, candles = _judged_candles(context, feature_store, settings, ingest.table)
    selected = {key.name for key in context.selected_asset_check_keys}

    def freshness():
        event = context.instance.get_latest_materialization_event(RAW_CANDLES)
        facts = FetchFacts.from_metadata(event.asset_materialization.metadata) if event else None
        with feature_store.get_connection() as conn:  # the newest stored, whichever days were written
            newest = last_open_time(conn, ingest.series)
        now = pd.Timestamp(facts.exchange_time) if facts else pd.Timestamp.now(tz="UTC")
        return fresh(newest, now, ingest.interval, ingest.max_lag_minutes)

    judges = {
        "raw_candles_unique_keys": lambda: (unique_keys(candles["open_time"]), dg.AssetCheckSeverity.ERROR),
        "raw_candles_ohlc_consistent": lambda: (ohlc_consistent(candles), dg.AssetCheckSeverity.ERROR),
        "raw_candles_gaps": lambda: (
            gaps_within(candles["open_time"], ingest.interval, ingest.max_gap_minutes),
            dg.AssetCheckSeverity.WARN,
        ),
        "raw_candles_fresh": lambda: (freshness(), dg.AssetCheckSeverity.WARN),
    }
    for spec in RAW_CANDLES_CHECKS:
        if spec.name in selected:
            outcome, severity = judges[spec.name]()
            yield check_result(outcome, window, severity, check_name=spec.name, asset_key=RAW_CANDLES)


@dg.asset_check(
    asset=LABELED_CANDLES,
    blocking=True,
    description="The stored labels of the days written equal labels recomputed from their candles "
    "(and the previous day's last one).",
)
def labels_recompute(
    context: dg.AssetCheckExecutionContext, feature_store: FeatureStoreResource, settings: dg.ResourceParam[Settings]
) -> dg.AssetCheckResult:
    series = settings.ingest.series
    step = pd.Timedelta(milliseconds=interval_ms(series.interval))
    with feature_store.get_connection() as conn:  # one connection: the window and both reads
        window = judged_window(context, conn, series)
        labeled = read_candles(conn, series.labeled_table, series.symbol, series.interval, window[0], window[1])
        # The minute before the window from the candle table, as labeled_candles read it (it
        # depends on raw_candles' previous day): that day's labels may be written later, or at once.
        previous = read_candles(conn, series.table, series.symbol, series.interval, window[0] - step, window[0])
    return check_result(labels_match(labeled, series.interval, context=previous), window)
