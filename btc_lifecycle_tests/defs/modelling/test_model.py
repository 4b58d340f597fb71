"""The model asset in process: its gate metadata, and a clear Failure when too little is trainable."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from btc_lifecycle.adapters.feature_store import replace_labeled_candles
from btc_lifecycle.config import load_settings
from btc_lifecycle.defs.modelling.assets import features, load_scoring_champion, model
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.modelling.features import FEATURE_COLUMNS
from btc_lifecycle.resources import FeatureStoreResource, ModelRegistryResource
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


def materialize(settings, instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [features, model],
        resources={
            "settings": settings,
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
            "mlflow": ModelRegistryResource.from_settings(settings),
        },
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        tags=stored_days(settings),
    )


def model_metadata(result: dg.ExecuteInProcessResult) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("model")]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def test_too_few_trainable_candles_fail_the_step_with_the_counts_and_the_settings(tmp_path):
    # A gap every 30 minutes and no filling: no 60-minute window is ever complete.
    candles = without_minutes(synthetic_candles(3_000, seed=4), range(29, 3_000, 30))
    result = materialize(store_with(candles, tmp_path, features={"max_fill_minutes": 0}))
    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    error = failure.event_specific_data.error
    assert error.cls_name == "Failure"
    message = failure.event_specific_data.user_failure_data.description
    assert "too few trainable candles" in message and "0 of" in message
    for setting in ("features.max_fill_minutes", "model.n_folds", "model.heldout_fraction"):
        assert setting in message
    assert failure.event_specific_data.user_failure_data.metadata["trainable_rows"].value == 0


def test_the_model_metadata_carries_the_gate_and_whether_it_beats_the_prior(tmp_path):
    result = materialize(store_with(synthetic_candles(4_000, seed=12), tmp_path))
    assert result.success
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("model")]
    metadata = {key: value.value for key, value in event.materialization.metadata.items()}
    assert metadata["decision"] == "first_champion" and metadata["alias"] == "champion"
    # A random walk: nothing can be learned, and the metadata says so rather than hiding it.
    assert metadata["challenger_beats_prior"] is False and metadata["serving_model_beats_prior"] is False
    assert "no model beats the prior yet" in metadata["promotion_reason"]
    assert metadata["heldout_prior_log_loss"] == pytest.approx(0.693, abs=0.01)
    assert metadata["data_end"] >= metadata["training_range"].split(" .. ")[1]


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


def test_without_train_window_days_training_starts_at_the_first_trainable_candle(tmp_path):
    candles = synthetic_candles(4_000, seed=12)
    result = materialize(store_with(candles, tmp_path))
    assert result.success
    training_start = pd.Timestamp(model_metadata(result)["training_range"].split(" .. ")[0])
    assert training_start < candles["open_time"].iloc[0] + pd.Timedelta(hours=3)


@pytest.fixture(scope="module")
def mlflow_runs_after_training(tmp_path_factory):
    """RUNNING MLflow runs left by three Dagster runs (gone, finished, still running); then a training."""
    settings = store_with(synthetic_candles(4_000, seed=12), tmp_path_factory.mktemp("abandoned"))
    registry = ModelRegistryResource.from_settings(settings).registry()
    instance = dg.DagsterInstance.ephemeral()
    for run_id, status in (("finished-run", "SUCCESS"), ("running-run", "STARTED")):
        instance.add_run(dg.DagsterRun(job_name="elsewhere", run_id=run_id, status=dg.DagsterRunStatus[status]))
    experiment_id = registry.experiment_id()
    left = {
        name: registry.client.create_run(experiment_id, tags={"dagster_run_id": name}).info.run_id
        for name in ("gone-run", "finished-run", "running-run")
    }
    assert materialize(settings, instance).success
    return {name: registry.client.get_run(run_id).info.status for name, run_id in left.items()}


def test_a_running_mlflow_run_whose_dagster_run_is_gone_is_marked_failed(mlflow_runs_after_training):
    assert mlflow_runs_after_training["gone-run"] == "FAILED"


def test_a_running_mlflow_run_whose_dagster_run_finished_is_marked_failed(mlflow_runs_after_training):
    assert mlflow_runs_after_training["finished-run"] == "FAILED"


def test_a_running_mlflow_run_of_a_dagster_run_still_in_progress_is_left_running(mlflow_runs_after_training):
    assert mlflow_runs_after_training["running-run"] == "RUNNING"
