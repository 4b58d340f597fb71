"""The drift report and its checks: is the champion still looking at the world it learned?"""

from datetime import datetime, timezone

import dagster as dg

from btc_lifecycle.assets.modelling import features, model, predictions, read_features, read_predictions
from btc_lifecycle.config import Settings
from btc_lifecycle.resources import FeatureStoreResource, ModelRegistryResource

GROUP = "monitoring"
DATA_DRIFT_CHECK = "data_drift"
PERFORMANCE_CHECK = "realized_performance"
DRIFT_CHECKS = (DATA_DRIFT_CHECK, PERFORMANCE_CHECK)


def _check_result(name: str, outcome) -> dg.AssetCheckResult:
    """A failed check is an ERROR; a skipped one passes with the reason in its description."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=outcome.passed is not False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata={"skipped": outcome.skipped, **outcome.metadata},
    )


@dg.asset(
    group_name=GROUP,
    pool="duckdb",
    deps=[features, model, predictions],
    kinds={"evidently", "html"},
    description="evidently report: the champion's reference window against the most recent candles, and realized performance.",
    check_specs=[
        dg.AssetCheckSpec(DATA_DRIFT_CHECK, asset="drift_report", description="Share of drifted monitored columns is at most the configured threshold."),
        dg.AssetCheckSpec(PERFORMANCE_CHECK, asset="drift_report", description="Realized log loss is within the margin of the champion's held-out log loss."),
    ],
)
def drift_report(
    context: dg.AssetExecutionContext,
    feature_store: FeatureStoreResource,
    mlflow: ModelRegistryResource,
    settings: dg.ResourceParam[Settings],
):
    from btc_lifecycle.modelling.walk_forward import predict_up_probability
    from btc_lifecycle.monitoring import evaluate_drift_share, evaluate_realized_performance, write_drift_report
    from btc_lifecycle.monitoring.drift import current_window, reference_window

    config = settings.monitoring
    registry = mlflow.registry()
    champion = registry.champion_info()
    if champion is None:
        raise dg.Failure("no champion model is registered yet: materialize the model asset first")
    with feature_store.get_connection() as conn:
        frame = read_features(conn, settings)
        live = read_predictions(conn, settings)
    trained_on = frame["open_time"].between(champion.trained_from, champion.trained_until)
    reference = reference_window(frame.loc[trained_on], config)
    current = current_window(frame, config)
    scorer = registry.load_champion()
    realized = None
    if live is not None:
        in_window = live.loc[(live["open_time"] >= current["open_time"].iloc[0]) & live["realized_label"].notna()]
        realized = (in_window["up_probability"].to_numpy(), in_window["realized_label"].astype(int).to_numpy())
    report = write_drift_report(
        reference,
        current,
        settings.report_dir,
        datetime.now(timezone.utc),
        config,
        reference_predictions=predict_up_probability(scorer, reference),
        current_predictions=predict_up_probability(scorer, current),
        realized_probabilities=realized[0] if realized else None,
        realized_outcomes=realized[1] if realized else None,
        keep_last=settings.report.keep_last,
    )
    drift_outcome = evaluate_drift_share(report.drift, config)
    performance_outcome = evaluate_realized_performance(
        report.realized, champion.heldout_metrics.get("xgboost_log_loss"), config
    )
    headline = report.headline
    context.log.info(f"drift: {drift_outcome.description}; performance: {performance_outcome.description}")
    yield dg.MaterializeResult(
        metadata={
            "html": dg.MetadataValue.path(str(report.html_path)),
            "summary_json": dg.MetadataValue.path(str(report.json_path)),
            "champion_version": dg.MetadataValue.int(int(champion.version)),
            "drift_share": dg.MetadataValue.float(report.drift.drift_share),
            "drifted_columns": dg.MetadataValue.text(", ".join(report.drift.drifted_columns) or "none"),
            "drift_scores": dg.MetadataValue.md(_score_table(report.drift, config)),
            "reference_window": dg.MetadataValue.text(f"{reference['open_time'].iloc[0].isoformat()} .. {reference['open_time'].iloc[-1].isoformat()}"),
            "current_window": dg.MetadataValue.text(f"{current['open_time'].iloc[0].isoformat()} .. {current['open_time'].iloc[-1].isoformat()}"),
            "realized_labels": dg.MetadataValue.int(report.realized.n if report.realized else 0),
            "realized_roc_auc": dg.MetadataValue.float(_number(report.realized.roc_auc if report.realized else None)),
            "realized_log_loss": dg.MetadataValue.float(_number(report.realized.log_loss if report.realized else None)),
            "headline": dg.MetadataValue.json(headline),
        }
    )
    yield _check_result(DATA_DRIFT_CHECK, drift_outcome)
    yield _check_result(PERFORMANCE_CHECK, performance_outcome)


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _score_table(drift, config) -> str:
    rows = [f"| column | {config.stattest} distance | drifted (≥ {config.stattest_threshold}) |", "|---|---|---|"]
    for name, column in drift.per_column.items():
        rows.append(f"| {name} | {column.score:.3f} | {'yes' if column.drifted else 'no'} |")
    return "\n".join(rows)
