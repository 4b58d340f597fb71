"""`make feast-ui`: Feast's UI serves the generated repository offline, on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from btc_lifecycle.adapters.feast_repo import FEATURE_VIEW, apply, export_days, feast_repo, open_store
from btc_lifecycle.config import load_settings
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, compute_features
from btc_lifecycle.production.processes import free_ports

pytestmark = pytest.mark.e2e
STARTUP_DEADLINE_SECONDS = 90  # the UI imports Feast and builds its registry view first


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


def test_feast_ui_lists_the_generated_feature_view_with_every_feature(tmp_path):
    settings = load_settings({"FEATURE_DB_PATH": str(tmp_path / "feature_store" / "bitcoin.duckdb")})
    repo = feast_repo(settings)
    table = compute_features(synthetic_candles(1_440, seed=3), "1m", max_fill_minutes=30)
    export_days(repo, table, table["open_time"].min().floor("D"), table["open_time"].max().ceil("D"))
    apply(open_store(repo), repo)

    (port,) = free_ports(1)
    feast = Path(sys.executable).parent / "feast"
    command = [str(feast), "-c", str(settings.feast_repo_dir), "ui", "--host", "127.0.0.1", "--port", str(port)]
    log = (tmp_path / "feast-ui.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/v1/feature_views?project={settings.feast.project}"
    try:
        deadline, answer = time.monotonic() + STARTUP_DEADLINE_SECONDS, None
        while answer is None and time.monotonic() < deadline and process.poll() is None:
            try:
                answer = get_json(url)
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)  # polling a server that is still starting, not synchronization
        assert answer is not None, (tmp_path / "feast-ui.log").read_text()[-2000:]
        status, body = answer
        assert status == 200
        views = body if isinstance(body, list) else body.get("featureViews", body.get("feature_views", []))
        view = next(v for v in views if v["spec"]["name"] == FEATURE_VIEW)
        assert [feature["name"] for feature in view["spec"]["features"]] == list(FEATURE_COLUMNS)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
