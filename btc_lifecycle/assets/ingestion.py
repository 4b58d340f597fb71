"""Ingestion assets: raw candles from the exchange, their labels, and what each ingest did."""

import json
import os
from datetime import UTC, datetime

import dagster as dg

from btc_lifecycle.adapters.feature_store import last_open_time, read_candles, replace_labeled_candles, upsert_candles
from btc_lifecycle.config import Settings
from btc_lifecycle.domain.ingestion import fetch_start, label_summary, store_summary
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.resources import CandleExchangeResource, FeatureStoreResource

GROUP = "ingestion"
PREVIEW_ROWS = 10


def _candle_metadata(summary: dict) -> dict[str, dg.MetadataValue]:
    return {
        "total_rows": dg.MetadataValue.int(summary["total_rows"]),
        "first_candle": dg.MetadataValue.text(summary["first_candle"] or "none"),
        "last_candle": dg.MetadataValue.text(summary["last_candle"] or "none"),
        "missing_minutes": dg.MetadataValue.int(summary["missing_minutes"]),
    }


@dg.asset(
    group_name=GROUP,
    pool="duckdb",
    kinds={"ccxt", "duckdb"},
    description="BTC/USDT candles from Binance (or the replay exchange) via ccxt, upserted into DuckDB.",
)
def raw_candles(
    context: dg.AssetExecutionContext,
    exchange: CandleExchangeResource,
    feature_store: FeatureStoreResource,
    settings: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    ingest = settings.ingest
    series = ingest.series
    client = exchange.client(context.log)
    with feature_store.get_connection() as conn:
        last_stored = last_open_time(conn, series)
    now = client.server_time()
    since = fetch_start(last_stored, now, ingest.interval, ingest.backfill_days)
    context.log.info(f"fetching {series.symbol} {series.interval} candles from {since.isoformat()} ({exchange.source})")
    fetched = client.fetch_closed_candles(series.symbol, series.interval, since, ingest.limit)
    with feature_store.get_connection() as conn:
        new_rows = upsert_candles(conn, series, fetched.candles) if len(fetched.candles) else 0
        stored = read_candles(conn, series.table, series.symbol, series.interval)["open_time"]
    summary = store_summary(stored, series.interval)
    context.log.info(
        f"stored {new_rows} new candles in {fetched.pages} pages with {fetched.retries} retries; "
        f"{summary['total_rows']} in total"
    )
    return dg.MaterializeResult(
        metadata={
            "new_rows": dg.MetadataValue.int(new_rows),
            **_candle_metadata(summary),
            "pages": dg.MetadataValue.int(fetched.pages),
            "retries": dg.MetadataValue.int(fetched.retries),
            "forming_candles_dropped": dg.MetadataValue.int(fetched.forming_dropped),
            "duplicates_dropped": dg.MetadataValue.int(fetched.duplicates_dropped),
            "retry_reasons": dg.MetadataValue.json(fetched.retry_reasons),
            "complete": dg.MetadataValue.bool(fetched.complete),
            "stopped_at": dg.MetadataValue.text(
                fetched.stopped_at.isoformat() if fetched.stopped_at is not None else "none"
            ),
            "exchange_time": dg.MetadataValue.text(fetched.server_time.isoformat()),
            "source": dg.MetadataValue.text(exchange.source),
            "table": dg.MetadataValue.text(f"{settings.feature_db_path}:{series.table}"),
        }
    )


@dg.asset(
    group_name=GROUP,
    pool="duckdb",
    deps=[raw_candles],
    kinds={"duckdb", "pandas"},
    description="Raw candles with price_increase_label (close above the previous minute's close).",
)
def labeled_candles(
    context: dg.AssetExecutionContext,
    feature_store: FeatureStoreResource,
    settings: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    series = settings.ingest.series
    with feature_store.get_connection() as conn:
        candles = read_candles(conn, series.table, series.symbol, series.interval)
        labeled = label_candles(candles, series.interval)
        replace_labeled_candles(conn, series, labeled)
    summary = store_summary(labeled["open_time"], series.interval)
    labels = label_summary(labeled)
    preview = labeled.tail(PREVIEW_ROWS)[
        ["open_time", "open", "high", "low", "close", "volume", "price_increase_label"]
    ]
    return dg.MaterializeResult(
        metadata={
            **_candle_metadata(summary),
            **{
                name: dg.MetadataValue.float(value) if isinstance(value, float) else dg.MetadataValue.int(value)
                for name, value in labels.items()
            },
            "latest_candles": dg.MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "no candles"),
        }
    )


@dg.asset(
    group_name=GROUP,
    pool="duckdb",
    deps=[raw_candles, labeled_candles],
    kinds={"json"},
    description="What the latest ingest did (new rows, totals, range, gaps), also in ingestion_stats.json.",
)
def ingestion_stats(
    context: dg.AssetExecutionContext,
    feature_store: FeatureStoreResource,
    settings: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    series = settings.ingest.series
    ingest_event = context.instance.get_latest_materialization_event(raw_candles.key)
    ingest_metadata = ingest_event.asset_materialization.metadata if ingest_event else {}
    with feature_store.get_connection() as conn:
        labeled = read_candles(conn, series.labeled_table, series.symbol, series.interval)
    stats = {
        "run_id": context.run_id,
        "ingest_run_id": ingest_event.run_id if ingest_event else None,
        "generated_at": datetime.now(UTC).isoformat(),
        "source": _metadata_value(ingest_metadata, "source"),
        "symbol": series.symbol,
        "interval": series.interval,
        "table": series.table,
        "new_rows": _metadata_value(ingest_metadata, "new_rows", 0),
        "retries": _metadata_value(ingest_metadata, "retries", 0),
        "retry_reasons": _metadata_value(ingest_metadata, "retry_reasons", {}),
        "pages": _metadata_value(ingest_metadata, "pages", 0),
        "duplicates_dropped": _metadata_value(ingest_metadata, "duplicates_dropped", 0),
        "forming_candles_dropped": _metadata_value(ingest_metadata, "forming_candles_dropped", 0),
        "complete": _metadata_value(ingest_metadata, "complete", True),
        **store_summary(labeled["open_time"], series.interval),
        **label_summary(labeled),
    }
    path = settings.ingestion_stats_path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)  # readers never see a half-written file
    return dg.MaterializeResult(
        metadata={
            "new_rows": dg.MetadataValue.int(stats["new_rows"]),
            **_candle_metadata(stats),
            "retries": dg.MetadataValue.int(stats["retries"]),
            "ingest_run_id": dg.MetadataValue.text(stats["ingest_run_id"] or "none"),
            "path": dg.MetadataValue.path(str(path)),
            "stats": dg.MetadataValue.json(stats),
        }
    )


def _metadata_value(metadata: dict, name: str, default=None):
    entry = metadata.get(name)
    return default if entry is None else entry.value
