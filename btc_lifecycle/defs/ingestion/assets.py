"""Ingestion assets: raw candles from the exchange and their labels, one UTC day per partition,
and what the latest ingest did."""

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd

from btc_lifecycle.adapters.candle_days import DaysNotStarted, fetch_days, store_days
from btc_lifecycle.adapters.feature_store import (
    read_candles,
    replace_labeled_between,
    stored_label_summary,
    stored_summary,
)
from btc_lifecycle.config import Settings
from btc_lifecycle.defs.automation import UPDATE_AFTER_UPSTREAM
from btc_lifecycle.defs.markets import MarketAssets, main_market
from btc_lifecycle.defs.metadata import CANDLE_SCHEMA, LABELED_SCHEMA, table_metadata
from btc_lifecycle.defs.partitions import (
    SINGLE_RUN,
    WHOLE_HISTORY,
    WITH_PREVIOUS_DAY,
    daily_partitions,
    day_writes_pool,
    window_of,
)
from btc_lifecycle.domain.archives import Archive, ArchiveError
from btc_lifecycle.domain.candles import interval_ms
from btc_lifecycle.domain.ingestion import day_summaries, days_table
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.resources import CandleExchangeResource, FeatureStoreResource

if TYPE_CHECKING:
    from btc_lifecycle.adapters.archives import ArchivedDays

GROUP = "ingestion"
PREVIEW_ROWS = 10
# The main market's keys (``defs/markets.py``): what the model, the reports and the routine read.
RAW_CANDLES = dg.AssetKey("raw_candles")
LABELED_CANDLES = dg.AssetKey("labeled_candles")
INGESTION_STATS = dg.AssetKey("ingestion_stats")


@dataclass(frozen=True)
class FetchFacts:
    """What one raw_candles materialization fetched: written as its metadata, read back by
    ingestion_stats through ``from_metadata``, so writer and reader share one list of names."""

    source: str
    new_rows: int
    removed_rows: int
    pages: int
    retries: int
    duplicates_dropped: int
    forming_candles_dropped: int
    complete: bool
    exchange_time: str  # the exchange's clock when the fetch started (ISO)
    archived_days: int = 0  # days read from Binance's archives rather than paged from the API
    retry_reasons: dict[str, int] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, object]:
        return {**asdict(self), "retry_reasons": dg.MetadataValue.json(self.retry_reasons)}

    @classmethod
    def from_metadata(cls, metadata: dict) -> "FetchFacts | None":
        values = {name: metadata[name].value for name in cls.__dataclass_fields__ if name in metadata}
        return cls(**values) if len(values) == len(cls.__dataclass_fields__) else None


def ingestion_assets(settings: Settings, at: MarketAssets | None = None) -> list[dg.AssetsDefinition]:
    """raw_candles, labeled_candles and ingestion_stats of one market (the main one unless ``at``
    names another), the first two partitioned by the settings' days. The schedules fetch the
    newest days (``defs/schedules.py``); a person backfills older ones."""
    at = at or main_market(settings)
    return [*daily_candle_assets(settings, at), _ingestion_stats_asset(settings, at)]


def daily_candle_assets(settings: Settings, at: MarketAssets | None = None) -> list[dg.AssetsDefinition]:
    """raw_candles and labeled_candles of one market (the main one unless ``at`` names another)."""
    at = at or main_market(settings)
    series = at.market.series
    days = daily_partitions(settings)
    write_pool = day_writes_pool(settings)

    @dg.asset(
        **at.placed(GROUP),
        partitions_def=days,
        backfill_policy=SINGLE_RUN,
        # The newest candles: stale when no ingest succeeded for a while (the routine is off, or failing).
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=timedelta(hours=1), warn_window=timedelta(minutes=15)
        ),
        pool=write_pool,
        kinds={"ccxt", "duckdb"},
        description=(
            f"{series.symbol} {series.interval} candles of one UTC day from {at.market.exchange} (or the replay "
            "exchange) via ccxt; materializing a day replaces exactly that day in the feature store."
        ),
        metadata={"dagster/column_schema": CANDLE_SCHEMA},
    )
    def raw_candles(
        context: dg.AssetExecutionContext,
        exchange: CandleExchangeResource,
        feature_store: FeatureStoreResource,
        settings: dg.ResourceParam[Settings],
    ) -> dg.MaterializeResult:
        ingest = settings.ingest
        source = exchange.source if at.main else exchange.source_of(at.market.exchange)
        start, end = window_of(context)
        context.log.info(f"fetching {series.symbol} {series.interval} candles {start} .. {end} ({source})")

        def progress(archive: Archive, number: int, total: int) -> None:
            context.log.info(f"archive {number}/{total}: {archive.name}")

        try:
            fetched = fetch_days(
                exchange.client(context.log, at.market.exchange),
                series,
                start,
                end,
                ingest.limit,
                exchange.archives(at.market.exchange),
                context.log,
                progress,
            )
        except DaysNotStarted as error:
            raise dg.Failure(str(error), allow_retries=False) from None
        except ArchiveError as error:
            raise dg.Failure(f"{error}. Nothing stored was changed.", allow_retries=False) from None
        with feature_store.get_connection() as conn:  # the store is locked only for the write
            stored = store_days(conn, series, fetched, start, end)
        write, ccxt = stored.candles, fetched.exchange
        days = day_summaries(fetched.candles["open_time"], start, min(end, fetched.server_time), series.interval)
        archived = fetched.archived
        facts = FetchFacts(
            source=source,
            new_rows=write.new,
            removed_rows=write.removed,
            pages=ccxt.pages,
            retries=ccxt.retries,
            duplicates_dropped=ccxt.duplicates_dropped,
            forming_candles_dropped=ccxt.forming_dropped,
            complete=ccxt.complete,
            exchange_time=fetched.server_time.isoformat(),
            archived_days=len(archived.sources) if archived else 0,
            retry_reasons=ccxt.retry_reasons,
        )
        for name in stored.revised_archives:
            context.log.warning(f"{name} was republished (its checksum changed): its days were replaced")
        context.log.info(
            f"{write.rows} candles in {len(days)} day(s): {write.new} new, {write.removed} removed; "
            f"{facts.archived_days} day(s) from archives, {ccxt.pages} pages from the exchange, {ccxt.retries} retries"
        )
        return dg.MaterializeResult(
            metadata={
                **table_metadata(settings, series.table, write.rows),
                **facts.to_metadata(),
                **_archive_metadata(archived, stored.revised_archives),
                "missing_minutes": sum(day["missing_minutes"] for day in days),
                "days": dg.MetadataValue.md(days_table(days)),
                "first_candle": _iso(fetched.candles["open_time"].min()),
                "last_candle": _iso(fetched.candles["open_time"].max()),
                "stopped_at": ccxt.stopped_at.isoformat() if ccxt.stopped_at is not None else "none",
            }
        )

    @dg.asset(
        **at.placed(GROUP),
        partitions_def=days,
        backfill_policy=SINGLE_RUN,
        automation_condition=UPDATE_AFTER_UPSTREAM,
        pool=write_pool,
        deps=[dg.AssetDep(at.key("raw_candles"), partition_mapping=WITH_PREVIOUS_DAY)],
        kinds={"duckdb", "pandas"},
        description=(
            "A day's raw candles with price_increase_label (close above the previous minute's close); "
            "the day's first label reads the previous day's last candle."
        ),
        metadata={"dagster/column_schema": LABELED_SCHEMA},
    )
    def labeled_candles(
        context: dg.AssetExecutionContext,
        feature_store: FeatureStoreResource,
        settings: dg.ResourceParam[Settings],
    ) -> dg.MaterializeResult:
        start, end = window_of(context)
        previous = pd.Timedelta(milliseconds=interval_ms(series.interval))
        with feature_store.get_connection() as conn:
            candles = read_candles(conn, series.table, series.symbol, series.interval, start - previous, end)
            labeled = label_candles(candles, series.interval)
            labeled = labeled.loc[labeled["open_time"] >= start].reset_index(drop=True)
            write = replace_labeled_between(conn, series, labeled, start, end)
        labels = labeled["price_increase_label"]
        preview = labeled.tail(PREVIEW_ROWS)[
            ["open_time", "open", "high", "low", "close", "volume", "price_increase_label"]
        ]
        return dg.MaterializeResult(
            metadata={
                **table_metadata(settings, series.labeled_table, write.rows),
                "labeled_rows": int(labels.notna().sum()),
                "unlabeled_rows": int(labels.isna().sum()),
                "first_candle": _iso(labeled["open_time"].min()),
                "last_candle": _iso(labeled["open_time"].max()),
                "latest_candles": dg.MetadataValue.md(
                    preview.to_markdown(index=False) if len(preview) else "no candles"
                ),
            }
        )

    return [raw_candles, labeled_candles]


def _ingestion_stats_asset(settings: Settings, at: MarketAssets) -> dg.AssetsDefinition:
    series = at.market.series
    stats_path = settings.ingestion_stats_file(at.market)

    @dg.asset(
        **at.placed(GROUP),
        **WHOLE_HISTORY,
        deps=[at.key("raw_candles"), at.key("labeled_candles")],
        automation_condition=UPDATE_AFTER_UPSTREAM,
        kinds={"json"},
        description="What the latest ingest did, and the stored series' totals, range and gaps; also "
        f"{stats_path.name}.",
    )
    def ingestion_stats(
        context: dg.AssetExecutionContext,
        feature_store: FeatureStoreResource,
    ) -> dg.MaterializeResult:
        ingest_event = context.instance.get_latest_materialization_event(at.key("raw_candles"))
        ingest = ingest_event.asset_materialization if ingest_event else None
        facts = FetchFacts.from_metadata(ingest.metadata) if ingest else None
        with feature_store.get_connection() as conn:
            store = stored_summary(conn, series.labeled_table, series)
            labels = stored_label_summary(conn, series)
        stats = {
            "run_id": context.run_id,
            "ingest_run_id": ingest_event.run_id if ingest_event else None,
            "ingest_partition": ingest.partition if ingest else None,
            "generated_at": datetime.now(UTC).isoformat(),
            "exchange": at.market.exchange,
            "symbol": series.symbol,
            "interval": series.interval,
            "table": series.table,
            **(asdict(facts) if facts else asdict(FetchFacts("unknown", 0, 0, 0, 0, 0, 0, True, "none"))),
            **store,
            **labels,
        }
        stats_path.parent.mkdir(parents=True, exist_ok=True)
        partial = stats_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, stats_path)  # readers never see a half-written file
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": stats["total_rows"],
                "new_rows": stats["new_rows"],
                "first_candle": stats["first_candle"] or "none",
                "last_candle": stats["last_candle"] or "none",
                "missing_minutes": stats["missing_minutes"],
                "retries": stats["retries"],
                "ingest_run_id": stats["ingest_run_id"] or "none",
                "path": dg.MetadataValue.path(str(stats_path)),
                "stats": dg.MetadataValue.json(stats),
            }
        )

    return ingestion_stats


def _archive_metadata(archived: "ArchivedDays | None", revised: list[str]) -> dict[str, object]:
    """Which archives the days came from (name and SHA-256), which were republished since the
    last ingest of their days, and the fallbacks taken."""
    used = sorted(
        {source.archive.name: source.sha256 for source in (archived.sources if archived else {}).values()}.items()
    )
    table = "| archive | sha256 |\n|---|---|\n" + "".join(f"| {name} | `{digest}` |\n" for name, digest in used)
    return {
        "archives": dg.MetadataValue.md(table if used else "no archive: every day came from the exchange"),
        "revised_archives": dg.MetadataValue.json(revised),
        "archive_fallbacks": dg.MetadataValue.json(archived.notes if archived else []),
    }


def _iso(moment) -> str:
    return "none" if moment is None or moment != moment else moment.isoformat()
