"""The ingestion report: one PDF a person opens after every ingest."""

import json
from datetime import UTC, datetime

import dagster as dg

from btc_lifecycle.adapters.feature_store import read_candles
from btc_lifecycle.config import Settings
from btc_lifecycle.defs.markets import MarketAssets, main_market
from btc_lifecycle.defs.partitions import WHOLE_HISTORY
from btc_lifecycle.domain.candles import find_gaps
from btc_lifecycle.domain.gaps import gap_fill_summary
from btc_lifecycle.resources import FeatureStoreResource

GROUP = "reporting"


def ingestion_report_asset(settings: Settings, at: MarketAssets | None = None) -> dg.AssetsDefinition:
    """The ingestion report of one market (the main one unless ``at`` names another)."""
    at = at or main_market(settings)

    @dg.asset(
        **at.placed(GROUP),
        **WHOLE_HISTORY,
        deps=[at.key("labeled_candles"), at.key("ingestion_stats")],
        kinds={"pdf", "plotly"},
        description=f"PDF of what came in for {at.market.symbol} on {at.market.exchange}: run facts, statistics, "
        "candlestick, label scatter, gaps.",
    )
    def ingestion_report(
        context: dg.AssetExecutionContext,
        feature_store: FeatureStoreResource,
        settings: dg.ResourceParam[Settings],
    ) -> dg.MaterializeResult:
        return report_ingestion(context, feature_store, settings, at)

    return ingestion_report


def report_ingestion(
    context: dg.AssetExecutionContext, feature_store: FeatureStoreResource, settings: Settings, at: MarketAssets
) -> dg.MaterializeResult:
    """Write the market's ingestion report from its labeled candles and its latest stats."""
    # Imported here: plotly, kaleido and weasyprint would slow every load of the code location.
    from btc_lifecycle.reporting import ReportFacts, build_ingestion_report

    series = at.market.series
    stats = json.loads(settings.ingestion_stats_file(at.market).read_text(encoding="utf-8"))
    with feature_store.get_connection() as conn:
        labeled = read_candles(conn, series.labeled_table, series.symbol, series.interval)
    facts = ReportFacts(
        source=stats.get("source") or "unknown",
        symbol=series.symbol,
        interval=series.interval,
        rows_new=int(stats["new_rows"]),
        rows_total=len(labeled),
        missing_minutes=int(stats["missing_minutes"]),
        gaps=find_gaps(labeled["open_time"], series.interval),
        generated_at=datetime.now(UTC),
        gap_policy=gap_fill_summary(labeled["open_time"], series.interval, settings.features.max_fill_minutes),
    )
    report = build_ingestion_report(labeled, facts, settings.report_dir_of(at.market), settings.report.keep_last)
    context.log.info(f"ingestion report written to {report.pdf_path} ({report.page_count} pages)")
    return dg.MaterializeResult(
        metadata={
            "pdf": dg.MetadataValue.path(str(report.pdf_path)),
            "pages": dg.MetadataValue.int(report.page_count),
            "rows": dg.MetadataValue.int(report.rows),
            "first_candle": dg.MetadataValue.text(report.first_candle.isoformat()),
            "last_candle": dg.MetadataValue.text(report.last_candle.isoformat()),
            "up_share": dg.MetadataValue.float(report.up_share),
            "tie_share": dg.MetadataValue.float(report.tie_share),
            "missing_minutes": dg.MetadataValue.int(report.missing_minutes),
            # The model's gap policy on these candles: filled as trade-less, or left as gaps.
            "max_fill_minutes": dg.MetadataValue.int(report.gap_policy.max_fill_minutes),
            "minutes_to_fill": dg.MetadataValue.int(report.gap_policy.minutes_filled),
            "gaps_to_fill": dg.MetadataValue.int(report.gap_policy.gaps_filled),
            "gaps_left_open": dg.MetadataValue.int(report.gap_policy.gaps_left_open),
            "minutes_in_open_gaps": dg.MetadataValue.int(report.gap_policy.minutes_left_open),
            "log_return_std": dg.MetadataValue.float(report.log_return_std),
            "images": dg.MetadataValue.json([str(path) for path in report.image_paths]),
            "summary": dg.MetadataValue.md(report.markdown_summary),
        }
    )
