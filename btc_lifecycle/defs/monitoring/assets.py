"""The drift report and its checks: is the champion still looking at the world it learned?"""

from datetime import UTC, datetime

import dagster as dg

from btc_lifecycle.adapters.feature_store import read_features, read_predictions
from btc_lifecycle.config import Settings
from btc_lifecycle.defs.automation import UPDATE_AFTER_UPSTREAM
from btc_lifecycle.defs.markets import MarketAssets, main_market
from btc_lifecycle.defs.modelling.assets import float_or_nan, load_scoring_champion, trading_costs
from btc_lifecycle.defs.partitions import WHOLE_HISTORY
from btc_lifecycle.monitoring.checks import COIN_LOG_LOSS
from btc_lifecycle.resources import FeatureStoreResource, ModelRegistryResource

GROUP = "monitoring"
DATA_DRIFT_CHECK = "data_drift"
PERFORMANCE_CHECK = "realized_performance"
DRIFT_CHECKS = (DATA_DRIFT_CHECK, PERFORMANCE_CHECK)
DRIFT_REPORT = dg.AssetKey("drift_report")  # the main market's


def drift_check_keys(drift_report: dg.AssetKey = DRIFT_REPORT) -> list[dg.AssetCheckKey]:
    """The checks a failure of which retrains the model of ``drift_report``'s market."""
    return [dg.AssetCheckKey(drift_report, name) for name in DRIFT_CHECKS]


DRIFT_CHECK_KEYS = drift_check_keys()


def _check_result(name: str, outcome, candles_until, **extra) -> dg.AssetCheckResult:
    """A failed check is an ERROR; a skipped one passes with the reason in its description.

    ``candles_until`` (the newest candle judged) lets the sensor's cool-down count market time;
    ``extra`` is more metadata for a person reading the check.
    """
    return dg.AssetCheckResult(
        check_name=name,
        passed=outcome.passed is not False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata={"skipped": outcome.skipped, "candles_until": candles_until.isoformat(), **outcome.metadata, **extra},
    )


def drift_report_asset(settings: Settings, at: MarketAssets | None = None) -> dg.AssetsDefinition:
    """The drift report of one market's champion (the main market's unless ``at`` names another),
    with its two checks."""
    at = at or main_market(settings)

    @dg.asset(
        **at.placed(GROUP),
        **WHOLE_HISTORY,
        deps=[at.key("features"), at.key("model"), at.key("predictions")],
        automation_condition=UPDATE_AFTER_UPSTREAM,
        kinds={"evidently", "html"},
        description="evidently report: the champion's reference window against the most recent candles, and "
        "realized performance.",
        check_specs=[
            dg.AssetCheckSpec(
                DATA_DRIFT_CHECK,
                asset=at.key("drift_report"),
                description="Share of drifted monitored columns is at most the configured threshold.",
            ),
            dg.AssetCheckSpec(
                PERFORMANCE_CHECK,
                asset=at.key("drift_report"),
                description=(
                    "On the candles it actually predicted since it was last validated, the champion's "
                    "realized log loss is within the margin of its constant prior's."
                ),
            ),
        ],
    )
    def drift_report(
        context: dg.AssetExecutionContext,
        feature_store: FeatureStoreResource,
        model_registry: ModelRegistryResource,
        settings: dg.ResourceParam[Settings],
    ):
        yield from report_drift(context, feature_store, model_registry, settings, at)

    return drift_report


def report_drift(
    context: dg.AssetExecutionContext,
    feature_store: FeatureStoreResource,
    model_registry: ModelRegistryResource,
    settings: Settings,
    at: MarketAssets,
):
    """The drift report's materialization, then its two check results."""
    from btc_lifecycle.modelling.walk_forward import predict_up_probability
    from btc_lifecycle.monitoring.checks import evaluate_drift_share, evaluate_realized_performance
    from btc_lifecycle.monitoring.drift import current_window, reference_window
    from btc_lifecycle.monitoring.performance import (
        ONLINE,
        SOURCE_COLUMN,
        judged_predictions,
        realized_by_version,
        realized_net_returns,
        with_online_predictions,
    )
    from btc_lifecycle.monitoring.report import write_drift_report
    from btc_lifecycle.serving.prediction_log import read_online_predictions

    config = settings.monitoring
    market = at.market
    registry = model_registry.registry(settings.model_name_of(market))
    champion = registry.champion_info()
    if champion is None:
        raise dg.Failure(
            f"no champion model is registered yet for {registry.model_name}: materialize the model asset first"
        )
    with feature_store.get_connection() as conn:
        frame = read_features(conn, market.series)
        live = read_predictions(conn, market.series)
    # The online service's answers too (its own SQLite log: it never opens DuckDB), judged alike.
    served = read_online_predictions(settings.online_predictions_path, market.symbol, market.interval)
    live = with_online_predictions(live, served, frame)
    validated_from, validated_until = champion.validated_window
    # The reference is the world the champion was last validated on: its own held-out window at
    # promotion, or a later challenger's when a retraining kept it (docs/ml-method.md).
    reference = reference_window(frame.loc[frame["open_time"] <= validated_until], config)
    current = current_window(frame, config)
    scorer = load_scoring_champion(registry)
    window = judged_predictions(live, current["open_time"].iloc[0], champion.version, validated_until)
    by_version = realized_by_version(window, registry.prior_up_shares(window["model_version"].unique()))
    judged = by_version.get(champion.version)
    earned = realized_net_returns(window, frame, trading_costs(settings), settings.horizon_candles_of(market))
    by_version_table = _version_table(by_version, earned, trading_costs(settings))
    champion_rows = window.loc[window["model_version"].astype(str) == champion.version]
    champion_rows = champion_rows.loc[champion_rows["realized_label"].notna()]
    report = write_drift_report(
        reference,
        current,
        settings.report_dir_of(market),
        datetime.now(UTC),
        config,
        reference_predictions=predict_up_probability(scorer, reference),
        current_predictions=predict_up_probability(scorer, current),
        realized_probabilities=champion_rows["up_probability"].to_numpy(),
        realized_outcomes=champion_rows["realized_label"].astype(int).to_numpy(),
        keep_last=settings.report.keep_last,
    )
    drift_outcome = evaluate_drift_share(report.drift, config)
    performance_outcome = evaluate_realized_performance(judged, config, champion.version)
    headline = report.headline
    context.log.info(f"drift: {drift_outcome.description}; performance: {performance_outcome.description}")
    yield dg.MaterializeResult(
        metadata={
            "html": dg.MetadataValue.path(str(report.html_path)),
            "summary_json": dg.MetadataValue.path(str(report.json_path)),
            "champion_version": dg.MetadataValue.int(int(champion.version)),
            "champion_beats_prior": dg.MetadataValue.text(champion.tags.get("beats_prior", "unknown")),
            "champion_validated_window": dg.MetadataValue.text(
                f"{validated_from.isoformat()} .. {validated_until.isoformat()}"
            ),
            "drift_share": dg.MetadataValue.float(report.drift.drift_share),
            "drifted_columns": dg.MetadataValue.text(", ".join(report.drift.drifted_columns) or "none"),
            "drift_scores": dg.MetadataValue.md(_score_table(report.drift, config)),
            "reference_window": dg.MetadataValue.text(
                f"{reference['open_time'].iloc[0].isoformat()} .. {reference['open_time'].iloc[-1].isoformat()}"
            ),
            "current_window": dg.MetadataValue.text(
                f"{current['open_time'].iloc[0].isoformat()} .. {current['open_time'].iloc[-1].isoformat()}"
            ),
            "realized_labels": dg.MetadataValue.int(judged.performance.n if judged else 0),
            "realized_roc_auc": dg.MetadataValue.float(float_or_nan(judged.performance.roc_auc if judged else None)),
            "realized_log_loss": dg.MetadataValue.float(float_or_nan(judged.performance.log_loss if judged else None)),
            "realized_prior_log_loss": dg.MetadataValue.float(float_or_nan(judged.prior_log_loss if judged else None)),
            "realized_net_return": dg.MetadataValue.float(float_or_nan(earned.get(champion.version))),
            "realized_by_version": dg.MetadataValue.md(by_version_table),
            "online_predictions_logged": dg.MetadataValue.int(0 if served is None else len(served)),
            "online_predictions_judged": dg.MetadataValue.int(
                int((champion_rows[SOURCE_COLUMN] == ONLINE).sum()) if SOURCE_COLUMN in champion_rows else 0
            ),
            "headline": dg.MetadataValue.json(headline),
        }
    )
    candles_until = current["open_time"].iloc[-1]
    yield _check_result(DATA_DRIFT_CHECK, drift_outcome, candles_until)
    yield _check_result(
        PERFORMANCE_CHECK,
        performance_outcome,
        candles_until,
        realized_net_return=float_or_nan(earned.get(champion.version)),
        realized_by_version=dg.MetadataValue.md(by_version_table),
    )


def _score_table(drift, config) -> str:
    rows = [f"| column | {config.stattest} distance | drifted (≥ {config.stattest_threshold}) |", "|---|---|---|"]
    for name, column in drift.per_column.items():
        rows.append(f"| {name} | {column.score:.3f} | {'yes' if column.drifted else 'no'} |")
    return "\n".join(rows)


def _version_table(by_version, earned: dict[str, float], costs) -> str:
    rows = [
        "| version | realized | log loss | prior | majority | coin | excess over prior | p (beats prior) | "
        f"net return after {costs.side_bps:g} bps a side |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for version, judged in by_version.items():
        p_value = judged.versus_prior.p_value if judged.versus_prior else float("nan")
        rows.append(
            f"| {version} | {judged.performance.n} | {judged.performance.log_loss:.4f} | "
            f"{judged.prior_log_loss:.4f} | {judged.majority_log_loss:.4f} | {COIN_LOG_LOSS:.4f} | "
            f"{judged.excess_over_prior:+.4f} | {p_value:.3g} | {earned.get(version, float('nan')):+.2%} |"
        )
    return "\n".join(rows) if by_version else "no realized predictions in the current window"
