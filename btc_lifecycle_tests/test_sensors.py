"""The retraining sensor: one run per failed drift evaluation, none for a pass or a handled one."""

import json

import dagster as dg
import pytest

from btc_lifecycle.assets.monitoring import DATA_DRIFT_CHECK, PERFORMANCE_CHECK
from btc_lifecycle.sensors import TRIGGER, TRIGGER_TAG, CheckEvaluation, retrain_on_drift_sensor, retraining_request


class Verdicts(dg.Config):
    drift_passes: bool = True
    performance_passes: bool = True


@dg.asset(
    name="drift_report",
    check_specs=[dg.AssetCheckSpec(DATA_DRIFT_CHECK, asset="drift_report"), dg.AssetCheckSpec(PERFORMANCE_CHECK, asset="drift_report")],
)
def scripted_drift_report(config: Verdicts):
    """Stands in for the real report: it records check evaluations with chosen outcomes."""
    yield dg.MaterializeResult()
    severity = dg.AssetCheckSeverity.ERROR
    yield dg.AssetCheckResult(check_name=DATA_DRIFT_CHECK, passed=config.drift_passes, severity=severity)
    yield dg.AssetCheckResult(check_name=PERFORMANCE_CHECK, passed=config.performance_passes, severity=severity)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def evaluate(instance, drift_passes=True, performance_passes=True, tags=None):
    config = {"ops": {"drift_report": {"config": {"drift_passes": drift_passes, "performance_passes": performance_passes}}}}
    return dg.materialize([scripted_drift_report], instance=instance, run_config=config, tags=tags or {}).run_id


def tick(instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = retrain_on_drift_sensor(context)
    return result, context.cursor


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
    result, cursor = tick(instance)
    assert isinstance(result, dg.SkipReason)
    assert json.loads(cursor)["handled_up_to"] > 0


def test_the_decision_is_a_pure_function_of_evaluations_and_cursor():
    failed = CheckEvaluation(DATA_DRIFT_CHECK, record_id=7, run_id="r7", failed=True, by_retraining=False)
    passed = CheckEvaluation(PERFORMANCE_CHECK, record_id=8, run_id="r7", failed=False, by_retraining=False)
    request, cursor = retraining_request([failed, passed], handled_up_to=0)
    assert request.run_key == "retrain-after-r7" and cursor == 8
    assert retraining_request([failed, passed], handled_up_to=8) == (None, 8)
