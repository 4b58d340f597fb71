"""The retraining sensor: one run per failed drift evaluation, none for a pass or a handled one."""

import json

import dagster as dg
import pandas as pd
import pytest

from btc_lifecycle.config import load_settings
from btc_lifecycle.defs.monitoring.assets import DATA_DRIFT_CHECK, PERFORMANCE_CHECK
from btc_lifecycle.defs.monitoring.sensors import (
    COOL_DOWN,
    TRIGGER,
    TRIGGER_TAG,
    CheckEvaluation,
    Training,
    build_retrain_on_drift_sensor,
    cool_down_until,
    recent_trainings,
    retraining_request,
)
from btc_lifecycle.monitoring.drift import MonitoringConfig

HOUR = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2023-03-10T18:00Z")


class Verdicts(dg.Config):
    drift_passes: bool = True
    performance_passes: bool = True
    candles_until: str = "2023-03-10T18:00:00+00:00"


@dg.asset(
    name="drift_report",
    check_specs=[
        dg.AssetCheckSpec(DATA_DRIFT_CHECK, asset="drift_report"),
        dg.AssetCheckSpec(PERFORMANCE_CHECK, asset="drift_report"),
    ],
)
def scripted_drift_report(config: Verdicts):
    """Stands in for the real report: it records check evaluations with chosen outcomes."""
    yield dg.MaterializeResult()
    severity = dg.AssetCheckSeverity.ERROR
    metadata = {"candles_until": config.candles_until}
    yield dg.AssetCheckResult(
        check_name=DATA_DRIFT_CHECK, passed=config.drift_passes, severity=severity, metadata=metadata
    )
    yield dg.AssetCheckResult(
        check_name=PERFORMANCE_CHECK, passed=config.performance_passes, severity=severity, metadata=metadata
    )


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def evaluate(instance, drift_passes=True, performance_passes=True, tags=None, candles_until=T0):
    verdicts = {
        "drift_passes": drift_passes,
        "performance_passes": performance_passes,
        "candles_until": candles_until.isoformat(),
    }
    config = {"ops": {"drift_report": {"config": verdicts}}}
    return dg.materialize([scripted_drift_report], instance=instance, run_config=config, tags=tags or {}).run_id


def tick(instance, cursor=None):
    """One evaluation of the sensor the code location builds from the project's settings."""
    sensor = build_retrain_on_drift_sensor(load_settings({}).monitoring)
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        return sensor(context), context.cursor


def test_a_passing_evaluation_requests_no_run(instance):
    evaluate(instance)
    result, _ = tick(instance)
    assert isinstance(result, dg.SkipReason)


def test_a_failed_evaluation_requests_exactly_one_retraining_run(instance):
    run_id = evaluate(instance, drift_passes=False)
    result, cursor = tick(instance)
    assert isinstance(result, dg.RunRequest)
    assert result.run_key == f"retrain-after-{run_id}"
    assert result.tags[TRIGGER_TAG] == TRIGGER
    assert result.tags["btc_lifecycle/failed_checks"] == DATA_DRIFT_CHECK

    again, _ = tick(instance, cursor)
    assert isinstance(again, dg.SkipReason)


def test_both_checks_failing_in_one_evaluation_make_one_run(instance):
    evaluate(instance, drift_passes=False, performance_passes=False)
    result, _ = tick(instance)
    assert result.tags["btc_lifecycle/failed_checks"] == f"{DATA_DRIFT_CHECK},{PERFORMANCE_CHECK}"


def test_a_later_failure_after_a_handled_one_requests_a_new_run(instance):
    evaluate(instance, drift_passes=False)
    first, cursor = tick(instance)
    second_run = evaluate(instance, drift_passes=False)
    second, _ = tick(instance, cursor)
    assert isinstance(second, dg.RunRequest)
    assert second.run_key == f"retrain-after-{second_run}" != first.run_key


def test_a_failure_found_by_a_retraining_run_does_not_launch_another(instance):
    evaluate(instance, drift_passes=False, tags={TRIGGER_TAG: TRIGGER})
    newest = max(
        instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(dg.AssetKey("drift_report"), name)).id
        for name in (DATA_DRIFT_CHECK, PERFORMANCE_CHECK)
    )
    result, cursor = tick(instance)
    assert isinstance(result, dg.SkipReason)
    assert json.loads(cursor)["handled_up_to"] == newest
    # Handled means handled: a scheduled failure afterwards still launches one.
    evaluate(instance, drift_passes=False)
    later, _ = tick(instance, cursor)
    assert isinstance(later, dg.RunRequest)


def test_the_decision_is_a_pure_function_of_evaluations_and_cursor():
    failed = CheckEvaluation(DATA_DRIFT_CHECK, record_id=7, run_id="r7", failed=True, by_retraining=False)
    passed = CheckEvaluation(PERFORMANCE_CHECK, record_id=8, run_id="r7", failed=False, by_retraining=False)
    request, cursor = retraining_request([failed, passed], handled_up_to=0)
    assert request.run_key == "retrain-after-r7" and cursor == 8
    skip, cursor = retraining_request([failed, passed], handled_up_to=8)
    assert isinstance(skip, dg.SkipReason) and cursor == 8


def training(hours_after_t0: float, decision: str) -> Training:
    return Training(T0 + hours_after_t0 * HOUR, decision)


def test_no_cool_down_after_a_promotion_or_before_any_retraining():
    assert cool_down_until([], 24) is None
    assert cool_down_until([training(0, "first_champion")], 24) is None
    assert cool_down_until([training(0, "keep_champion"), training(6, "promote")], 24) is None


def test_a_kept_champion_pauses_retraining_and_each_keep_in_a_row_doubles_the_pause():
    one = [training(-72, "first_champion"), training(0, "keep_champion")]
    assert cool_down_until(one, 24) == T0 + 24 * HOUR
    two = [*one, training(30, "keep_champion")]
    assert cool_down_until(two, 24) == T0 + (30 + 48) * HOUR
    three = [*two, training(80, "keep_champion")]
    assert cool_down_until(three, 24) == T0 + (80 + 96) * HOUR


def test_a_zero_cool_down_never_pauses():
    assert cool_down_until([training(0, "keep_champion")], 0) is None


def evaluation(record_id: int, hours_after_t0: float) -> CheckEvaluation:
    return CheckEvaluation(
        DATA_DRIFT_CHECK,
        record_id=record_id,
        run_id=f"r{record_id}",
        failed=True,
        by_retraining=False,
        candles_until=T0 + hours_after_t0 * HOUR,
    )


def test_a_failure_inside_the_cool_down_is_skipped_with_the_reason_and_marked_handled():
    skip, cursor = retraining_request([evaluation(9, 6)], handled_up_to=0, paused_until=T0 + 24 * HOUR)
    assert isinstance(skip, dg.SkipReason) and cursor == 9
    assert skip.skip_message.startswith(COOL_DOWN)
    assert "2023-03-11T18:00:00+00:00" in skip.skip_message and DATA_DRIFT_CHECK in skip.skip_message


def test_a_failure_at_the_end_of_the_cool_down_retrains():
    request, _ = retraining_request([evaluation(9, 24)], handled_up_to=0, paused_until=T0 + 24 * HOUR)
    assert isinstance(request, dg.RunRequest)


class Decision(dg.Config):
    decision: str = "keep_champion"
    data_end: str = "2023-03-10T18:00:00+00:00"


@dg.asset(name="model")
def scripted_model(config: Decision):
    """Stands in for the model asset: it records the gate's decision and the newest candle."""
    return dg.MaterializeResult(metadata={"decision": config.decision, "data_end": config.data_end})


def train(instance, decision: str, data_end: pd.Timestamp) -> None:
    config = {"ops": {"model": {"config": {"decision": decision, "data_end": data_end.isoformat()}}}}
    dg.materialize([scripted_model], instance=instance, run_config=config)


def test_the_sensor_reads_the_cool_down_from_the_model_asset_and_the_check_metadata(instance):
    train(instance, "first_champion", T0 - 72 * HOUR)
    train(instance, "keep_champion", T0)
    assert recent_trainings(instance)[0] == Training(T0, "keep_champion")
    sensor = build_retrain_on_drift_sensor(MonitoringConfig(retrain_cooldown_hours=24))
    evaluate(instance, drift_passes=False, candles_until=T0 + 6 * HOUR)
    with dg.build_sensor_context(instance=instance) as context:
        skipped = sensor(context)
    assert isinstance(skipped, dg.SkipReason) and skipped.skip_message.startswith(COOL_DOWN)
    evaluate(instance, drift_passes=False, candles_until=T0 + 30 * HOUR)
    with dg.build_sensor_context(instance=instance, cursor=context.cursor) as later:
        relaunched = sensor(later)
    assert isinstance(relaunched, dg.RunRequest)
