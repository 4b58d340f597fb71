"""The project as the `dg` CLI sees it: `dg check defs` passes and `dg list defs` shows the graph."""

from __future__ import annotations

import json
import subprocess

import pytest

from btc_lifecycle_tests.e2e.workspace import BIN, GRAPH_ASSETS, REPO_ROOT

pytestmark = pytest.mark.e2e


def dg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dg"), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_dg_check_defs_passes():
    result = dg("check", "defs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_dg_list_defs_shows_every_asset_check_job_schedule_and_sensor_of_the_code_location():
    result = dg("list", "defs", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    listed = json.loads(result.stdout)
    assets = {asset["asset_key"] for asset in listed["assets"]}
    assert assets == set(GRAPH_ASSETS)
    sensors = {sensor["name"] for sensor in listed["sensors"]}
    assert sensors == {"retrain_on_drift_sensor", "follow_inputs_sensor"}
    schedules = {schedule["name"] for schedule in listed["schedules"]}
    assert schedules == {"ingestion_schedule", "report_schedule", "monitoring_schedule"}
    jobs = {job["name"] for job in listed["jobs"]}
    assert jobs == {"ingestion_job", "report_job", "monitoring_job", "retraining_job"}
    checks = {check["key"] for check in listed["asset_checks"]}
    assert "features:features_no_look_ahead" in checks
    assert "raw_candles:raw_candles_unique_keys" in checks
