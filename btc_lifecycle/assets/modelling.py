"""Modelling assets: features, the tracked and registered model, and live predictions."""

from datetime import UTC, datetime

import dagster as dg

from btc_lifecycle.adapters.feature_store import read_candles, read_table, replace_table, table_exists
from btc_lifecycle.assets.ingestion import labeled_candles
from btc_lifecycle.config import Settings
from btc_lifecycle.domain.gaps import FILLED_COLUMN, GapFillSummary, gap_fill_summary
from btc_lifecycle.lazy import lazy_module
from btc_lifecycle.modelling.features import (
    EXCLUSION_REASONS,
    FEATURE_COLUMNS,
    TRAINABLE_COLUMN,
    compute_features,
    training_exclusions,
)
from btc_lifecycle.resources import FeatureStoreResource, ModelRegistryResource

pd = lazy_module("pandas")  # imported on first use: the code location loads without pandas

GROUP = "modelling"


def features_table(settings: Settings) -> str:
    return f"{settings.ingest.table}_features"


def predictions_table(settings: Settings) -> str:
    return f"{settings.ingest.table}_predictions"


def read_features(conn, settings: Settings) -> "pd.DataFrame":
    """The features table in time order."""
    return read_table(conn, features_table(settings)).sort_values("open_time").reset_index(drop=True)


def read_predictions(conn, settings: Settings) -> "pd.DataFrame | None":
    """The stored predictions, or None before the first run of the predictions asset."""
    table = predictions_table(settings)
    return read_table(conn, table) if table_exists(conn, table) else None


def mlflow_run_url(settings: Settings, run_id: str, experiment_id: str) -> str:
    return f"{settings.mlflow_ui_url}/#/experiments/{experiment_id}/runs/{run_id}"


@dg.asset(
    group_name=GROUP,
    pool="duckdb",
    deps=[labeled_candles],
    kinds={"duckdb", "pandas"},
    description="Stationary features known at each candle's close, and the next candle's direction as target; "
    "short gaps filled as trade-less minutes (features.max_fill_minutes).",
)
def features(
    context: dg.AssetExecutionContext,
    feature_store: FeatureStoreResource,
    settings: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    series = settings.ingest.series
    max_fill = settings.features.max_fill_minutes
    with feature_store.get_connection() as conn:
        candles = read_candles(conn, series.labeled_table, series.symbol, series.interval)
        frame = compute_features(candles, series.interval, max_fill_minutes=max_fill)
        replace_table(conn, features_table(settings), frame)
    trainable, filled = int(frame[TRAINABLE_COLUMN].sum()), int(frame[FILLED_COLUMN].sum())
    policy = gap_fill_summary(candles["open_time"], series.interval, max_fill)
    excluded = training_exclusions(frame, series.interval)
    context.log.info(
        f"{len(frame)} feature rows ({filled} filled trade-less minutes), {trainable} trainable; excluded: {excluded}"
    )
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(len(frame)),
            "stored_candles": dg.MetadataValue.int(len(candles)),
            "trainable_rows": dg.MetadataValue.int(trainable),
            "excluded_rows": dg.MetadataValue.int(len(frame) - trainable),
            **{f"excluded_{reason}": dg.MetadataValue.int(count) for reason, count in excluded.items()},
            "max_fill_minutes": dg.MetadataValue.int(max_fill),
            "filled_minutes": dg.MetadataValue.int(filled),
            "gaps_filled": dg.MetadataValue.int(policy.gaps_filled),
            "gaps_left_open": dg.MetadataValue.int(policy.gaps_left_open),
            "minutes_in_open_gaps": dg.MetadataValue.int(policy.minutes_left_open),
            "exclusions": dg.MetadataValue.md(_exclusions_table(excluded, policy)),
            "features": dg.MetadataValue.json(list(FEATURE_COLUMNS)),
            "first_candle": dg.MetadataValue.text(frame["open_time"].iloc[0].isoformat() if len(frame) else "none"),
            "last_candle": dg.MetadataValue.text(frame["open_time"].iloc[-1].isoformat() if len(frame) else "none"),
            "table": dg.MetadataValue.text(features_table(settings)),
        }
    )


def _exclusions_table(excluded: dict[str, int], policy: GapFillSummary) -> str:
    """Why rows are not trainable, and what the gap policy filled, for a person in the UI."""
    rows = ["| reason | rows | why |", "|---|---|---|"]
    rows += [f"| {reason} | {count} | {EXCLUSION_REASONS[reason]} |" for reason, count in excluded.items()]
    return "\n".join(
        [
            *rows,
            "",
            f"max_fill_minutes={policy.max_fill_minutes}: {policy.minutes_filled} trade-less minute(s) filled "
            f"in {policy.gaps_filled} gap(s); {policy.gaps_left_open} longer gap(s) left open "
            f"({policy.minutes_left_open} minute(s)).",
        ]
    )


@dg.asset(
    group_name=GROUP,
    pool="duckdb",
    deps=[features],
    kinds={"xgboost", "mlflow"},
    description=(
        "XGBoost direction model: walk-forward evaluation against baselines, MLflow run, registry and champion gate."
    ),
)
def model(
    context: dg.AssetExecutionContext,
    feature_store: FeatureStoreResource,
    mlflow: ModelRegistryResource,
    settings: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    from btc_lifecycle.modelling.walk_forward import (
        TooFewTrainableCandles,
        WalkForwardConfig,
        train_walk_forward,
    )

    with feature_store.get_connection() as conn:
        frame = read_features(conn, settings)
    model_config = settings.model
    if model_config.train_window_days is not None:
        frame = frame.loc[
            frame["open_time"] >= frame["open_time"].iloc[-1] - pd.Timedelta(days=model_config.train_window_days)
        ]
    config = WalkForwardConfig(
        interval=settings.ingest.interval,
        n_folds=model_config.n_folds,
        heldout_fraction=model_config.heldout_fraction,
    )
    registry = mlflow.registry()
    for run_id in registry.fail_abandoned_runs(lambda dagster_run_id: _dagster_run_alive(context, dagster_run_id)):
        context.log.warning(f"MLflow run {run_id} was left RUNNING by a killed Dagster run: marked FAILED")
    try:
        result = train_walk_forward(frame, config)
    except TooFewTrainableCandles as error:
        # A setting a person can change, not a crash: the counts and the knobs, without a traceback.
        raise dg.Failure(
            description=str(error),
            metadata={
                "block": error.what,
                "train_rows": error.train_rows,
                "test_rows": error.test_rows,
                "trainable_rows": error.trainable,
                "feature_rows": error.candles,
            },
            allow_retries=False,
        ) from None
    record = registry.log_training(
        result,
        dagster_run_id=context.run_id,
        margin=model_config.promotion_margin,
        alpha=model_config.promotion_alpha,
    )
    experiment_id = registry.experiment_id()
    overall, heldout = result.overall, result.heldout_metrics
    decision = record.decision
    context.log.info(f"model version {record.model_version} is {record.alias}: {decision.reason}")
    if not decision.serving_beats_prior:
        context.log.warning("the serving model does not beat the constant prior on the held-out window beyond noise")
    return dg.MaterializeResult(
        metadata={
            "mlflow_run_id": dg.MetadataValue.text(record.run_id),
            "mlflow_run": dg.MetadataValue.url(mlflow_run_url(settings, record.run_id, experiment_id)),
            "model_card": dg.MetadataValue.path(registry.artifact_uri(record.run_id, "model_card.html")),
            "model_version": dg.MetadataValue.int(int(record.model_version)),
            "alias": dg.MetadataValue.text(record.alias),
            "promoted": dg.MetadataValue.bool(decision.promote),
            "decision": dg.MetadataValue.text(decision.decision),
            "promotion_reason": dg.MetadataValue.text(decision.reason),
            "gate_p_value": dg.MetadataValue.float(float_or_nan(decision.numbers["p_value"])),
            "gate_improvement": dg.MetadataValue.float(float_or_nan(decision.numbers["improvement"])),
            "challenger_beats_prior": dg.MetadataValue.bool(decision.challenger_beats_prior),
            "serving_model_beats_prior": dg.MetadataValue.bool(decision.serving_beats_prior),
            "heldout_prior_log_loss": dg.MetadataValue.float(decision.prior_log_loss),
            "walk_forward_roc_auc": dg.MetadataValue.float(overall["xgboost"].roc_auc),
            "walk_forward_log_loss": dg.MetadataValue.float(overall["xgboost"].log_loss),
            "walk_forward_brier": dg.MetadataValue.float(overall["xgboost"].brier),
            "heldout_roc_auc": dg.MetadataValue.float(heldout["xgboost"].roc_auc),
            "heldout_log_loss": dg.MetadataValue.float(heldout["xgboost"].log_loss),
            "baseline_prior_log_loss": dg.MetadataValue.float(overall["prior"].log_loss),
            "baselines": dg.MetadataValue.md(_metrics_table(overall)),
            "training_rows": dg.MetadataValue.int(result.row_counts["final_train"]),
            "heldout_rows": dg.MetadataValue.int(result.row_counts["heldout"]),
            "training_range": dg.MetadataValue.text(
                f"{result.training_range[0].isoformat()} .. {result.training_range[1].isoformat()}"
            ),
            "data_end": dg.MetadataValue.text(result.heldout_range[1].isoformat()),
            "data_fingerprint": dg.MetadataValue.text(result.fingerprint),
            "training_seconds": dg.MetadataValue.float(round(result.training_seconds, 3)),
        }
    )


def load_scoring_champion(registry):
    """The champion, if it reads today's features; a Failure that says what to do otherwise."""
    champion = registry.load_champion()
    expected = list(getattr(champion, "feature_names_in_", FEATURE_COLUMNS))
    if expected != list(FEATURE_COLUMNS):
        raise dg.Failure(
            "the champion was trained on other features "
            f"({len(expected)} columns; this code computes {len(FEATURE_COLUMNS)}): materialize the "
            "model asset once (make run, or the UI) so that a model on today's features takes over"
        )
    return champion


def float_or_nan(value: float | None) -> float:
    """Metadata floats: a missing number is shown as NaN."""
    return float("nan") if value is None else float(value)


def _dagster_run_alive(context: dg.AssetExecutionContext, dagster_run_id: str) -> bool:
    if dagster_run_id == context.run_id:
        return True
    run = context.instance.get_run_by_id(dagster_run_id) if dagster_run_id else None
    return run is not None and not run.is_finished


def _metrics_table(by_model: dict) -> str:
    rows = ["| model | ROC AUC | log loss | Brier | accuracy | balanced accuracy |", "|---|---|---|---|---|---|"]
    for name, scores in by_model.items():
        rows.append(
            f"| {name} | {scores.roc_auc:.4f} | {scores.log_loss:.4f} | {scores.brier:.4f} | "
            f"{scores.accuracy:.4f} | {scores.balanced_accuracy:.4f} |"
        )
    return "\n".join(rows)


@dg.asset(
    group_name=GROUP,
    pool="duckdb",
    deps=[model, features],
    kinds={"xgboost", "duckdb"},
    description="The champion's probability that the next candle closes higher, joined with the truth once it arrives.",
)
def predictions(
    context: dg.AssetExecutionContext,
    feature_store: FeatureStoreResource,
    mlflow: ModelRegistryResource,
    settings: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    from btc_lifecycle.modelling.predictions import prediction_rows, rows_to_score, with_realized_labels
    from btc_lifecycle.modelling.walk_forward import predict_up_probability

    registry = mlflow.registry()
    champion = registry.champion_info()
    if champion is None:
        raise dg.Failure("no champion model is registered yet: materialize the model asset first")
    table = predictions_table(settings)
    with feature_store.get_connection() as conn:
        frame = read_features(conn, settings)
        stored = read_predictions(conn, settings)
        last_predicted = stored["open_time"].max() if stored is not None and len(stored) else None
        scorable = rows_to_score(frame, last_predicted, champion.heldout_start, settings.model.prediction_rows)
        new = prediction_rows(
            scorable,
            predict_up_probability(load_scoring_champion(registry), scorable) if len(scorable) else [],
            champion.version,
            pd.Timestamp(datetime.now(UTC)),
        )
        history = new if stored is None else stored if new.empty else pd.concat([stored, new], ignore_index=True)
        combined = with_realized_labels(history, frame)
        replace_table(conn, table, combined)
    realized = combined["realized_label"].notna()
    return dg.MaterializeResult(
        metadata={
            "new_predictions": dg.MetadataValue.int(len(new)),
            "total_predictions": dg.MetadataValue.int(len(combined)),
            "realized_predictions": dg.MetadataValue.int(int(realized.sum())),
            "champion_version": dg.MetadataValue.int(int(champion.version)),
            "latest_candle": dg.MetadataValue.text(new["open_time"].iloc[-1].isoformat() if len(new) else "none"),
            "latest_up_probability": dg.MetadataValue.float(
                float(new["up_probability"].iloc[-1]) if len(new) else float("nan")
            ),
            "table": dg.MetadataValue.text(table),
        }
    )
