"""MLflow integration: the gate over two models, reload by alias, no run left RUNNING, and the
logged model's pinned requirements, looked up by distribution name."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import mlflow
import numpy as np
import pytest

from btc_lifecycle.adapters import model_registry
from btc_lifecycle.adapters.model_registry import ModelRegistry, ensure_experiment, load_champion
from btc_lifecycle.modelling.features import compute_features
from btc_lifecycle.modelling.walk_forward import WalkForwardConfig, predict_up_probability, train_walk_forward
from btc_lifecycle_tests.modelling.conftest import FAST_CONFIG, mean_reverting_candles

# One tree with a tiny step barely leaves the prior: the "worse" model on the same data.
WEAK_CONFIG = WalkForwardConfig(n_folds=2, n_estimators=1, learning_rate=0.01, n_jobs=1)
MARGIN = 0.001


@pytest.fixture(scope="module")
def features():
    return compute_features(mean_reverting_candles(12_000, seed=8), "1m")


@pytest.fixture(scope="module")
def strong_result(features):
    return train_walk_forward(features, FAST_CONFIG)


@pytest.fixture(scope="module")
def weak_result(features):
    return train_walk_forward(features, WEAK_CONFIG)


@pytest.fixture(scope="module")
def promotions(tmp_path_factory, strong_result, weak_result):
    """Weak model first (champion by default), then strong (promoted), then weak (refused)."""
    registry = ModelRegistry.in_directory(tmp_path_factory.mktemp("mlflow"))
    records = [
        registry.log_training(weak_result, dagster_run_id="run-1", margin=MARGIN),
        registry.log_training(strong_result, dagster_run_id="run-2", margin=MARGIN),
        registry.log_training(weak_result, dagster_run_id="run-3", margin=MARGIN),
    ]
    yield registry, records
    mlflow.set_tracking_uri(None)


def test_the_gate_promotes_a_better_model_and_refuses_a_worse_one(promotions):
    registry, (first, better, worse) = promotions
    assert first.decision.promote and first.alias == "champion"
    assert better.decision.promote and better.alias == "champion"
    assert better.decision.champion_log_loss > better.decision.challenger_log_loss + MARGIN
    assert not worse.decision.promote and worse.alias == "challenger"
    assert registry.champion_info().version == better.model_version
    version = registry.client.get_model_version(registry.model_name, worse.model_version)
    assert version.tags["promotion_decision"] == "keep_champion"
    assert "challenger" in version.aliases


def test_the_champion_reloaded_by_alias_reproduces_its_predictions(promotions, strong_result):
    registry, _ = promotions
    champion = load_champion(registry.model_name, registry.tracking_uri)
    np.testing.assert_allclose(
        predict_up_probability(champion, strong_result.heldout),
        strong_result.heldout["xgboost_up_probability"],
        rtol=1e-6,
    )


def test_the_champion_info_carries_its_held_out_metrics(promotions, strong_result):
    registry, (_, better, _) = promotions
    info = registry.champion_info()
    assert info.run_id == better.run_id
    assert info.heldout_metrics["xgboost_log_loss"] == pytest.approx(strong_result.heldout_metrics["xgboost"].log_loss)
    assert info.tags["data_fingerprint"] == strong_result.fingerprint


def test_runs_end_finished_and_carry_baselines_beside_the_model(promotions):
    registry, records = promotions
    for record in records:
        run = registry.client.get_run(record.run_id)
        assert run.info.status == "FINISHED"
        assert {"xgboost_roc_auc", "prior_log_loss", "fold_0_xgboost_log_loss", "heldout_persistence_brier"} <= set(
            run.data.metrics
        )
        assert run.data.tags["dagster_run_id"].startswith("run-")
    artifacts = {a.path for a in registry.client.list_artifacts(records[0].run_id, "charts")}
    assert artifacts == {"charts/feature_importance.png", "charts/calibration.png"}
    assert mlflow.active_run() is None


def test_the_model_is_stored_in_xgboost_format_not_pickle(promotions, tmp_path):
    registry, (_, better, _) = promotions
    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_registry_uri(registry.tracking_uri)
    path = mlflow.artifacts.download_artifacts(
        f"models:/{registry.model_name}/{better.model_version}", dst_path=str(tmp_path)
    )
    names = {p.name for p in Path(path).iterdir()}
    assert "model.ubj" in names and not any(name.endswith((".pkl", ".pickle")) for name in names)


def test_a_failure_mid_run_ends_the_run_failed(tmp_path, weak_result, monkeypatch):
    registry = ModelRegistry.in_directory(tmp_path / "mlflow")

    def broken_chart(result):
        raise RuntimeError("chart renderer crashed")

    monkeypatch.setattr(model_registry, "feature_importance_png", broken_chart)
    with pytest.raises(RuntimeError, match="chart renderer crashed"):
        registry.log_training(weak_result)
    assert mlflow.active_run() is None
    runs = registry.client.search_runs([registry.experiment_id()])
    assert [run.info.status for run in runs] == ["FAILED"]


def test_a_run_started_by_someone_else_is_used_and_left_to_its_owner(tmp_path):
    registry = ModelRegistry.in_directory(tmp_path / "mlflow")
    mlflow.set_tracking_uri(registry.tracking_uri)
    with mlflow.start_run(experiment_id=registry.experiment_id()) as outer:
        with registry.training_run("dagster-run") as run:
            assert run.info.run_id == outer.info.run_id
        assert mlflow.active_run().info.run_id == outer.info.run_id
    stored = registry.client.get_run(outer.info.run_id)
    assert stored.info.status == "FINISHED" and stored.data.tags["dagster_run_id"] == "dagster-run"


def test_no_champion_before_the_first_training(tmp_path):
    assert ModelRegistry.in_directory(tmp_path / "mlflow").champion_info() is None


def test_a_missing_experiment_is_created_once_with_the_given_artifact_root(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    created = ensure_experiment(uri, "btc_direction", str(tmp_path / "artifacts"))
    assert ensure_experiment(uri, "btc_direction", str(tmp_path / "elsewhere")) == created
    experiment = mlflow.MlflowClient(tracking_uri=uri).get_experiment(created)
    assert experiment.artifact_location.removeprefix("file://") == str(tmp_path / "artifacts")


# The logged model's pinned requirements, looked up by distribution name.


def pins_from_every_distribution() -> list[str]:
    """What the pins were before: each module's first distribution in the full scan."""
    distributions = importlib.metadata.packages_distributions()
    names = [distributions.get(module, [module])[0] for module in ("xgboost", "pandas", "numpy", "sklearn")]
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def test_the_pins_are_those_the_full_scan_finds_without_the_scan(monkeypatch):
    expected = pins_from_every_distribution()

    def no_scan():
        raise AssertionError("packages_distributions() read every installed distribution")

    monkeypatch.setattr(importlib.metadata, "packages_distributions", no_scan)
    assert model_registry._pip_requirements() == expected
    assert [pin.split("==")[0] for pin in expected][1:] == ["pandas", "numpy", "scikit-learn"]


def test_a_module_from_an_unknown_distribution_is_found_by_the_full_scan(monkeypatch):
    monkeypatch.setattr(
        model_registry, "REQUIRED_MODULES", {"yaml": ("no-such-distribution",), "numpy": ("no-such-either",)}
    )
    pins = model_registry._pip_requirements()
    assert pins == [
        f"PyYAML=={importlib.metadata.version('PyYAML')}",
        f"numpy=={importlib.metadata.version('numpy')}",
    ]


def test_a_module_nobody_provides_fails_as_before(monkeypatch):
    monkeypatch.setattr(model_registry, "REQUIRED_MODULES", {"no_such_module_anywhere": ("no-such-distribution",)})
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        model_registry._pip_requirements()
