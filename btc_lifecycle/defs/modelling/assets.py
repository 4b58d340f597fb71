"""Modelling assets: features (one UTC day per partition), the tracked and registered model, and
live predictions."""

from collections.abc import Callable
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
from btc_lifecycle.defs.markets import MarketAssets, main_market
from btc_lifecycle.defs.metadata import table_metadata
from btc_lifecycle.defs.partitions import (
    SINGLE_RUN,
    WHOLE_HISTORY,
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


def daily_feature_asset(settings: Settings, at: MarketAssets | None = None) -> dg.AssetsDefinition:
    """features of one market (the main one unless ``at`` names another), partitioned by the
    settings' days."""
    at = at or main_market(settings)
    series, horizon = at.market.series, settings.horizon_candles_of(at.market)

    @dg.asset(
        **at.placed(GROUP),
        partitions_def=daily_partitions(settings),
        backfill_policy=SINGLE_RUN,
        automation_condition=UPDATE_AFTER_UPSTREAM,
        pool=day_writes_pool(settings),
        deps=[dg.AssetDep(at.key("labeled_candles"), partition_mapping=WITH_NEIGHBOUR_DAYS)],
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
        max_fill = settings.features.max_fill_minutes
        start, end = window_of(context)
        with feature_store.get_connection() as conn:
            # Exactly the rows a computation over the whole history gives for these days
            # (test_features_asset holds it): the windows' history before, the target's candle after.
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


def model_asset(settings: Settings, at: MarketAssets | None = None) -> dg.AssetsDefinition:
    """The model of one market (the main one unless ``at`` names another), registered as
    ``settings.model_name_of(market)`` with its own champion alias.

    The main market's training logs into dagster-mlflow's MLflow run of the Dagster run; a further
    market's into a run of its own experiment (a child of that run when both train in one run).
    """
    at = at or main_market(settings)
    definition = {
        "name": "model",
        **at.placed(GROUP),
        **WHOLE_HISTORY,
        "deps": [at.key("features")],
        "kinds": {"xgboost", "mlflow"},
        "description": f"XGBoost direction model of {at.market.symbol} on {at.market.exchange}: walk-forward "
        "evaluation against baselines, MLflow run, registry and champion gate.",
    }
    if at.main:

        @dg.asset(**definition)
        def model(
            context: dg.AssetExecutionContext,
            config: ModelRunConfig,
            feature_store: FeatureStoreResource,
            model_registry: ModelRegistryResource,
            mlflow: dg.ResourceParam[MlFlow],  # dagster-mlflow's run for this Dagster run: the training logs into it
            settings: dg.ResourceParam[Settings],
        ) -> dg.MaterializeResult:
            return train_model(context, config, feature_store, model_registry, settings, at, mlflow.set_tags)

        return model

    @dg.asset(**definition)
    def further_model(
        context: dg.AssetExecutionContext,
        config: ModelRunConfig,
        feature_store: FeatureStoreResource,
        model_registry: ModelRegistryResource,
        settings: dg.ResourceParam[Settings],
    ) -> dg.MaterializeResult:
        return train_model(context, config, feature_store, model_registry, settings, at, lambda tags: None)

    return further_model


def train_model(
    context: dg.AssetExecutionContext,
    config: ModelRunConfig,
    feature_store: FeatureStoreResource,
    model_registry: ModelRegistryResource,
    settings: Settings,
    at: MarketAssets,
    tag_mlflow_run: Callable[[dict[str, str]], None],
) -> dg.MaterializeResult:
    """Train, track, register and judge ``at``'s model; ``tag_mlflow_run`` tags the Dagster run's
    MLflow run when the inputs are unchanged and nothing is trained."""
    from btc_lifecycle.modelling.walk_forward import (
        TooFewTrainableCandles,
        WalkForwardConfig,
        input_fingerprint,
        train_walk_forward,
    )

    market = at.market
    horizon = settings.horizon_candles_of(market)
    with feature_store.get_connection() as conn:
        frame = read_features(conn, market.series)
    model_config = settings.model
    if model_config.train_window_days is not None:
        frame = frame.loc[
            frame["open_time"] >= frame["open_time"].iloc[-1] - pd.Timedelta(days=model_config.train_window_days)
        ]
    walk_forward = WalkForwardConfig(
        interval=market.interval,
        n_folds=model_config.n_folds,
        heldout_fraction=model_config.heldout_fraction,
        # No training target may reach into the candles a block is tested on.
        embargo_candles=LONGEST_WINDOW + horizon,
    )
    registry = model_registry.registry(settings.model_name_of(market))
    inputs = input_fingerprint(frame, walk_forward)
    trained = None if config.force_retrain else registry.version_trained_on(inputs)
    if trained is not None:
        # Unchanged inputs do no work: the registry stays as it was, and the data version tells
        # the UI the model is up to date. force_retrain trains anyway.
        context.log.info(f"model version {trained} was trained on exactly these inputs: nothing to train")
        tag_mlflow_run({"promotion_decision": "unchanged_inputs", "trained_as_version": trained})
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
        gate_losses=gate_losses(settings, frame, result.heldout["open_time"], horizon),
        gate_metric=model_config.gate_metric,
        params={HORIZON_PARAM: horizon},
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
            "registered_model": dg.MetadataValue.text(registry.model_name),
        },
    )


def gate_losses(settings: Settings, features: pd.DataFrame, heldout_times: pd.Series, horizon: int):
    """What the gate compares per held-out candle: None for log loss (the registry's default), or
    minus the net return of acting long/short on every call (held ``horizon`` candles), after the
    configured costs."""
    if settings.model.gate_metric == "log_loss":
        return None
    following = pd.Series(next_returns(features["close"]), index=features["open_time"]).loc[heldout_times.to_numpy()]
    costs = trading_costs(settings)
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


def predictions_asset(settings: Settings, at: MarketAssets | None = None) -> dg.AssetsDefinition:
    """The champion's predictions of one market (the main one unless ``at`` names another)."""
    at = at or main_market(settings)

    @dg.asset(
        **at.placed(GROUP),
        **WHOLE_HISTORY,
        deps=[at.key("model"), at.key("features")],
        kinds={"xgboost", "duckdb"},
        description="The champion's probability that the close a label horizon later (features.horizon_minutes; "
        "the next candle by default) is higher, joined with the truth once it arrives.",
    )
    def predictions(
        feature_store: FeatureStoreResource,
        model_registry: ModelRegistryResource,
        settings: dg.ResourceParam[Settings],
    ) -> dg.MaterializeResult:
        return predict(feature_store, model_registry.registry(settings.model_name_of(at.market)), settings, at)

    return predictions


def predict(
    feature_store: FeatureStoreResource, registry, settings: Settings, at: MarketAssets
) -> dg.MaterializeResult:
    """Score the newest unscored candles of ``at`` with its champion, and join the realized labels."""
    from btc_lifecycle.modelling.predictions import prediction_rows, rows_to_score, with_realized_labels
    from btc_lifecycle.modelling.walk_forward import predict_up_probability

    champion = registry.champion_info()
    if champion is None:
        raise dg.Failure(
            f"no champion model is registered yet for {registry.model_name}: materialize the model asset first"
        )
    series = at.market.series
    table = series.predictions_table
    with feature_store.get_connection() as conn:
        frame = read_features(conn, series)
        stored = read_predictions(conn, series)
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
