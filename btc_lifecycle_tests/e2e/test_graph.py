"""End to end: the whole asset graph through `dagster asset materialize`, as `make run` does it."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from pypdf import PdfReader

from btc_lifecycle.adapters.feature_store import read_table
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.modelling.features import FEATURE_COLUMNS
from btc_lifecycle_tests.conftest import write_generic_csv
from btc_lifecycle_tests.e2e.workspace import Workspace

pytestmark = pytest.mark.e2e


# Unchanged inputs train nothing (test_demo.py): the second run forces the retrain, as
# `make run RETRAIN=1` does, so that the gate compares two models on equal data.
FORCE_RETRAIN = json.dumps({"ops": {"model": {"config": {"force_retrain": True}}}})
# Planted in the first run's environment: they must appear in no output and no stored file.
API_KEY, API_SECRET = "PLANTEDKEY9f3a1c77e0", "PLANTEDSECRET4b8d2e61aa"


@pytest.fixture(scope="module")
def graph_twice(tmp_path_factory):
    """The whole graph materialized twice on the same generated file: champion, then a forced
    retrain, the challenger. The first run has an exchange API key in its environment."""
    root = tmp_path_factory.mktemp("graph")
    path = write_generic_csv(synthetic_candles(4_000, seed=23), root / "candles.csv")
    workspace = Workspace(root / "state")
    # MLFLOW_REGISTRY_URI blanked: an earlier test's mlflow.set_registry_uri() may linger in os.environ.
    first = workspace.materialize(path, BINANCE_API_KEY=API_KEY, BINANCE_API_SECRET=API_SECRET, MLFLOW_REGISTRY_URI="")
    with duckdb.connect(str(workspace.feature_db), read_only=True) as conn:
        after_first = {
            "predictions": read_table(conn, "candles_predictions"),
            "features": read_table(conn, "candles_features"),
        }
    second = workspace.materialize(path, extra=["--config-json", FORCE_RETRAIN])
    return workspace, after_first, first, second


def test_no_mlflow_run_is_left_running_and_each_carries_its_dagster_run(graph_twice):
    workspace, *_ = graph_twice
    client = workspace.mlflow_client()
    experiment = client.get_experiment_by_name("btc_direction")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2
    assert {run.info.status for run in runs} == {"FINISHED"}
    assert all(run.data.tags.get("dagster_run_id") for run in runs)
    assert all(0.3 < run.data.metrics["xgboost_roc_auc"] < 0.7 for run in runs)
    assert all("prior_log_loss" in run.data.metrics for run in runs)


def test_the_first_model_is_champion_and_an_equal_retrain_stays_challenger(graph_twice):
    workspace, *_ = graph_twice
    client = workspace.mlflow_client()
    assert str(client.get_model_version_by_alias("btc_direction", "champion").version) == "1"
    challenger = client.get_model_version_by_alias("btc_direction", "challenger")
    assert str(challenger.version) == "2"
    assert challenger.tags["promotion_decision"] == "keep_champion"
    assert "not beyond noise" in challenger.tags["promotion_reason"]
    assert float(challenger.tags["gate_p_value"]) > 0.05


def test_reloading_the_champion_by_alias_reproduces_its_predictions(graph_twice):
    workspace, after_first, *_ = graph_twice
    predictions, features = after_first["predictions"], after_first["features"]
    assert len(predictions) > 0
    assert set(predictions["model_version"]) == {"1"}
    mlflow.set_tracking_uri(workspace.env()["MLFLOW_TRACKING_URI"])
    mlflow.set_registry_uri(workspace.env()["MLFLOW_TRACKING_URI"])
    try:
        champion = mlflow.xgboost.load_model("models:/btc_direction@champion")
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    rows = features.set_index("open_time").loc[predictions["open_time"], list(FEATURE_COLUMNS)]
    np.testing.assert_allclose(champion.predict_proba(rows)[:, 1], predictions["up_probability"], rtol=1e-6)


def test_predictions_are_out_of_sample_and_carry_their_realized_labels(graph_twice):
    workspace, after_first, *_ = graph_twice
    predictions, features = after_first["predictions"], after_first["features"]
    champion = workspace.mlflow_client().get_model_version_by_alias("btc_direction", "champion")
    assert predictions["open_time"].min() >= pd.Timestamp(champion.tags["heldout_start"])
    truth = features.set_index("open_time")["target"]
    realized = predictions.dropna(subset=["realized_label"])
    assert len(realized) == len(predictions) - 1  # the newest candle has no next candle yet
    assert (
        realized["realized_label"].astype(int).to_numpy() == truth.loc[realized["open_time"]].astype(int).to_numpy()
    ).all()


def test_the_report_pdf_counts_what_duckdb_holds(graph_twice):
    workspace, *_ = graph_twice
    reports = sorted((workspace.root / "reports" / "ingestion").iterdir())
    assert len(reports) == 2
    text = "".join(page.extract_text() for page in PdfReader(reports[-1] / "report.pdf").pages)
    with duckdb.connect(str(workspace.feature_db), read_only=True) as conn:
        stored = conn.execute("SELECT count(*) FROM candles").fetchone()[0]
    assert stored == 4_000
    # The run facts table, row by row, not "4,000" anywhere on the page.
    assert f"Rows total in the store {stored:,}" in text
    assert f"Candles in this report {stored:,}" in text
    assert "Rows new in this run 0" in text  # the second run on the same file fetched nothing new
    for section in ("Run facts", "Summary statistics", "Label balance", "Missing minutes"):
        assert section in text


def test_the_model_asset_metadata_names_its_mlflow_run_version_and_card(graph_twice):
    workspace, *_ = graph_twice
    with dg.DagsterInstance.from_config(str(workspace.root / "dagster_home")) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("model"))
    metadata = {key: value.value for key, value in event.asset_materialization.metadata.items()}
    client = workspace.mlflow_client()
    run = client.get_run(metadata["mlflow_run_id"])
    assert run.data.tags["dagster_run_id"] == event.run_id
    assert metadata["model_version"] == 2 and metadata["alias"] == "challenger"
    assert metadata["mlflow_run"].endswith(f"/runs/{run.info.run_id}")
    card = metadata["model_card"].removeprefix("file://")
    assert card.endswith("model_card.html") and "btc_direction" in open(card).read()


def test_a_planted_api_key_appears_nowhere_after_the_whole_graph_and_no_model_is_pickled(graph_twice):
    workspace, _, first, second = graph_twice
    leaks = [
        f"{run} {name}"
        for run, result in (("first", first), ("second", second))
        for name in ("stdout", "stderr")
        if API_KEY in getattr(result, name) or API_SECRET in getattr(result, name)
    ]
    files = [p for p in workspace.root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in files) and any(p.name == "mlflow.db" for p in files)
    assert any(p.name == "ingestion_stats.json" for p in files) and any(p.suffix == ".pdf" for p in files)
    for file in files:  # event logs, run storage, DuckDB, stats, reports, MLflow db and artifacts
        data = file.read_bytes()
        if API_KEY.encode() in data or API_SECRET.encode() in data:
            leaks.append(str(file.relative_to(workspace.root)))
    assert leaks == []
    models = [p.parent for p in files if p.name == "MLmodel"]
    assert models
    for model in models:
        flavors = yaml.safe_load((model / "MLmodel").read_text())["flavors"]
        assert flavors["xgboost"]["model_format"] == "ubj"
        assert "pickle" not in (model / "MLmodel").read_text().lower()
        assert not [p for p in model.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
