"""The retraining sensor: a failed drift check launches one retraining run."""

import json
from dataclasses import dataclass

import dagster as dg

from btc_lifecycle.jobs import DRIFT_CHECK_KEYS, retraining_job

TRIGGER_TAG = "btc_lifecycle/trigger"
TRIGGER = "drift_check_failed"


@dataclass(frozen=True)
class CheckEvaluation:
    """The latest evaluation of one drift check, as the sensor sees it."""

    check_name: str
    record_id: int
    run_id: str
    failed: bool
    by_retraining: bool  # made by a run this sensor launched
    description: str = ""


def retraining_request(evaluations: list[CheckEvaluation], handled_up_to: int) -> tuple[dg.RunRequest | None, int]:
    """One run request for the newest unhandled failed drift evaluation, and the new cursor.

    Evaluations made by a retraining run are marked handled without launching another one, so a
    drift that outlives a retraining waits for the next scheduled evaluation instead of looping.
    """
    fresh = [e for e in evaluations if e.record_id > handled_up_to]
    cursor = max([handled_up_to, *(e.record_id for e in fresh)])
    failed = [e for e in fresh if e.failed and not e.by_retraining]
    if not failed:
        return None, cursor
    newest_run = max(failed, key=lambda e: e.record_id).run_id
    in_run = sorted((e for e in failed if e.run_id == newest_run), key=lambda e: e.check_name)
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


def latest_evaluations(instance: dg.DagsterInstance) -> list[CheckEvaluation]:
    evaluations = []
    for key in DRIFT_CHECK_KEYS:
        record = instance.get_latest_asset_check_evaluation_record(key)
        if record is None or record.status.value not in ("SUCCEEDED", "FAILED"):
            continue
        run = instance.get_run_by_id(record.run_id)
        evaluation = record.event.asset_check_evaluation if record.event else None
        evaluations.append(
            CheckEvaluation(
                check_name=key.name,
                record_id=record.id,
                run_id=record.run_id,
                failed=record.status.value == "FAILED",
                by_retraining=bool(run and run.tags.get(TRIGGER_TAG) == TRIGGER),
                description=(evaluation.description or "") if evaluation else "",
            )
        )
    return evaluations


@dg.sensor(
    job=retraining_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches the retraining job once for each failed evaluation of a drift_report check.",
)
def retrain_on_drift_sensor(context: dg.SensorEvaluationContext):
    state = json.loads(context.cursor) if context.cursor else {"handled_up_to": 0}
    evaluations = latest_evaluations(context.instance)
    request, handled_up_to = retraining_request(evaluations, state["handled_up_to"])
    context.update_cursor(json.dumps({"handled_up_to": handled_up_to}))
    if request is None:
        return dg.SkipReason("no unhandled failed drift check")
    failed = [e for e in evaluations if e.check_name in request.tags["btc_lifecycle/failed_checks"].split(",")]
    context.log.info("retraining because: " + "; ".join(f"{e.check_name}: {e.description}" for e in failed))
    return request
