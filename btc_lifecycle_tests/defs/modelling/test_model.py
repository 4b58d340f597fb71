"""The model asset in process: its gate metadata, a clear Failure when too little is trainable, and
the MLflow run it trains in, ended when the run ends (no hook: the implicit asset job)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from btc_lifecycle.adapters.feature_store import replace_labeled_candles
from btc_lifecycle.config import load_settings
from btc_lifecycle.defs.modelling.assets import daily_feature_asset, load_scoring_champion, model_asset
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.modelling.features import FEATURE_COLUMNS
from btc_lifecycle.resources import FeatureStoreResource, ModelRegistryResource
from btc_lifecycle.resources.model_registry import mlflow_resource
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG, stored_days


def store_with(candles, root: Path, **config_changes):
    """A feature store holding ``candles`` as labeled candles, and settings pointing at it."""
    config = root / "bitcoin_ingest.json"
    config.write_text(json.dumps({**DEFAULT_CONFIG, **config_changes}))
    settings = load_settings(
        {
            "INGEST_CONFIG": str(config),
            "FEATURE_DB_PATH": str(root / "feature_store" / "bitcoin.duckdb"),
            "BTC_REPORT_DIR": str(root / "reports"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        }
    )
    settings.feature_db_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.feature_db_path)) as conn:
        replace_labeled_candles(conn, settings.ingest.series, label_candles(candles, "1m"))
    return settings


def model_resources(settings) -> dict:
    """The resources the features and model assets ask for, on the settings' temporary stores."""
    return {
        "settings": settings,
        "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
        "mlflow": mlflow_resource(settings),
        "model_registry": ModelRegistryResource.from_settings(settings),
    }


def materialize(settings, instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [daily_feature_asset(settings), model_asset(settings)],
        resources=model_resources(settings),
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        tags=stored_days(settings),
    )


def mlflow_runs_of(settings, dagster_run_id: str) -> list:
    """The MLflow runs tagged with ``dagster_run_id``, read straight from the store."""
    client = ModelRegistryResource.from_settings(settings).registry().client
    experiment = client.get_experiment_by_name(settings.model.name)
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.dagster_run_id = '{dagster_run_id}'")


def model_metadata(result: dg.ExecuteInProcessResult) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("model")]
    return {key: value.value for key, value in event.materialization.metadata.items()}


@pytest.fixture(scope="module")
def too_few_trainable(tmp_path_factory):
    """A materialization whose model step fails: too few trainable candles."""
    # A gap every 30 minutes and no filling: no 60-minute window is ever complete.
    candles = without_minutes(synthetic_candles(3_000, seed=4), range(29, 3_000, 30))
    settings = store_with(candles, tmp_path_factory.mktemp("too_few"), features={"max_fill_minutes": 0})
    return settings, materialize(settings)


def test_too_few_trainable_candles_fail_the_step_with_the_counts_and_the_settings(too_few_trainable):
    _, result = too_few_trainable
    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    error = failure.event_specific_data.error
    assert error.cls_name == "Failure"
    message = failure.event_specific_data.user_failure_data.description
    assert "too few trainable candles" in message and "0 of" in message
    for setting in ("features.max_fill_minutes", "model.n_folds", "model.heldout_fraction"):
        assert setting in message
    assert failure.event_specific_data.user_failure_data.metadata["trainable_rows"].value == 0


def test_a_failed_model_step_ends_its_mlflow_run_failed(too_few_trainable):
    settings, result = too_few_trainable
    assert [run.info.status for run in mlflow_runs_of(settings, result.run_id)] == ["FAILED"]


@pytest.fixture(scope="module")
def trained_twice(tmp_path_factory):
    """RUNNING MLflow runs left by three Dagster runs (gone, finished, still running); then a training,
    and a second materialization on the same inputs."""
    settings = store_with(synthetic_candles(4_000, seed=12), tmp_path_factory.mktemp("trained"))
    registry = ModelRegistryResource.from_settings(settings).registry()
    instance = dg.DagsterInstance.ephemeral()
    for run_id, status in (("finished-run", "SUCCESS"), ("running-run", "STARTED")):
        instance.add_run(dg.DagsterRun(job_name="elsewhere", run_id=run_id, status=dg.DagsterRunStatus[status]))
    experiment_id = registry.experiment_id()
    left = {
        name: registry.client.create_run(experiment_id, tags={"dagster_run_id": name}).info.run_id
        for name in ("gone-run", "finished-run", "running-run")
    }
    first = materialize(settings, instance)
    assert first.success
    second = materialize(settings, instance)
    assert second.success
    return {
        "settings": settings,
        "first": first,
        "second": second,
        "left": {name: registry.client.get_run(run_id).info.status for name, run_id in left.items()},
    }


def test_the_model_metadata_carries_the_gate_and_whether_it_beats_the_prior(trained_twice):
    metadata = model_metadata(trained_twice["first"])
    assert metadata["decision"] == "first_champion" and metadata["alias"] == "champion"
    # A random walk: nothing can be learned, and the metadata says so rather than hiding it.
    assert metadata["challenger_beats_prior"] is False and metadata["serving_model_beats_prior"] is False
    assert "no model beats the prior yet" in metadata["promotion_reason"]
    assert metadata["heldout_prior_log_loss"] == pytest.approx(0.693, abs=0.01)
    assert metadata["data_end"] >= metadata["training_range"].split(" .. ")[1]


def test_the_training_logs_into_the_mlflow_run_of_its_dagster_run_which_ends_finished(trained_twice):
    first = trained_twice["first"]
    [run] = mlflow_runs_of(trained_twice["settings"], first.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_id == model_metadata(first)["mlflow_run_id"]
    assert run.data.tags["model_version"] == "1" and "xgboost_roc_auc" in run.data.metrics


def test_unchanged_inputs_register_no_version_and_their_mlflow_run_says_so(trained_twice):
    settings, second = trained_twice["settings"], trained_twice["second"]
    assert model_metadata(second)["decision"] == "unchanged_inputs"
    client = ModelRegistryResource.from_settings(settings).registry().client
    assert [str(version.version) for version in client.search_model_versions(f"name = '{settings.model.name}'")] == [
        "1"
    ]
    [run] = mlflow_runs_of(settings, second.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["promotion_decision"] == "unchanged_inputs" and run.data.tags["trained_as_version"] == "1"


def test_the_experiment_keeps_its_artifacts_where_the_settings_say(trained_twice):
    settings = trained_twice["settings"]
    [run] = mlflow_runs_of(settings, trained_twice["first"].run_id)
    run_artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    assert run_artifacts.is_relative_to(settings.mlflow_artifact_location)
    assert (run_artifacts / "model_card.html").is_file()


class RegistryWithOldChampion:
    """A registry whose champion was trained before the gap-fill flags were features."""

    def load_champion(self):
        class Champion:
            feature_names_in_ = [name for name in FEATURE_COLUMNS if not name.startswith("filled")]

        return Champion()


def test_a_champion_on_other_features_fails_scoring_with_what_to_do():
    with pytest.raises(dg.Failure, match="materialize the model asset once"):
        load_scoring_champion(RegistryWithOldChampion())


def test_train_window_days_trains_on_the_most_recent_days_only(tmp_path):
    candles = synthetic_candles(6_000, seed=12)  # a little over four days
    result = materialize(store_with(candles, tmp_path, model={**DEFAULT_CONFIG["model"], "train_window_days": 2}))
    assert result.success
    training_start = pd.Timestamp(model_metadata(result)["training_range"].split(" .. ")[0])
    window_start = candles["open_time"].iloc[-1] - pd.Timedelta(days=2)
    assert window_start <= training_start < window_start + pd.Timedelta(hours=3)


def test_without_train_window_days_training_starts_at_the_first_trainable_candle(trained_twice):
    training_start = pd.Timestamp(model_metadata(trained_twice["first"])["training_range"].split(" .. ")[0])
    assert training_start < synthetic_candles(4_000, seed=12)["open_time"].iloc[0] + pd.Timedelta(hours=3)


def test_a_running_mlflow_run_whose_dagster_run_is_gone_is_marked_failed(trained_twice):
    assert trained_twice["left"]["gone-run"] == "FAILED"


def test_a_running_mlflow_run_whose_dagster_run_finished_is_marked_failed(trained_twice):
    assert trained_twice["left"]["finished-run"] == "FAILED"


def test_a_running_mlflow_run_of_a_dagster_run_still_in_progress_is_left_running(trained_twice):
    assert trained_twice["left"]["running-run"] == "RUNNING"
