"""The `mlflow` resource: dagster-mlflow's run on the settings' stores, opened only for a run with a
step that asks for it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_mlflow.resources import MlFlow

from btc_lifecycle.config import load_settings
from btc_lifecycle.defs.modelling.assets import daily_feature_asset
from btc_lifecycle.defs.resources import project_resources
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.resources.model_registry import mlflow_resource
from btc_lifecycle_tests.conftest import stored_days
from btc_lifecycle_tests.defs.modelling.test_model import store_with
from btc_lifecycle_tests.modelling.conftest import forget_tracking_uri  # noqa: F401 - autouse


def test_a_run_without_the_model_step_opens_no_mlflow_run(tmp_path):
    settings = store_with(synthetic_candles(1_500, seed=3), tmp_path)
    result = dg.materialize(
        [daily_feature_asset(settings)],
        resources=project_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
        tags=stored_days(settings),
    )
    assert result.success
    # An in-process run sets up only the resources its steps ask for: MLflow's store is never opened.
    assert not Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).exists()


def test_the_mlflow_run_is_tracked_registered_and_stored_where_the_settings_say(tmp_path):
    settings = load_settings(
        {
            "FEATURE_DB_PATH": str(tmp_path / "feature_store" / "bitcoin.duckdb"),
            "BTC_REPORT_DIR": str(tmp_path / "reports"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'tracking' / 'mlflow.db'}",
            "MLFLOW_REGISTRY_URI": f"sqlite:///{tmp_path / 'registry' / 'mlflow.db'}",
        }
    )
    (tmp_path / "tracking").mkdir()
    (tmp_path / "registry").mkdir()
    seen = {}

    @dg.asset
    def tracked(mlflow: dg.ResourceParam[MlFlow]) -> None:
        run = mlflow.active_run()
        seen.update(
            tracking=mlflow.get_tracking_uri(),
            registry=mlflow.get_registry_uri(),
            experiment=mlflow.get_experiment(run.info.experiment_id).name,
            artifacts=run.info.artifact_uri,
        )

    result = dg.materialize([tracked], resources={"mlflow": mlflow_resource(settings)})
    assert result.success
    assert seen["tracking"] == settings.mlflow_tracking_uri and seen["registry"] == settings.mlflow_registry_uri
    assert seen["experiment"] == settings.model.name
    assert Path(seen["artifacts"].removeprefix("file://")).is_relative_to(settings.mlflow_artifact_location)
