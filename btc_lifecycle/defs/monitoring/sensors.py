"""The retraining sensor: a failed drift check launches one retraining run, unless a retraining
that kept the champion put the loop in a cool-down (docs/ml-method.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from btc_lifecycle.defs.jobs import retraining_job, retraining_job_of
from btc_lifecycle.defs.markets import MarketAssets
from btc_lifecycle.defs.monitoring.assets import DRIFT_CHECK_KEYS, drift_check_keys
from btc_lifecycle.monitoring.drift import MonitoringConfig

TRIGGER_TAG = "btc_lifecycle/trigger"
TRIGGER = "drift_check_failed"
COOL_DOWN = "cool-down"
MODEL_ASSET = dg.AssetKey("model")
KEEP_DECISION = "keep_champion"


@dataclass(frozen=True)
class CheckEvaluation:
    """The latest evaluation of one drift check, as the sensor sees it."""

    check_name: str
    record_id: int
    run_id: str
    failed: bool
    by_retraining: bool  # made by a run this sensor launched
    description: str = ""
    candles_until: pd.Timestamp | None = None  # the newest candle the evaluation looked at


@dataclass(frozen=True)
class Training:
    """One materialization of the model: the newest candle it saw and what the gate decided."""

    data_end: pd.Timestamp
    decision: str


def cool_down_until(trainings: list[Training], hours: float) -> pd.Timestamp | None:
    """The candle time before which failures do not retrain, or None.

    Each retraining that kept the champion in a row doubles the pause (``hours``, then 2×, 4×…),
    counted in market time from the candles that retraining saw; a promotion ends it. A kept
    champion has just been re-validated, so an alarm right after it is the same news again.
    """
    if hours <= 0:
        return None
    keeps = 0
    for training in sorted(trainings, key=lambda t: t.data_end, reverse=True):
        if training.decision != KEEP_DECISION:
            break
        keeps += 1
    if keeps == 0:
        return None
    latest = max(trainings, key=lambda t: t.data_end).data_end
    return latest + pd.Timedelta(hours=hours * 2 ** (keeps - 1))


def retraining_request(
    evaluations: list[CheckEvaluation],
    handled_up_to: int,
    paused_until: pd.Timestamp | None = None,
) -> tuple[dg.RunRequest | dg.SkipReason, int]:
    """One run request for the newest unhandled failed drift evaluation (or why not), and the
    new cursor.

    Evaluations made by a retraining run are marked handled without launching another one, so a
    drift that outlives a retraining waits for the next scheduled evaluation instead of looping.
    A failure on candles before ``paused_until`` is handled by skipping: the cool-down.
    """
    fresh = [e for e in evaluations if e.record_id > handled_up_to]
    cursor = max([handled_up_to, *(e.record_id for e in fresh)])
    failed = [e for e in fresh if e.failed and not e.by_retraining]
    if not failed:
        return dg.SkipReason("no unhandled failed drift check"), cursor
    newest = max(failed, key=lambda e: e.record_id)
    newest_run = newest.run_id
    in_run = sorted((e for e in failed if e.run_id == newest_run), key=lambda e: e.check_name)
    if paused_until is not None and newest.candles_until is not None and newest.candles_until < paused_until:
        names = ", ".join(e.check_name for e in in_run)
        return dg.SkipReason(
            f"{COOL_DOWN}: {names} failed on candles up to {newest.candles_until.isoformat()}, but the last "
            f"retraining kept the champion and retraining pauses until {paused_until.isoformat()}"
        ), cursor
    return (
        dg.RunRequest(
            run_key=f"retrain-after-{newest_run}",
            tags={
                TRIGGER_TAG: TRIGGER,
                "btc_lifecycle/failed_checks": ",".join(e.check_name for e in in_run),
                "btc_lifecycle/drift_run_id": newest_run,
            },
        ),
        cursor,
    )


def latest_evaluations(
    instance: dg.DagsterInstance, check_keys: list[dg.AssetCheckKey] = DRIFT_CHECK_KEYS
) -> list[CheckEvaluation]:
    evaluations = []
    for key in check_keys:
        record = instance.get_latest_asset_check_evaluation_record(key)
        if record is None or record.status.value not in ("SUCCEEDED", "FAILED"):
            continue
        run = instance.get_run_by_id(record.run_id)
        evaluation = record.event.asset_check_evaluation if record.event else None
        until = evaluation.metadata.get("candles_until") if evaluation else None
        evaluations.append(
            CheckEvaluation(
                check_name=key.name,
                record_id=record.id,
                run_id=record.run_id,
                failed=record.status.value == "FAILED",
                by_retraining=bool(run and run.tags.get(TRIGGER_TAG) == TRIGGER),
                description=(evaluation.description or "") if evaluation else "",
                candles_until=pd.Timestamp(until.value) if until is not None else None,
            )
        )
    return evaluations


def recent_trainings(instance: dg.DagsterInstance, limit: int = 20, model: dg.AssetKey = MODEL_ASSET) -> list[Training]:
    """The newest materializations of the model asset, as the cool-down reads them."""
    trainings = []
    for record in instance.fetch_materializations(model, limit=limit).records:
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        if "data_end" in metadata and "decision" in metadata:
            trainings.append(Training(pd.Timestamp(metadata["data_end"].value), str(metadata["decision"].value)))
    return trainings


def build_retrain_on_drift_sensor(
    config: MonitoringConfig = MonitoringConfig(), at: MarketAssets | None = None
) -> dg.SensorDefinition:
    """The main market's sensor, or with ``at`` a further market's: each watches its own market's
    drift checks and retrains that market's model only."""
    key_prefix = [] if at is None else at.key_prefix
    check_keys = drift_check_keys(dg.AssetKey([*key_prefix, "drift_report"]))
    model = dg.AssetKey([*key_prefix, "model"])

    @dg.sensor(
        name="".join(f"{part}_" for part in key_prefix) + "retrain_on_drift_sensor",
        job=retraining_job if at is None else retraining_job_of(at),
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Launches the retraining job once for each failed evaluation of a drift_report check; "
            f"after a retraining that kept the champion, pauses {config.retrain_cooldown_hours:g} h of "
            "market time, doubling with each further keep."
        ),
    )
    def retrain_on_drift_sensor(context: dg.SensorEvaluationContext):
        state = json.loads(context.cursor) if context.cursor else {"handled_up_to": 0}
        evaluations = latest_evaluations(context.instance, check_keys)
        paused_until = cool_down_until(recent_trainings(context.instance, model=model), config.retrain_cooldown_hours)
        request, handled_up_to = retraining_request(evaluations, state["handled_up_to"], paused_until)
        context.update_cursor(json.dumps({"handled_up_to": handled_up_to}))
        if isinstance(request, dg.SkipReason):
            return request
        failed = [e for e in evaluations if e.check_name in request.tags["btc_lifecycle/failed_checks"].split(",")]
        context.log.info("retraining because: " + "; ".join(f"{e.check_name}: {e.description}" for e in failed))
        return request

    return retrain_on_drift_sensor
