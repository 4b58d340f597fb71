"""The online scoring service over HTTP, on loopback: what it answers, what it refuses and why,
how a moved champion alias reaches it, and that every answer is logged.

The champion here is a small XGBoost classifier trained in the test (what a registry would load),
the features an in-memory source: the real MLflow registry and Feast store are in
test_serving_e2e.py.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from xgboost import XGBClassifier

from btc_lifecycle.modelling.features import FEATURE_COLUMNS
from btc_lifecycle.serving.__main__ import main as serving_main
from btc_lifecycle.serving.champion import (
    ChampionWatcher,
    IncompatibleChampion,
    NoChampion,
    champion_from_classifier,
)
from btc_lifecycle.serving.online_features import InMemoryFeatureSource, OnlineFeatures
from btc_lifecycle.serving.prediction_log import PredictionLog, read_online_predictions
from btc_lifecycle.serving.server import ServingServer, is_loopback
from btc_lifecycle.serving.service import Market, ScoringService

NOW = datetime(2024, 3, 10, 12, 0, 30, tzinfo=UTC)
NEWEST = datetime(2024, 3, 10, 11, 59, tzinfo=UTC)
MARKET = Market("BTC/USDT", "1m")


def classifier(seed: int, columns=FEATURE_COLUMNS) -> XGBClassifier:
    """A small classifier on ``columns``, early-stopped like the project's (so it predicts with
    fewer trees than it holds: the service must use the same ones)."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(600, len(columns))), columns=list(columns))
    y = (x.iloc[:, 0] + rng.normal(scale=1.0, size=600) > 0).astype("int64")
    model = XGBClassifier(
        n_estimators=60, max_depth=2, learning_rate=0.3, early_stopping_rounds=3, n_jobs=1, random_state=seed
    )
    model.fit(x.iloc[:400], y.iloc[:400], eval_set=[(x.iloc[400:], y.iloc[400:])], verbose=False)
    assert model.best_iteration + 1 < 60
    return model


MODELS = {"1": classifier(1), "2": classifier(2), "3": classifier(3, columns=FEATURE_COLUMNS[:-1])}
VALUES = dict(zip(FEATURE_COLUMNS, np.random.default_rng(9).normal(size=len(FEATURE_COLUMNS)), strict=True))


def expected_probability(version: str, values=VALUES) -> float:
    row = pd.DataFrame([values])[list(FEATURE_COLUMNS)]
    return float(MODELS[version].predict_proba(row)[0, 1])


class RegistryStandIn:
    """The champion alias and the versions it can point at, as MLflow would hand them over."""

    model_name = "btc_direction"

    def __init__(self, alias: str | None = "1") -> None:
        self.alias = alias
        self.loads: list[str] = []

    def champion_version(self) -> str:
        if self.alias is None:
            raise NoChampion("no version of model 'btc_direction' is champion yet: run `make run`")
        return self.alias

    def load(self, version: str):
        self.loads.append(version)
        return champion_from_classifier(MODELS[version], self.model_name, version, FEATURE_COLUMNS, NOW)


class Client:
    """JSON over one kept-alive HTTP connection."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=10)

    def request(self, method: str, path: str, body: bytes | None = None, headers=None) -> tuple[int, dict, dict]:
        self.connection.request(method, path, body=body, headers=headers or {})
        response = self.connection.getresponse()
        payload = json.loads(response.read())
        return response.status, payload, dict(response.getheaders())

    def get(self, path: str) -> tuple[int, dict]:
        return self.request("GET", path)[:2]

    def post(self, path: str, body: bytes = b"") -> tuple[int, dict]:
        return self.request("POST", path, body, {"Content-Type": "application/json"})[:2]


@pytest.fixture
def source() -> InMemoryFeatureSource:
    features = InMemoryFeatureSource()
    features.put("BTC/USDT", "1m", OnlineFeatures(NEWEST, dict(VALUES)))
    return features


@pytest.fixture
def registry() -> RegistryStandIn:
    return RegistryStandIn()


@pytest.fixture
def serving(tmp_path, source, registry):
    """The service on a free loopback port, champion version 1 loaded, no watcher thread."""
    watcher = ChampionWatcher(registry, clock=lambda: NOW)
    log = PredictionLog(tmp_path / "online_predictions.sqlite")
    service = ScoringService([MARKET], source, watcher, log, FEATURE_COLUMNS, clock=lambda: NOW)
    watcher.start(0)
    with ServingServer(service) as server:
        client = Client(server.url)
        yield client, service
        client.connection.close()
    watcher.stop()
    log.close()


def test_predict_answers_the_champions_probability_for_the_newest_online_candle(serving):
    client, _ = serving
    status, body = client.get("/predict?symbol=BTC/USDT")
    assert status == 200
    assert body["up_probability"] == pytest.approx(expected_probability("1"), abs=1e-7)
    assert body["model"] == {"name": "btc_direction", "version": "1"}
    assert body["open_time"] == "2024-03-10T11:59:00+00:00"
    assert body["symbol"] == "BTC/USDT" and body["interval"] == "1m"
    assert body["feature_age_seconds"] == 30.0  # the candle closed at 12:00:00, answered at 12:00:30


def test_the_answer_names_the_feature_values_it_used_in_feature_order(serving):
    client, _ = serving
    _, body = client.get("/predict?symbol=BTC%2FUSDT&interval=1m")
    assert list(body["features"]) == list(FEATURE_COLUMNS)
    assert body["features"] == pytest.approx(VALUES)


def test_post_predict_with_a_json_body_answers_like_get(serving):
    client, _ = serving
    status, posted = client.post("/predict", json.dumps({"symbol": "BTC/USDT"}).encode())
    assert status == 200
    assert posted == client.get("/predict?symbol=BTC/USDT")[1]


def test_every_answer_is_logged_with_its_candle_version_and_probability(serving, tmp_path):
    client, _ = serving
    for _ in range(3):
        client.get("/predict?symbol=BTC/USDT")
    logged = read_online_predictions(tmp_path / "online_predictions.sqlite", "BTC/USDT", "1m")
    assert len(logged) == 3
    assert set(logged["open_time"]) == {pd.Timestamp(NEWEST)}
    assert set(logged["served_at"]) == {pd.Timestamp(NOW)}
    assert set(logged["model_version"]) == {"1"}
    assert logged["up_probability"].to_numpy() == pytest.approx([expected_probability("1")] * 3, abs=1e-7)
    assert read_online_predictions(tmp_path / "online_predictions.sqlite", "ETH/USDT", "1m").empty


def test_refused_requests_are_not_logged(serving, tmp_path):
    client, service = serving
    client.get("/predict?symbol=ETH/USDT")
    client.get("/predict")
    assert service.log.count() == 0


def test_a_moved_alias_is_served_after_a_reload_without_a_restart(serving, registry):
    client, _ = serving
    registry.alias = "2"
    assert client.get("/predict?symbol=BTC/USDT")[1]["model"]["version"] == "1"  # not checked yet
    status, reload = client.post("/reload")
    assert status == 200
    assert reload["previous_version"] == "1" and reload["version"] == "2" and reload["changed"] is True
    _, body = client.get("/predict?symbol=BTC/USDT")
    assert body["model"]["version"] == "2"
    assert body["up_probability"] == pytest.approx(expected_probability("2"), abs=1e-7)


def test_a_reload_with_the_alias_unmoved_loads_nothing(serving, registry):
    client, _ = serving
    status, reload = client.post("/reload")
    assert status == 200 and reload["changed"] is False and reload["version"] == "1"
    assert registry.loads == ["1"]


def test_a_champion_on_other_features_is_refused_and_the_old_one_keeps_serving(serving, registry):
    client, _ = serving
    registry.alias = "3"
    status, reload = client.post("/reload")
    assert status == 200
    assert reload["version"] == "1" and reload["changed"] is False
    assert "trained on other features (15 columns; this code computes 16)" in reload["error"]
    assert client.get("/predict?symbol=BTC/USDT")[1]["model"]["version"] == "1"


def test_the_watcher_thread_swaps_in_a_moved_alias_on_its_own(tmp_path, source, registry):
    watcher = ChampionWatcher(registry)
    watcher.start(0.02)
    try:
        registry.alias = "2"
        deadline = time.monotonic() + 10
        while watcher.current.version != "2" and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a condition with a deadline, not a wait for the thread
        assert watcher.current.version == "2"
    finally:
        watcher.stop()


def test_requests_keep_being_answered_while_a_new_champion_loads(tmp_path, source):
    """A check holds no lock a request needs: requests answer with the old version until the swap."""
    loading, release = threading.Event(), threading.Event()

    class SlowRegistry(RegistryStandIn):
        def load(self, version):
            if version == "2":
                loading.set()
                release.wait(10)
            return super().load(version)

    registry = SlowRegistry()
    watcher = ChampionWatcher(registry)
    watcher.start(0)
    service = ScoringService([MARKET], source, watcher, None, FEATURE_COLUMNS)
    registry.alias = "2"
    reload = threading.Thread(target=watcher.check)
    reload.start()
    try:
        assert loading.wait(10)
        assert service.predict({"symbol": "BTC/USDT"})["model"]["version"] == "1"
    finally:
        release.set()
        reload.join()
    assert service.predict({"symbol": "BTC/USDT"})["model"]["version"] == "2"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/predict", None, 400, "missing parameter 'symbol' (e.g. symbol=BTC/USDT)"),
        ("GET", "/predict?symbol=", None, 400, "missing parameter 'symbol'"),
        ("GET", "/predict?symbol=ETH/USDT", None, 404, "unknown symbol 'ETH/USDT': this service serves BTC/USDT"),
        ("GET", "/predict?symbol=btcusdt", None, 400, "malformed symbol 'btcusdt'"),
        ("GET", "/predict?symbol=BTC/USDT&interval=5m", None, 404, "unknown interval '5m' for BTC/USDT"),
        ("GET", "/predict?symbl=BTC/USDT", None, 400, "unknown parameter 'symbl' (known: symbol, interval)"),
        ("GET", "/predict?symbol=BTC/USDT&symbol=ETH/USDT", None, 400, "parameter 'symbol' is given more than once"),
        ("GET", "/predict?symbol", None, 400, "malformed query string 'symbol'"),
        ("POST", "/predict", b'{"symbol": "BTC/USDT"', 400, "request body is not valid JSON"),
        ("POST", "/predict", b'["BTC/USDT"]', 400, "request body must be a JSON object, got list"),
        ("POST", "/predict", b"", 400, "empty request body"),
        ("POST", "/predict", b'{"symbol": 7}', 400, "malformed symbol 7"),
        ("GET", "/score", None, 404, "unknown path '/score' (known: /health, /predict, /reload)"),
        ("GET", "/reload", None, 405, "GET is not allowed on /reload (use POST)"),
        ("DELETE", "/predict", None, 405, "DELETE is not allowed on /predict (use GET or POST)"),
    ],
)
def test_a_bad_request_gets_a_4xx_with_a_json_message_naming_what_was_wrong(
    serving, method, path, body, status, message
):
    client, _ = serving
    answered, payload, headers = client.request(method, path, body)
    assert answered == status
    assert payload["status"] == status
    assert message in payload["error"]
    assert headers["Content-Type"] == "application/json"
    if status == 405:
        assert headers["Allow"]


def test_an_oversized_body_is_refused(serving):
    client, _ = serving
    status, payload, headers = client.request("POST", "/predict", b"{" + b" " * 70_000 + b"}")
    assert status == 413
    assert "over the limit" in payload["error"]


def test_no_online_features_yet_is_a_503_that_says_what_to_run(serving, source):
    client, service = serving
    source.rows.clear()
    status, body = client.get("/predict?symbol=BTC/USDT")
    assert status == 503
    assert body["error"].startswith("no online features for BTC/USDT 1m yet: run `make run`")


def test_an_unreadable_online_store_is_a_503_with_its_reason(serving, source):
    client, _ = serving
    source.unavailable = "no Feast registry at /x/registry.db: run `make run`"
    status, body = client.get("/predict?symbol=BTC/USDT")
    assert status == 503
    assert body["error"] == "the online store cannot be read: no Feast registry at /x/registry.db: run `make run`"


def test_a_newest_candle_with_incomplete_features_is_not_scored(serving, source):
    client, _ = serving
    source.put("BTC/USDT", "1m", OnlineFeatures(NEWEST, {**VALUES, "volatility_60": math.nan}))
    status, body = client.get("/predict?symbol=BTC/USDT")
    assert status == 503
    assert "has no value for volatility_60" in body["error"]


def test_an_online_store_without_a_feature_this_code_computes_is_a_503(serving, source):
    client, _ = serving
    source.put("BTC/USDT", "1m", OnlineFeatures(NEWEST, {k: v for k, v in VALUES.items() if k != "rsi_14"}))
    status, body = client.get("/predict?symbol=BTC/USDT")
    assert status == 503
    assert "lacks feature(s) rsi_14" in body["error"]


def test_without_a_champion_predict_is_a_503_that_says_what_to_run(tmp_path, source):
    watcher = ChampionWatcher(RegistryStandIn(alias=None))
    watcher.start(0)
    service = ScoringService([MARKET], source, watcher, None, FEATURE_COLUMNS)
    with ServingServer(service) as server:
        client = Client(server.url)
        status, body = client.get("/predict?symbol=BTC/USDT")
        health_status, health = client.get("/health")
        reload_status, reload = client.post("/reload")
        client.connection.close()
    assert status == 503
    assert (
        body["error"]
        == "no champion to score with: no version of model 'btc_direction' is champion yet: run `make run`"
    )
    assert health_status == 503 and health["model"]["version"] is None
    assert reload_status == 503 and "run `make run`" in reload["error"]


def test_health_names_the_loaded_version_and_the_online_store(serving, tmp_path):
    client, _ = serving
    status, body = client.get("/health")
    assert status == 200
    assert body["status"] == "ok" and body["problems"] == []
    assert body["model"]["version"] == "1" and body["model"]["name"] == "btc_direction"
    assert body["model"]["last_check"]["error"] is None
    assert body["online_store"]["reachable"] is True
    assert body["online_store"]["markets"] == {"BTC/USDT 1m": {"latest_open_time": "2024-03-10T11:59:00+00:00"}}
    assert body["prediction_log"] == str(tmp_path / "online_predictions.sqlite")


def test_health_is_a_503_when_the_online_store_is_unreachable(serving, source):
    client, _ = serving
    source.unavailable = "connection refused"
    status, body = client.get("/health")
    assert status == 503
    assert body["status"] == "degraded"
    assert body["online_store"]["reachable"] is False
    assert body["problems"] == ["online store unreachable: connection refused"]


def test_many_concurrent_clients_are_all_answered_and_logged(serving):
    _, service = serving
    url = f"http://127.0.0.1:{service_port(serving)}"
    statuses: list[int] = []

    def burst() -> None:
        client = Client(url)
        statuses.extend(client.get("/predict?symbol=BTC/USDT")[0] for _ in range(20))
        client.connection.close()

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 80
    assert service.log.count() == 80


def service_port(serving) -> int:
    client, _ = serving
    return client.connection.port


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_are_loopback(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org", ""])
def test_a_host_that_is_not_loopback_is_refused_unless_allowed(host, source, registry):
    service = ScoringService([MARKET], source, ChampionWatcher(registry), None, FEATURE_COLUMNS)
    with pytest.raises(ValueError, match="is not a loopback address"):
        ServingServer(service, host=host)
    ServingServer(service, host=host or "0.0.0.0", allow_remote=True)  # constructed, never bound


def test_the_command_refuses_a_remote_host_in_one_line(capsys):
    assert serving_main(["--host", "0.0.0.0", "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("serving: host '0.0.0.0' is not a loopback address")
    assert "serving.allow_remote" in error


def test_the_feature_age_counts_from_the_candles_close(source, registry):
    later = NOW + timedelta(minutes=5)
    watcher = ChampionWatcher(registry)
    watcher.start(0)
    service = ScoringService([MARKET], source, watcher, None, FEATURE_COLUMNS, clock=lambda: later)
    assert service.predict({"symbol": "BTC/USDT"})["feature_age_seconds"] == 330.0


def test_a_classifier_on_another_objective_is_refused():
    model = classifier(4)
    model.get_booster().set_param({"objective": "reg:squarederror"})
    with pytest.raises(IncompatibleChampion, match="not binary:logistic"):
        champion_from_classifier(model, "btc_direction", "4", FEATURE_COLUMNS, NOW)
