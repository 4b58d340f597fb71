"""End to end: `python -m btc_lifecycle.serving` over HTTP against a real MLflow champion and the
real Feast online store the serving assets materialized; a promotion reaches it without a
restart, and what it served is judged by the drift report's realized-performance check.

One scenario, recorded by the fixture, asserted by the tests:

1. features, model (version 1, champion), predictions and the Feast assets on 4,000 candles;
2. the service starts; it answers for the newest candle T with version 1 (batch scored T too);
3. version 2 is registered and made champion: the service answers once more with version 1
   (the alias is not checked yet), then, after ``POST /reload``, twice with version 2;
4. ten candles arrive, features and the Feast assets run (not predictions): it answers three
   times for T + 10;
5. five more candles arrive, features and drift_report run: T and T + 10 are realized.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import mlflow.xgboost
import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.adapters.feature_store import read_features
from btc_lifecycle.defs.modelling.assets import daily_feature_asset, model_asset, predictions_asset
from btc_lifecycle.defs.monitoring.assets import drift_report_asset
from btc_lifecycle.defs.serving.assets import daily_feast_export_asset, feast_online_features
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.modelling.features import FEATURE_COLUMNS
from btc_lifecycle.modelling.walk_forward import WalkForwardConfig, predict_up_probability, train_walk_forward
from btc_lifecycle.resources import FeatureStoreResource, ModelRegistryResource
from btc_lifecycle.resources.feast_store import FeastStoreResource
from btc_lifecycle.resources.model_registry import mlflow_resource
from btc_lifecycle.serving.prediction_log import read_online_predictions
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG, stored_days
from btc_lifecycle_tests.defs.modelling.test_model import store_with
from btc_lifecycle_tests.defs.modelling.test_predictions import add_candles, metadata_of
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT

pytestmark = pytest.mark.e2e

CANDLES = synthetic_candles(4_015, seed=12)
FIRST, THEN, LAST = CANDLES.iloc[:4_000], CANDLES.iloc[:4_010], CANDLES
CONFIG = {
    "model": {**DEFAULT_CONFIG["model"], "n_folds": 3, "prediction_rows": 100},
    "monitoring": {"current_window": 200, "reference_window": 500, "min_realized_labels": 5},
}
SECOND_MODEL = WalkForwardConfig(n_folds=2, n_estimators=40, early_stopping_rounds=10, n_jobs=1, random_state=3)
START_SECONDS = 180  # Feast's and MLflow's imports on a loaded two-core machine
PREDICT = "/predict?symbol=BTC/USDT"


def run(settings, assets) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        assets,
        resources={
            "settings": settings,
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
            "feast_store": FeastStoreResource(settings=settings),
            "mlflow": mlflow_resource(settings),
            "model_registry": ModelRegistryResource.from_settings(settings),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        tags=stored_days(settings),
    )
    assert result.success, [event.message for event in result.all_events if event.is_step_failure]
    return result


def start_service(settings, root: Path) -> tuple[subprocess.Popen, str]:
    """``python -m btc_lifecycle.serving`` on a free port, pointed at the test's stores."""
    ready = root / "serving.url"
    env = {
        **os.environ,
        "INGEST_CONFIG": str(settings.config_path),
        "FEATURE_DB_PATH": str(settings.feature_db_path),
        "BTC_REPORT_DIR": str(settings.report_dir),
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "MLFLOW_REGISTRY_URI": settings.mlflow_registry_uri,
    }
    command = [sys.executable, "-m", "btc_lifecycle.serving", "--port", "0", "--reload-seconds", "0"]
    process = subprocess.Popen(
        [*command, "--ready-file", str(ready)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + START_SECONDS
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate()
            raise AssertionError(f"the service did not start ({process.returncode}):\n{out}\n{err}")
        time.sleep(0.05)  # polling for the ready file, with a deadline
    return process, ready.read_text().strip()


class Client:
    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
        self.connection.request(method, path, body=body)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())


def champion_probability(settings, version: str, row: pd.DataFrame) -> float:
    """What the registered version predicts for the row, loaded the way the batch scorer does."""
    client = ModelRegistryResource.from_settings(settings).registry().client
    loaded = mlflow.xgboost.load_model(client.get_model_version_download_uri(settings.model.name, version))
    return float(predict_up_probability(loaded, row)[0])


def table(settings) -> pd.DataFrame:
    with duckdb.connect(str(settings.feature_db_path), read_only=True) as conn:
        return read_features(conn, settings.ingest.series)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving_e2e")
    settings = store_with(FIRST, root, **CONFIG)
    features, feast_offline_features = daily_feature_asset(settings), daily_feast_export_asset(settings)
    run(
        settings,
        [features, model_asset(settings), predictions_asset(settings), feast_offline_features, feast_online_features],
    )
    first_table = table(settings)
    process, url = start_service(settings, root)
    seen: dict = {"settings": settings, "first_table": first_table}
    try:
        client = Client(url)
        seen["health"] = client.call("GET", "/health")
        seen["first"] = client.call("GET", PREDICT)
        seen["refusals"] = {
            "unknown symbol": client.call("GET", "/predict?symbol=ETH/USDT"),
            "missing symbol": client.call("GET", "/predict"),
            "malformed json": client.call("POST", "/predict", b"{symbol"),
            "unknown path": client.call("GET", "/nope"),
        }
        # A second version, made champion by hand: the service must follow the alias.
        registry = ModelRegistryResource.from_settings(settings).registry()
        try:
            second = registry.log_training(train_walk_forward(first_table, SECOND_MODEL), dagster_run_id="by-hand")
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
        registry.client.set_registered_model_alias(settings.model.name, "champion", second.model_version)
        seen["second_version"] = second.model_version
        seen["before_reload"] = client.call("GET", PREDICT)
        seen["reload"] = client.call("POST", "/reload")
        seen["after_reload"] = [client.call("GET", PREDICT) for _ in range(2)]
        # New candles reach the online store; the batch predictions asset does not run.
        add_candles(settings, THEN)
        run(settings, [features, feast_offline_features, feast_online_features])
        seen["later_table"] = table(settings)
        seen["later"] = [client.call("GET", PREDICT) for _ in range(3)]
        add_candles(settings, LAST)
        seen["drift"] = metadata_of(run(settings, [features, drift_report_asset(settings)]), "drift_report")
        seen["validated_until"] = registry.champion_info().validated_window[1]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    seen["exit"], seen["stdout"], seen["stderr"] = process.returncode, out, err
    seen["logged"] = read_online_predictions(settings.online_predictions_path, "BTC/USDT", "1m")
    return seen


def test_it_answers_with_the_champions_probability_for_the_newest_online_candle(scenario):
    status, body = scenario["first"]
    newest = scenario["first_table"].iloc[[-1]]
    assert status == 200
    assert body["model"] == {"name": "btc_direction", "version": "1"}
    assert pd.Timestamp(body["open_time"]) == newest["open_time"].iloc[0]
    assert body["up_probability"] == pytest.approx(champion_probability(scenario["settings"], "1", newest), abs=1e-6)


def test_the_features_it_used_are_the_feature_tables(scenario):
    _, body = scenario["first"]
    newest = scenario["first_table"].iloc[-1]
    assert list(body["features"]) == list(FEATURE_COLUMNS)
    np.testing.assert_allclose(list(body["features"].values()), newest[list(FEATURE_COLUMNS)].astype(float), rtol=1e-12)


def test_health_names_the_champion_and_a_reachable_online_store(scenario):
    status, body = scenario["health"]
    assert status == 200, body["problems"]
    assert body["model"]["version"] == "1"
    assert body["online_store"]["reachable"] is True
    assert "feast sqlite online store" in body["online_store"]["source"]


def test_bad_requests_get_a_4xx_with_a_message(scenario):
    refusals = scenario["refusals"]
    assert {name: status for name, (status, _) in refusals.items()} == {
        "unknown symbol": 404,
        "missing symbol": 400,
        "malformed json": 400,
        "unknown path": 404,
    }
    assert "unknown symbol 'ETH/USDT'" in refusals["unknown symbol"][1]["error"]
    assert "not valid JSON" in refusals["malformed json"][1]["error"]


def test_the_version_changes_after_a_promotion_without_a_restart(scenario):
    assert scenario["second_version"] == "2"
    assert scenario["before_reload"][1]["model"]["version"] == "1"  # until the alias is checked
    status, reload = scenario["reload"]
    assert status == 200
    assert (reload["previous_version"], reload["version"], reload["changed"]) == ("1", "2", True)
    newest = scenario["first_table"].iloc[[-1]]
    for status, body in scenario["after_reload"]:
        assert status == 200 and body["model"]["version"] == "2"
        assert body["up_probability"] == pytest.approx(
            champion_probability(scenario["settings"], "2", newest), abs=1e-6
        )


def test_newly_materialized_candles_are_answered_without_a_restart(scenario):
    newest = scenario["later_table"]["open_time"].iloc[-1]
    assert newest == THEN["open_time"].iloc[-1]
    assert {pd.Timestamp(body["open_time"]) for _, body in scenario["later"]} == {newest}


def test_every_answer_is_logged(scenario):
    logged = scenario["logged"]
    first, later = scenario["first_table"]["open_time"].iloc[-1], THEN["open_time"].iloc[-1]
    assert list(zip(logged["open_time"], logged["model_version"], strict=True)) == [
        (first, "1"),
        (first, "1"),  # asked before the reload
        (first, "2"),
        (first, "2"),
        *[(later, "2")] * 3,
    ]


def test_the_realized_performance_check_judges_each_served_candle_once(scenario):
    drift = scenario["drift"]
    # v1's two answers for T repeat a batch prediction; v2 answered T twice and T + 10 three times.
    assert drift["online_predictions_logged"] == 7
    assert drift["online_predictions_judged"] == 2
    assert drift["realized_labels"] == 2  # version 2 made no batch prediction
    assert scenario["validated_until"] < scenario["first_table"]["open_time"].iloc[-1]


def test_it_stops_cleanly_on_sigterm_and_said_where_it_serves(scenario):
    assert scenario["exit"] == 0, scenario["stderr"]
    assert "serving btc_direction version 1 for BTC/USDT 1m at http://127.0.0.1:" in scenario["stdout"]
