"""``python -m btc_lifecycle.serving``: the service the settings describe, started as a program on
a free port before any run (no champion, no Feast registry: it starts anyway, says why it cannot
answer yet, and stops cleanly on SIGTERM), and every refusal to start as one ``serving:`` line
with exit code 2. Scoring itself is in test_serving.py; a real champion in test_serving_e2e.py."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from btc_lifecycle.config import load_settings
from btc_lifecycle.modelling.features import FEATURE_COLUMNS
from btc_lifecycle.production.processes import wait_for
from btc_lifecycle.serving.__main__ import FEATURES_HINT, build_service, main, parse_arguments
from btc_lifecycle.serving.online_features import InMemoryFeatureSource
from btc_lifecycle.serving.service import Market
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT

START_SECONDS = 180  # Feast's and MLflow's imports on a loaded two-core machine


def store_environment(root: Path) -> dict[str, str]:
    """Every store of the service under ``root``: an empty MLflow registry, no Feast registry."""
    database = root / "mlflow" / "mlflow.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    return {
        "FEATURE_DB_PATH": str(root / "feature_store" / "bitcoin.duckdb"),
        "BTC_REPORT_DIR": str(root / "reports"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{database}",
        "MLFLOW_REGISTRY_URI": f"sqlite:///{database}",
    }


def get(url: str, path: str) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_the_service_starts_before_any_run_says_why_it_cannot_answer_and_stops_on_sigterm(tmp_path):
    env = {**os.environ, **store_environment(tmp_path)}
    settings = load_settings(env)
    ready = tmp_path / "serving.url"
    command = [sys.executable, "-m", "btc_lifecycle.serving", "--port", "0", "--reload-seconds", "0"]
    process = subprocess.Popen(
        [*command, "--ready-file", str(ready), "--log-requests"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: ready.exists() or process.poll() is not None, START_SECONDS, 0.05)
        assert process.poll() is None, process.communicate()
        url = ready.read_text().strip()
        assert url.startswith("http://127.0.0.1:")
        status, health = get(url, "/health")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert out == (
        f"serving no champion yet for BTC/USDT 1m at {url} (GET {url}/predict?symbol=BTC/USDT, {url}/health); "
        f"predictions logged to {settings.online_predictions_path}\n"
    )
    assert status == 503 and health["status"] == "degraded"
    no_champion, no_registry = health["problems"]
    assert no_champion.startswith("no champion loaded: ")
    registry = tmp_path / "feature_store" / "feast" / "registry.db"
    assert no_registry.startswith(f"online store unreachable: no Feast registry at {registry}: run `make run`")
    assert health["model"]["reload_interval_seconds"] == 0
    assert health["prediction_log"] == str(settings.online_predictions_path)
    lines = err.splitlines()
    assert f"serving: {no_champion.removeprefix('no champion loaded: ')}" in lines  # the reason, said at start
    assert any(line.startswith("serving: 127.0.0.1 ") and '"GET /health HTTP/1.1" 503' in line for line in lines)


def test_a_negative_reload_interval_is_refused_in_one_line(capsys):
    assert main(["--port", "0", "--reload-seconds", "-1"]) == 2
    assert capsys.readouterr().err == "serving: --reload-seconds must be 0 or more, got -1.0\n"


def test_a_missing_config_file_is_refused_naming_it(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nowhere.json"
    monkeypatch.setenv("INGEST_CONFIG", str(missing))
    assert main(["--port", "0"]) == 2
    assert capsys.readouterr().err == (
        f"serving: {missing}: config file not found (set INGEST_CONFIG to another path)\n"
    )


def test_a_bad_serving_port_in_the_environment_is_refused_naming_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("SERVING_PORT", "http")
    assert main([]) == 2
    assert capsys.readouterr().err == (
        "serving: environment: SERVING_PORT must be a port number from 1 to 65535, got 'http'\n"
    )


def test_a_port_in_use_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    for key, value in store_environment(tmp_path).items():
        monkeypatch.setenv(key, value)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["--port", str(taken.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("serving: [Errno 98] Address already in use")


def test_the_arguments_default_to_the_settings():
    arguments = parse_arguments([])
    assert (arguments.host, arguments.port, arguments.reload_seconds, arguments.ready_file) == (None, None, None, None)
    assert arguments.log_requests is False
    arguments = parse_arguments(["--host", "::1", "--port", "9000", "--reload-seconds", "2.5"])
    assert (arguments.host, arguments.port, arguments.reload_seconds) == ("::1", 9000, 2.5)


def test_the_service_built_from_the_settings_serves_their_market_and_logs_beside_the_store(tmp_path):
    settings = load_settings(store_environment(tmp_path))
    source = InMemoryFeatureSource()
    service = build_service(settings, source=source, clock=lambda: None)
    try:
        assert service.markets == (Market(settings.ingest.symbol, settings.ingest.interval),)
        assert service.source is source
        assert service.feature_columns == tuple(FEATURE_COLUMNS)
        assert (
            service.log.path
            == settings.online_predictions_path
            == tmp_path / "feature_store" / ("online_predictions.sqlite")
        )
        assert service.watcher.loader.model_name == settings.model.name
        assert service.features_hint == FEATURES_HINT
    finally:
        service.log.close()
