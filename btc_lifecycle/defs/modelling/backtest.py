"""The backtest asset: could anyone trade the newest model's calls, after costs?"""

import base64
import math
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from btc_lifecycle.adapters.feature_store import read_features
from btc_lifecycle.config import Settings
from btc_lifecycle.defs.automation import UPDATE_AFTER_UPSTREAM
from btc_lifecycle.defs.modelling.assets import GROUP, HORIZON_PARAM, MODEL, trading_costs
from btc_lifecycle.defs.partitions import WHOLE_HISTORY
from btc_lifecycle.modelling.backtest import MODEL_STRATEGIES, STRATEGIES, Backtest, backtest_out_of_sample
from btc_lifecycle.resources import FeatureStoreResource, ModelRegistryResource


@dg.asset(
    group_name=GROUP,
    **WHOLE_HISTORY,
    deps=[MODEL],
    automation_condition=UPDATE_AFTER_UPSTREAM,
    kinds={"numpy", "plotly", "pdf"},
    description="The newest model's walk-forward out-of-sample calls traded with and without costs (config: "
    "costs): strategies against buy and hold and flat, break-even, a verdict, and the model report PDF.",
)
def backtest(
    context: dg.AssetExecutionContext,
    feature_store: FeatureStoreResource,
    model_registry: ModelRegistryResource,
    settings: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    # Imported here: plotly, kaleido and weasyprint would slow every load of the code location.
    from btc_lifecycle.modelling.walk_forward import HELDOUT_BLOCK
    from btc_lifecycle.reporting.model_report import ModelReportFacts, build_model_report

    model_event = context.instance.get_latest_materialization_event(MODEL)
    if model_event is None or "model_version" not in model_event.asset_materialization.metadata:
        raise dg.Failure("no model version to backtest yet: materialize the model asset first (make run does)")
    version = str(model_event.asset_materialization.metadata["model_version"].value)
    registry = model_registry.registry()
    trained = registry.trained_version(version)
    calls, run_id = trained.out_of_sample, trained.run_id
    horizon = int(trained.params.get(HORIZON_PARAM, 1))
    with feature_store.get_connection() as conn:
        features = read_features(conn, settings.ingest.series, start=calls["open_time"].min())
    result = backtest_out_of_sample(
        calls,
        trained.threshold_evidence,
        features,
        trading_costs(settings),
        horizon=horizon,
        interval=settings.ingest.interval,
    )
    facts = ModelReportFacts(
        model_name=registry.model_name,
        model_version=version,
        alias=trained.alias,
        decision=trained.decision,
        promotion_reason=trained.promotion_reason,
        gate_p_value=trained.gate_p_value,
        gate_metric=trained.params.get("gate_metric", "log_loss"),
        overall=run_metrics(trained.metrics, "", calls.loc[calls["block"] != HELDOUT_BLOCK]),
        heldout=run_metrics(trained.metrics, "heldout_", calls.loc[calls["block"] == HELDOUT_BLOCK]),
        generated_at=datetime.now(UTC),
    )
    report = build_model_report(
        result,
        facts,
        settings.report_dir,
        settings.report.keep_last,
        now=datetime.now(UTC),
    )
    registry.log_backtest(run_id, backtest_metrics(result), {"backtest": report.pdf_path})
    context.log.info(f"model version {version}: {result.verdict}")
    chart = base64.b64encode(report.image_paths[0].read_bytes()).decode()
    return dg.MaterializeResult(
        metadata={
            "verdict": dg.MetadataValue.text(result.verdict),
            "model_version": dg.MetadataValue.int(int(version)),
            "mlflow_run_id": dg.MetadataValue.text(run_id),
            "pdf": dg.MetadataValue.path(str(report.pdf_path)),
            "backtest": dg.MetadataValue.md(markdown_table(result)),
            "equity_curves": dg.MetadataValue.md(f"![equity curves](data:image/png;base64,{chart})"),
            "candles": dg.MetadataValue.int(result.candles),
            "horizon_candles": dg.MetadataValue.int(horizon),
            "cost_a_side_bps": dg.MetadataValue.float(result.costs.side_bps),
            **{
                f"{name}_net_total_return": dg.MetadataValue.float(result.strategies[name].net.total_return)
                for name in STRATEGIES
            },
            **{
                f"{name}_break_even_side_bps": dg.MetadataValue.float(result.strategies[name].break_even_side_bps)
                for name in MODEL_STRATEGIES
            },
        }
    )


def run_metrics(logged: dict[str, float], prefix: str, calls: pd.DataFrame) -> dict:
    """Each model's logged metrics (``<prefix><model>_<metric>``) with the candles they were scored on."""
    from btc_lifecycle.modelling.metrics import METRIC_NAMES, ClassificationMetrics
    from btc_lifecycle.modelling.walk_forward import MODEL_NAMES

    return {
        model: ClassificationMetrics(
            **{metric: logged.get(f"{prefix}{model}_{metric}", math.nan) for metric in METRIC_NAMES},
            rows=len(calls),
            up_share=float(calls["target"].mean()) if len(calls) else math.nan,
        )
        for model in MODEL_NAMES
    }


def backtest_metrics(result: Backtest) -> dict[str, float]:
    """Flat numbers for the model's MLflow run: ``backtest_<strategy>_<gross|net>_<measure>``."""
    metrics = {}
    for row in result.table().to_dict("records"):
        prefix = f"backtest_{row.pop('strategy')}_{row.pop('costs')}"
        metrics.update({f"{prefix}_{key}": float(value) for key, value in row.items()})
    metrics["backtest_cost_a_side_bps"] = result.costs.side_bps
    metrics["backtest_edge_bps_a_candle"] = result.strategies["long_short"].mean_gross_bps
    return metrics


def markdown_table(result: Backtest) -> str:
    """The backtest table for the UI: every strategy, before and after costs."""
    rows = [
        "| strategy | costs | total return | a year | Sharpe | max drawdown | turnover | trades | hit rate | "
        "break-even bps a side | break-even hit rate |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result.table().to_dict("records"):
        hit = row["break_even_hit_rate"]
        rows.append(
            f"| {row['strategy']} | {row['costs']} | {row['total_return']:+.2%} | {row['annualised_return']:+.1%} | "
            f"{row['sharpe']:.2f} | {row['max_drawdown']:.2%} | {row['turnover']:.0f} | {row['trades']} | "
            f"{_or_dash(row['hit_rate'], '.3f')} | {_or_dash(row['break_even_side_bps'], '.2f')} | "
            f"{'unreachable' if hit > 1 else _or_dash(hit, '.3f')} |"
        )
    return "\n".join([*rows, "", result.verdict])


def _or_dash(value: float, spec: str) -> str:
    """A number, or a dash where there is none (a strategy that never trades has no hit rate)."""
    return "–" if math.isnan(value) else format(value, spec)
