"""The retraining job in process, on temporary stores: dagster-mlflow's hook ends the MLflow run the
`mlflow` resource opened, FINISHED after the last step, FAILED when a step fails."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest
from dagster_mlflow import end_mlflow_on_run_finished

from btc_lifecycle.defs.jobs import retraining_job
from btc_lifecycle.defs.modelling.assets import daily_feature_asset, model_asset, predictions_asset
from btc_lifecycle.defs.modelling.backtest import backtest
from btc_lifecycle.defs.monitoring.assets import drift_report_asset
from btc_lifecycle.defs.resources import project_resources
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG, stored_days
from btc_lifecycle_tests.defs.modelling.test_model import mlflow_runs_of, store_with
from btc_lifecycle_tests.modelling.conftest import forget_tracking_uri  # noqa: F401 - autouse

CONFIG = {
    "model": {**DEFAULT_CONFIG["model"], "n_folds": 3, "prediction_rows": 100},
    "monitoring": {"current_window": 200, "reference_window": 500, "min_realized_labels": 5},
}


def with_features(candles, root, **config):
    """Settings on a store holding ``candles`` and their features, as the retraining job expects."""
    settings = store_with(candles, root, **{**CONFIG, **config})
    features = dg.materialize(
        [daily_feature_asset(settings)],
        resources=project_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
        tags=stored_days(settings),
    )
    assert features.success
    return settings


def retrain(settings) -> dg.ExecuteInProcessResult:
    definitions = dg.Definitions(
        assets=[
            daily_feature_asset(settings),
            model_asset(settings),
            backtest,
            predictions_asset(settings),
            drift_report_asset(settings),
        ],
        jobs=[retraining_job],
        resources=project_resources(settings),
    )
    return definitions.resolve_job_def("retraining_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )


def failed_steps(result: dg.ExecuteInProcessResult) -> list[str]:
    return [event.step_key for event in result.all_events if event.is_step_failure]


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    """A retraining that succeeds; then one whose reports (model and drift) cannot be written."""
    settings = with_features(synthetic_candles(4_000, seed=12), tmp_path_factory.mktemp("retrained"))
    succeeded = retrain(settings)
    shutil.rmtree(settings.report_dir)
    settings.report_dir.write_text("a file where the report folder should be")
    return settings, succeeded, retrain(settings)


def test_the_retraining_job_carries_dagster_mlflows_hook():
    assert set(retraining_job.hooks) == {end_mlflow_on_run_finished}


def test_a_successful_retraining_ends_its_mlflow_run_finished(retrained):
    settings, succeeded, _ = retrained
    assert succeeded.success
    [run] = mlflow_runs_of(settings, succeeded.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["model_version"] == "1"


def test_failed_report_steps_end_the_retraining_mlflow_run_failed(retrained):
    settings, _, failed = retrained
    assert sorted(failed_steps(failed)) == ["backtest", "drift_report"]
    assert [run.info.status for run in mlflow_runs_of(settings, failed.run_id)] == ["FAILED"]


def test_a_failed_model_step_ends_the_retraining_mlflow_run_failed(tmp_path):
    # A gap every 30 minutes and no filling: nothing is trainable.
    candles = without_minutes(synthetic_candles(3_000, seed=4), range(29, 3_000, 30))
    settings = with_features(candles, tmp_path, features={"max_fill_minutes": 0})
    result = retrain(settings)
    assert failed_steps(result) == ["model"]
    assert [run.info.status for run in mlflow_runs_of(settings, result.run_id)] == ["FAILED"]
