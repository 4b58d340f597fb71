"""The code location's load stays light, and the retraining job's MLflow hooks close open runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg

from btc_lifecycle.defs.jobs import END_MLFLOW_RUN_HOOKS, retraining_job
from btc_lifecycle.resources import ModelRegistryResource
from btc_lifecycle.resources.model_registry import seed_sqlite_store

REPO_ROOT = Path(__file__).resolve().parents[2]


def modules_after_import(module: str, candidates: list[str]) -> list[str]:
    """Which of ``candidates`` a fresh interpreter has in sys.modules after importing ``module``."""
    code = f"import sys, json, {module}; print(json.dumps([name for name in {candidates!r} if name in sys.modules]))"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_loading_the_code_location_imports_no_heavy_library():
    heavy = [
        "mlflow",
        "dagster_mlflow",
        "evidently",
        "xgboost",
        "sklearn",
        "ccxt",
        "plotly",
        "kaleido",
        "weasyprint",
        "matplotlib",
        "scipy",
    ]
    assert modules_after_import("btc_lifecycle.definitions", heavy) == []


def test_loading_the_code_location_imports_neither_pandas_nor_duckdb():
    # Imported where first used (btc_lifecycle.lazy.lazy_module, the resource's get_connection).
    assert modules_after_import("btc_lifecycle.definitions", ["pandas", "numpy", "duckdb", "pyarrow"]) == []


class RecordingRegistry:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def end_run(self, status: str = "FINISHED") -> None:
        self.calls.append(status)


@dg.op
def first() -> int:
    return 1


@dg.op
def boom() -> int:
    raise RuntimeError("the step died with an MLflow run open")


@dg.op
def last(value: int) -> int:
    return value


def run_with_hooks(upstream, registry: RecordingRegistry) -> dg.ExecuteInProcessResult:
    job = dg.GraphDefinition(
        name="hooked",
        node_defs=[upstream, last],
        dependencies={"last": {"value": dg.DependencyDefinition(upstream.name)}},
    ).to_job(
        hooks=END_MLFLOW_RUN_HOOKS,
        resource_defs={"mlflow": dg.ResourceDefinition.hardcoded_resource(registry)},
    )
    return job.execute_in_process(raise_on_error=False)


def test_the_hooks_end_open_runs_finished_after_the_last_step_only():
    registry = RecordingRegistry()
    result = run_with_hooks(first, registry)
    assert result.success
    assert registry.calls == ["FINISHED"]


def test_the_hooks_end_open_runs_failed_when_a_step_fails():
    registry = RecordingRegistry()
    result = run_with_hooks(boom, registry)
    assert not result.success
    assert registry.calls == ["FAILED"]


def test_the_retraining_job_carries_the_hooks():
    assert set(retraining_job.hooks) == set(END_MLFLOW_RUN_HOOKS)


def test_a_run_left_open_by_a_failed_step_is_closed_failed(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    resource = ModelRegistryResource(tracking_uri=uri, registry_uri=uri, artifact_location=str(tmp_path / "artifacts"))

    @dg.op(required_resource_keys={"mlflow"})
    def trains_then_dies(context) -> None:  # unannotated: annotations are strings here
        registry = context.resources.mlflow.registry()
        registry.client.create_run(registry.experiment_id(), tags={"dagster_run_id": context.run_id})
        raise RuntimeError("died mid-training")

    @dg.job(hooks=END_MLFLOW_RUN_HOOKS, resource_defs={"mlflow": resource})
    def training():
        trains_then_dies()

    result = training.execute_in_process(raise_on_error=False)
    assert not result.success
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(resource.experiment_name)
    runs = client.search_runs([experiment.experiment_id])
    assert [(run.data.tags["dagster_run_id"], run.info.status) for run in runs] == [(result.run_id, "FAILED")]


def test_a_seeded_store_is_the_one_mlflow_would_create(tmp_path, monkeypatch):
    from mlflow.store.db.utils import _get_latest_schema_revision, _get_schema_version, create_sqlalchemy_engine
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("BTC_LIFECYCLE_CACHE_DIR", str(tmp_path / "cache"))
    database = tmp_path / "store" / "mlflow.db"
    seed_sqlite_store(database)
    engine = create_sqlalchemy_engine(f"sqlite:///{database}")
    try:
        assert _get_schema_version(engine) == _get_latest_schema_revision()
    finally:
        engine.dispose()
    client = MlflowClient(tracking_uri=f"sqlite:///{database}")
    assert [experiment.name for experiment in client.search_experiments()] == ["Default"]


def test_seeding_never_touches_an_existing_store(tmp_path, monkeypatch):
    monkeypatch.setenv("BTC_LIFECYCLE_CACHE_DIR", str(tmp_path / "cache"))
    database = tmp_path / "mlflow.db"
    database.write_bytes(b"not a template")
    seed_sqlite_store(database)
    assert database.read_bytes() == b"not a template"
    assert not (tmp_path / "cache").exists()
