"""Checks on the candles, judged on the days the run wrote: bad keys or prices stop what is
downstream (blocking); long gaps and a stale newest candle are warnings."""

import dagster as dg
import pandas as pd

from btc_lifecycle.adapters.feature_store import last_open_time, read_candles
from btc_lifecycle.config import Settings
from btc_lifecycle.defs.checks_support import check_result, judged_window
from btc_lifecycle.defs.ingestion.assets import FetchFacts
from btc_lifecycle.defs.markets import MarketAssets, main_market
from btc_lifecycle.domain.candles import interval_ms
from btc_lifecycle.domain.quality import fresh, gaps_within, labels_match, ohlc_consistent, unique_keys
from btc_lifecycle.resources import FeatureStoreResource


def ingestion_checks(settings: Settings, at: MarketAssets | None = None) -> list[dg.AssetChecksDefinition]:
    """The checks on one market's raw and labeled candles (the main market's unless ``at``
    names another)."""
    at = at or main_market(settings)
    return [_raw_candles_checks(at), _labels_recompute(at)]


def _raw_candles_specs(raw_candles: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The four judge the same days of the same table: one step reads them once (a step per check
    cost Dagster's per-step overhead four times over in every run)."""
    return [
        dg.AssetCheckSpec(
            "raw_candles_unique_keys",
            asset=raw_candles,
            blocking=True,
            description="No candle appears twice for one open time in the days written.",
        ),
        dg.AssetCheckSpec(
            "raw_candles_ohlc_consistent",
            asset=raw_candles,
            blocking=True,
            description="Every candle has low ≤ open, close ≤ high, positive finite prices and a volume ≥ 0.",
        ),
        dg.AssetCheckSpec(
            "raw_candles_gaps",
            asset=raw_candles,
            description="No gap between candles in the days written is longer than ingest.max_gap_minutes (a "
            "warning: an outage, or a market with minutes that have no trade).",
        ),
        dg.AssetCheckSpec(
            "raw_candles_fresh",
            asset=raw_candles,
            description="The newest stored candle closed at most ingest.max_lag_minutes before the exchange's "
            "clock at the latest ingest (a warning).",
        ),
    ]


def _raw_candles_checks(at: MarketAssets) -> dg.AssetChecksDefinition:
    raw_candles, series = at.key("raw_candles"), at.market.series
    specs = _raw_candles_specs(raw_candles)

    @dg.multi_asset_check(specs=specs, can_subset=True, name="_".join([*at.key_prefix, "raw_candles_checks"]))
    def raw_candles_checks(
        context: dg.AssetCheckExecutionContext,
        feature_store: FeatureStoreResource,
        settings: dg.ResourceParam[Settings],
    ):
        """The checks selected for this run (all four in a graph run; one when a person runs one)."""
        ingest = settings.ingest
        with feature_store.get_connection() as conn:
            window = judged_window(context, conn, series)
            candles = read_candles(conn, series.table, series.symbol, series.interval, window[0], window[1])
        selected = {key.name for key in context.selected_asset_check_keys}

        def freshness():
            event = context.instance.get_latest_materialization_event(raw_candles)
            facts = FetchFacts.from_metadata(event.asset_materialization.metadata) if event else None
            with feature_store.get_connection() as conn:  # the newest stored, whichever days were written
                newest = last_open_time(conn, series)
            now = pd.Timestamp(facts.exchange_time) if facts else pd.Timestamp.now(tz="UTC")
            return fresh(newest, now, series.interval, ingest.max_lag_minutes)

        judges = {
            "raw_candles_unique_keys": lambda: (unique_keys(candles["open_time"]), dg.AssetCheckSeverity.ERROR),
            "raw_candles_ohlc_consistent": lambda: (ohlc_consistent(candles), dg.AssetCheckSeverity.ERROR),
            "raw_candles_gaps": lambda: (
                gaps_within(candles["open_time"], series.interval, ingest.max_gap_minutes),
                dg.AssetCheckSeverity.WARN,
            ),
            "raw_candles_fresh": lambda: (freshness(), dg.AssetCheckSeverity.WARN),
        }
        for spec in specs:
            if spec.name in selected:
                outcome, severity = judges[spec.name]()
                yield check_result(outcome, window, severity, check_name=spec.name, asset_key=raw_candles)

    return raw_candles_checks


def _labels_recompute(at: MarketAssets) -> dg.AssetChecksDefinition:
    series = at.market.series

    @dg.asset_check(
        asset=at.key("labeled_candles"),
        blocking=True,
        description="The stored labels of the days written equal labels recomputed from their candles "
        "(and the previous day's last one).",
    )
    def labels_recompute(
        context: dg.AssetCheckExecutionContext, feature_store: FeatureStoreResource
    ) -> dg.AssetCheckResult:
        step = pd.Timedelta(milliseconds=interval_ms(series.interval))
        with feature_store.get_connection() as conn:  # one connection: the window and both reads
            window = judged_window(context, conn, series)
            labeled = read_candles(conn, series.labeled_table, series.symbol, series.interval, window[0], window[1])
            # The minute before the window from the candle table, as labeled_candles read it (it
            # depends on raw_candles' previous day): that day's labels may be written later, or at once.
            previous = read_candles(conn, series.table, series.symbol, series.interval, window[0] - step, window[0])
        return check_result(labels_match(labeled, series.interval, context=previous), window)

    return labels_recompute
