"""Checks on the candles, judged on the days the run wrote: bad keys or prices stop what is
downstream (blocking); long gaps and a stale newest candle are warnings."""

import dagster as dg

from btc_lifecycle.adapters.feature_store import last_open_time, read_candles
from btc_lifecycle.config import Settings
from btc_lifecycle.defs.checks_support import check_result, judged_window
from btc_lifecycle.defs.ingestion.assets import FetchFacts, labeled_candles, raw_candles
from btc_lifecycle.domain.candles import interval_ms
from btc_lifecycle.domain.quality import fresh, gaps_within, labels_match, ohlc_consistent, unique_keys
from btc_lifecycle.lazy import lazy_module
from btc_lifecycle.resources import FeatureStoreResource

pd = lazy_module("pandas")  # imported on first use: the code location loads without pandas


def _judged_candles(context, feature_store: FeatureStoreResource, settings: Settings, table: str, before: int = 0):
    """The window the run wrote and the candles of ``table`` in it (with ``before`` earlier ones)."""
    series = settings.ingest.series
    with feature_store.get_connection() as conn:
        window = judged_window(context, conn, series)
        step = pd.Timedelta(milliseconds=interval_ms(series.interval))
        candles = read_candles(conn, table, series.symbol, series.interval, window[0] - step * before, window[1])
    return window, candles


@dg.asset_check(
    asset=raw_candles,
    blocking=True,
    description="No candle appears twice for one open time in the days written.",
)
def raw_candles_unique_keys(
    context: dg.AssetCheckExecutionContext, feature_store: FeatureStoreResource, settings: dg.ResourceParam[Settings]
) -> dg.AssetCheckResult:
    window, candles = _judged_candles(context, feature_store, settings, settings.ingest.table)
    return check_result(unique_keys(candles["open_time"]), window)


@dg.asset_check(
    asset=raw_candles,
    blocking=True,
    description="Every candle has low ≤ open, close ≤ high, positive finite prices and a volume ≥ 0.",
)
def raw_candles_ohlc_consistent(
    context: dg.AssetCheckExecutionContext, feature_store: FeatureStoreResource, settings: dg.ResourceParam[Settings]
) -> dg.AssetCheckResult:
    window, candles = _judged_candles(context, feature_store, settings, settings.ingest.table)
    return check_result(ohlc_consistent(candles), window)


@dg.asset_check(
    asset=raw_candles,
    description="No gap between candles in the days written is longer than ingest.max_gap_minutes (a warning: "
    "an outage, or a market with minutes that have no trade).",
)
def raw_candles_gaps(
    context: dg.AssetCheckExecutionContext, feature_store: FeatureStoreResource, settings: dg.ResourceParam[Settings]
) -> dg.AssetCheckResult:
    ingest = settings.ingest
    window, candles = _judged_candles(context, feature_store, settings, ingest.table)
    outcome = gaps_within(candles["open_time"], ingest.interval, ingest.max_gap_minutes)
    return check_result(outcome, window, dg.AssetCheckSeverity.WARN)


@dg.asset_check(
    asset=raw_candles,
    description="The newest stored candle closed at most ingest.max_lag_minutes before the exchange's clock "
    "at the latest ingest (a warning).",
)
def raw_candles_fresh(
    context: dg.AssetCheckExecutionContext, feature_store: FeatureStoreResource, settings: dg.ResourceParam[Settings]
) -> dg.AssetCheckResult:
    ingest = settings.ingest
    event = context.instance.get_latest_materialization_event(raw_candles.key)
    facts = FetchFacts.from_metadata(event.asset_materialization.metadata) if event else None
    with feature_store.get_connection() as conn:
        newest = last_open_time(conn, ingest.series)
        window = judged_window(context, conn, ingest.series)
    now = pd.Timestamp(facts.exchange_time) if facts else pd.Timestamp.now(tz="UTC")
    return check_result(fresh(newest, now, ingest.interval, ingest.max_lag_minutes), window, dg.AssetCheckSeverity.WARN)


@dg.asset_check(
    asset=labeled_candles,
    blocking=True,
    description="The stored labels of the days written equal labels recomputed from their candles "
    "(and the previous day's last one).",
)
def labels_recompute(
    context: dg.AssetCheckExecutionContext, feature_store: FeatureStoreResource, settings: dg.ResourceParam[Settings]
) -> dg.AssetCheckResult:
    series = settings.ingest.series
    window, labeled = _judged_candles(context, feature_store, settings, series.labeled_table, before=1)
    judged = labeled.loc[labeled["open_time"] >= window[0]]
    context_rows = labeled.loc[labeled["open_time"] < window[0]]
    return check_result(labels_match(judged, series.interval, context=context_rows), window)
