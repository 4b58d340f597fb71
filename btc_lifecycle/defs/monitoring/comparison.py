"""The market comparison: every market's model, gate and realized performance side by side, as a
metadata table and a PDF page, from what the lineage recorded."""

import dagster as dg

from btc_lifecycle.config import Settings
from btc_lifecycle.defs.automation import UPDATE_AFTER_UPSTREAM
from btc_lifecycle.defs.markets import MarketAssets, all_markets
from btc_lifecycle.defs.monitoring.assets import drift_check_keys
from btc_lifecycle.monitoring.comparison import MarketStanding, comparison_frame, comparison_markdown
from btc_lifecycle.resources import ModelRegistryResource

GROUP = "monitoring"
# How far back the comparison looks for a training with numbers (an unchanged-inputs materialization has none).
TRAININGS_LOOKED_AT = 50


def market_comparison_asset(settings: Settings) -> dg.AssetsDefinition:
    """One asset over every configured market's model and drift report."""
    markets = all_markets(settings)

    @dg.asset(
        group_name=GROUP,
        deps=[at.key(name) for at in markets for name in ("model", "drift_report")],
        automation_condition=UPDATE_AFTER_UPSTREAM,
        kinds={"pdf"},
        description="Every market's walk-forward ROC AUC and log loss against its prior, the gate's decision and "
        "the champion's realized performance, side by side (also a PDF page).",
    )
    def market_comparison(
        context: dg.AssetExecutionContext,
        model_registry: ModelRegistryResource,
        settings: dg.ResourceParam[Settings],
    ) -> dg.MaterializeResult:
        from btc_lifecycle.reporting.market_comparison import write_comparison_report

        standings = [standing(context.instance, model_registry, settings, at) for at in markets]
        frame = comparison_frame(standings)
        pdf = write_comparison_report(frame, settings.report_dir, settings.report.keep_last)
        return dg.MaterializeResult(
            metadata={
                "comparison": dg.MetadataValue.md(comparison_markdown(frame)),
                "pdf": dg.MetadataValue.path(str(pdf)),
                "markets": dg.MetadataValue.int(len(frame)),
                "rows": dg.MetadataValue.json(
                    [{key: value for key, value in row.items() if value == value} for row in frame.to_dict("records")]
                ),
            }
        )

    return market_comparison


def standing(
    instance: dg.DagsterInstance, model_registry: ModelRegistryResource, settings: Settings, at: MarketAssets
) -> MarketStanding:
    """One market's row: its latest training and gate, its champion, its latest drift report."""
    market = at.market
    name = settings.model_name_of(market)
    champion = model_registry.registry(name).champion_info()
    models = _newest_metadata(instance, at.key("model"), TRAININGS_LOOKED_AT)
    trained = next((metadata for metadata in models if "walk_forward_roc_auc" in metadata), {})
    drift = next(iter(_newest_metadata(instance, at.key("drift_report"), 1)), {})
    failed = []
    for key in drift_check_keys(at.key("drift_report")):
        record = instance.get_latest_asset_check_evaluation_record(key)
        if record is not None and record.status.value == "FAILED":
            failed.append(key.name)
    return MarketStanding(
        market=f"{market.symbol} on {market.exchange}, {market.interval}",
        model_name=name,
        champion_version=int(champion.version) if champion else None,
        walk_forward_roc_auc=trained.get("walk_forward_roc_auc"),
        walk_forward_log_loss=trained.get("walk_forward_log_loss"),
        prior_log_loss=trained.get("baseline_prior_log_loss"),
        gate_decision=str(models[0]["decision"]) if models else "not trained",
        realized_labels=int(drift.get("realized_labels", 0)),
        realized_log_loss=drift.get("realized_log_loss"),
        realized_prior_log_loss=drift.get("realized_prior_log_loss"),
        realized_net_return=drift.get("realized_net_return"),
        drift_share=drift.get("drift_share"),
        failed_checks=tuple(failed),
    )


def _newest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, limit: int) -> list[dict]:
    """The metadata values of ``key``'s newest ``limit`` materializations, newest first."""
    records = instance.fetch_materializations(key, limit=limit).records
    return [
        {name: value.value for name, value in record.asset_materialization.metadata.items()}
        for record in records
        if record.asset_materialization
    ]
