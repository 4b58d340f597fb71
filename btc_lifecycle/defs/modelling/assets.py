"""Modelling assets: features (one UTC day per partition), the tracked and registered model, and
live predictions."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from dagster_mlflow.resources import MlFlow

from btc_lifecycle.adapters.feature_store import (
    read_candles,
    read_features,
    read_predictions,
    replace_features_between,
    replace_table,
)
from btc_lifecycle.config import Settings
from btc_lifecycle.defs.automation import UPDATE_AFTER_UPSTREAM
from btc_lifecycle.defs.ingestion.assets import LABELED_CANDLES
from btc_lifecycle.defs.metadata import table_metadata
from btc_lifecycle.defs.partitions import (
    SINGLE_RUN,
    WITH_NEIGHBOUR_DAYS,
    daily_partitions,
    day_writes_pool,
    window_of,
)
from btc_lifecycle.domain.candles import interval_ms
from btc_lifecycle.domain.gaps import FILLED_COLUMN, GapFillSummary, gap_fill_summary
from btc_lifecycle.modelling.backtest import TradingCosts, net_returns, next_returns
from btc_lifecycle.modelling.features import (
    EXCLUSION_REASONS,
    FEATURE_COLUMNS,
    LONGEST_WINDOW,
    TRAINABLE_COLUMN,
    compute_features,
    training_exclusions,
)
from btc_lifecycle.resources import FeatureStoreResource, ModelRegistryResource

GROUP = "modelling"
# The run param that records a model's label horizon in candles: its backtest holds calls as long.
HORIZON_PARAM = "label_horizon_candles"
FEATURES = dg.AssetKey("features")
MODEL = dg.AssetKey("model")


def mlflow_run_url(settings: Settings, run_id: str, experiment_id: str) -> str:
    return f"{settings.mlflow_ui_url}/#/experiments/{experiment_id}/runs/{run_id}"


def feature_context_candles(max_fill_minutes: int) -> int:
    """How many candles before a day its features read: the longest window, plus a gap the
    policy may fill just before it (a filled minute needs the candle before the gap)."""
    return LONGEST_WINDOW + max_fill_minutes + 1


def feature_inputs(conn, series, start, end, max_fill_minutes: int, candles_after: int) -> pd.DataFrame:
    """The labeled candles the features of [start, end) read: ``feature_context_candles`` before,
    and (for the targets: the label horizon) ``candles_after`` after ``end``."""
    step = pd.Timedelta(milliseconds=interval_ms(series.interval))
    return read_candles(
        conn,
        series.labeled_table,
        series.symbol,
        series.interval,
        start - step * feature_context_candles(max_fill_minutes),
        end + step * candles_after,
    )


def daily_feature_asset(settings: Settings) -> dg.AssetsDefinition:
    """features, partitioned by the settings' days."""

    @dg.asset(
        group_name=GROUP,
        partitions_def=daily_partitions(settings),
        backfill_policy=SINGLE_RUN,
        automation_condition=UPDATE_AFTER_UPSTREAM,
        pool=day_writes_pool(settings),
        deps=[dg.AssetDep(LABELED_CANDLES, partition_mapping=WITH_NEIGHBOUR_DAYS)],
        kinds={"duckdb", "pandas"},
        description="A day's stationary features, known at each candle's close, and as target whether the close "
        "features.horizon_minutes later is higher; short gaps filled as trade-less minutes "
        "(features.max_fill_minutes). Reads the previous day's last hour and the next day's first candles.",
    )
    def features(
        context: dg.AssetExecutionContext,
        feature_store: FeatureStoreResource,
        settings: dg.ResourceParam[Settings],
    ) -> dg.MaterializeResult:
        series = settings.ingest.series
        max_fill = settings.features.max_fill_minutes
        start, end = window_of(context)
        with feature_store.get_connection() as conn:
            # Exactly the rows a computation over the whole history gives for these days
            # (test_features_asset holds it): the windows' history before, the target's candle after.
            horizon = settings.horizon_candles
            candles = feature_inputs(conn, series, start, end, max_fill, candles_after=horizon)
            computed = compute_features(candles, series.interval, max_fill_minutes=max_fill, horizon=horizon)
            frame = computed.loc[(computed["open_time"] >= start) & (computed["open_time"] < end)].reset_index(
                drop=True
            )
            write, rebuilt = replace_features_between(conn, series, frame, start, end)
        if rebuilt:
            context.log.warning(
                f"{series.features_table} held another column layout (older code): rebuilt with these days only; "
                "materialize the other days of features again (make run does)"
            )
        day_candles = candles.loc[(candles["open_time"] >= start) & (candles["open_time"] < end)]
        trainable, filled = int(frame[TRAINABLE_COLUMN].sum()), int(frame[FILLED_COLUMN].sum())
        policy = gap_fill_summary(day_candles["open_time"], series.interval, max_fill)
        excluded = training_exclusions(frame, series.interval)
        context.log.info(
            f"{len(frame)} feature rows ({filled} filled trade-less minutes), {trainable} trainable; "
            f"excluded: {excluded}"
        )
        return dg.MaterializeResult(
            metadata={
                **table_metadata(settings, series.features_table, write.rows),
                "stored_candles": len(day_candles),
                "trainable_rows": trainable,
                "excluded_rows": len(frame) - trainable,
                **{f"excluded_{reason}": count for reason, count in excluded.items()},
                "max_fill_minutes": max_fill,
                "filled_minutes": filled,
                "gaps_filled": policy.gaps_filled,
                "gaps_left_open": policy.gaps_left_open,
                "minutes_in_open_gaps": policy.minutes_left_open,
                "exclusions": dg.MetadataValue.md(_exclusions_table(excluded, policy)),
                "features": dg.MetadataValue.json(list(FEATURE_COLUMNS)),
                "first_candle": frame["open_time"].iloc[0].isoformat() if len(frame) else "none",
                "last_candle": frame["open_time"].iloc[-1].isoformat() if len(frame) else "none",
            }
        )

    return features


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


class ModelRunConfig(dg.Config):
    """Run config of the model asset (the UI's launchpad, or ``make run RETRAIN=1``)."""

    force_retrain: bool = False  # train and register even if a version was trained on these inputs


@dg.asset(
    group_name=GROUP,
    backfill_policy=SINGLE_RUN,  # unpartitioned; lets one `--partition-range` run take the whole graph
    pool="duckdb",
    deps=[FEATURES],
    kinds={"xgboost", "mlflow"},
    description=(
        "XGBoost direction model: walk-forward evaluation against baselines, MLflow run, registry and champion gate."
    ),
)
def model(
    context: dg.AssetExecutionContext,
    config: ModelRunConfig,
    feature_store: FeatureStoreResource,
    model_registry: ModelRegistryResource,
    mlflow: dg.ResourceParam[MlFlow],  # dagster-mlflow's run for this Dagster run: the training logs into it
    settings: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    from btc_lifecycle.modelling.walk_forward import (
        TooFewTrainableCandles,
        WalkForwardConfig,
        input_fingerprint,
        train_walk_forward,
    )

    with feature_store.get_connection() as conn:
        frame = read_features(conn, settings.ingest.series)
    model_config = settings.model
    if model_config.train_window_days is not None:
        frame = frame.loc[
            frame["open_time"] >= frame["open_time"].iloc[-1] - pd.Timedelta(days=model_config.train_window_days)
        ]
    walk_forward = WalkForwardConfig(
        interval=settings.ingest.interval,
        n_folds=model_config.n_folds,
        heldout_fraction=model_config.heldout_fraction,
        # No training target may reach into the candles a block is tested on.
        embargo_candles=LONGEST_WINDOW + settings.horizon_candles,
    )
    registry = model_registry.registry()
    inputs = input_fingerprint(frame, walk_forward)
    trained = None if config.force_retrain else registry.version_trained_on(inputs)
    if trained is not None:
        # Unchanged inputs do no work: the registry stays as it was, and the data version tells
        # the UI the model is up to date. force_retrain trains anyway.
        context.log.info(f"model version {trained} was trained on exactly these inputs: nothing to train")
        mlflow.set_tags({"promotion_decision": "unchanged_inputs", "trained_as_version": trained})
        return dg.MaterializeResult(
            data_version=dg.DataVersion(inputs),
            metadata={
                "decision": "unchanged_inputs",
                "model_version": int(trained),
                "alias": ", ".join(registry.aliases_of(trained)) or "none",
                "input_fingerprint": inputs,
                "promotion_reason": f"version {trained} was trained on exactly these inputs; "
                "launch with force_retrain to train anyway",
            },
        )
    for run_id in registry.fail_abandoned_runs(lambda dagster_run_id: _dagster_run_alive(context, dagster_run_id)):
        context.log.warning(f"MLflow run {run_id} was left RUNNING by a killed Dagster run: marked FAILED")
    try:
        result = train_walk_forward(frame, walk_forward)
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
        input_fingerprint=inputs,
        gate_losses=gate_losses(settings, frame, result.heldout["open_time"]),
        gate_metric=model_config.gate_metric,
        params={HORIZON_PARAM: settings.horizon_candles},
    )
    experiment_id = registry.experiment_id()
    overall, heldout = result.overall, result.heldout_metrics
    decision = record.decision
    context.log.info(f"model version {record.model_version} is {record.alias}: {decision.reason}")
    if not decision.serving_beats_prior:
        context.log.warning("the serving model does not beat the constant prior on the held-out window beyond noise")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(inputs),
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
            "input_fingerprint": inputs,
            "training_seconds": dg.MetadataValue.float(round(result.training_seconds, 3)),
        },
    )


def gate_losses(settings: Settings, features: pd.DataFrame, heldout_times: pd.Series):
    """What the gate compares per held-out candle: None for log loss (the registry's default), or
    minus the net return of acting long/short on every call, after the configured costs."""
    if settings.model.gate_metric == "log_loss":
        return None
    following = pd.Series(next_returns(features["close"]), index=features["open_time"]).loc[heldout_times.to_numpy()]
    costs, horizon = trading_costs(settings), settings.horizon_candles
    return lambda probability: -net_returns(probability, following.to_numpy(), costs, horizon)


def trading_costs(settings: Settings) -> TradingCosts:
    return TradingCosts(**settings.costs.model_dump())


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
    backfill_policy=SINGLE_RUN,  # unpartitioned; lets one `--partition-range` run take the whole graph
    pool="duckdb",
    deps=[MODEL, FEATURES],
    kinds={"xgboost", "duckdb"},
    description="The champion's probability that the close a label horizon later (features.horizon_minutes; the "
    "next candle by default) is higher, joined with the truth once it arrives.",
)
def predictions(
    context: dg.AssetExecutionContext,
    feature_store: FeatureStoreResource,
    model_registry: ModelRegistryResource,
    settings: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    from btc_lifecycle.modelling.predictions import prediction_rows, rows_to_score, with_realized_labels
    from btc_lifecycle.modelling.walk_forward import predict_up_probability

    registry = model_registry.registry()
    champion = registry.champion_info()
    if champion is None:
        raise dg.Failure("no champion model is registered yet: materialize the model asset first")
    table = settings.ingest.series.predictions_table
    with feature_store.get_connection() as conn:
        frame = read_features(conn, settings.ingest.series)
        stored = read_predictions(conn, settings.ingest.series)
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
            **table_metadata(settings, table, len(combined)),
        }
    )
