"""The replayed month's state stays: its timeline as files, and the make targets that open it."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest

from btc_lifecycle.simulation import Timeline, main, summary
from btc_lifecycle_tests.conftest import REPO_ROOT

AT = pd.Timestamp("2023-03-10T18:00Z")


def a_month() -> Timeline:
    timeline = Timeline()
    timeline.add(AT, "drift", by="schedule", data_drift="FAIL", performance="pass")
    timeline.add(AT, "retrain", because="data_drift")
    timeline.add(AT, "keep", version=2, decision="keep_champion", p_value=0.94)
    timeline.add(AT, "rebaseline", reference_until="2023-03-10T17:58:00+00:00")
    timeline.add(AT + pd.Timedelta(hours=6), "skip", reason="cool-down: ...")
    return timeline


def test_the_timeline_is_written_as_json_and_csv_with_one_entry_per_event(tmp_path):
    json_path, csv_path = a_month().write(tmp_path)
    events = json.loads(json_path.read_text())
    assert [event["kind"] for event in events] == ["drift", "retrain", "keep", "rebaseline", "skip"]
    assert events[0]["at"] == "2023-03-10T18:00:00+00:00" and events[2]["p_value"] == 0.94
    table = pd.read_csv(csv_path)
    assert list(table["kind"]) == [event["kind"] for event in events]


def test_the_summary_counts_each_decision():
    line = summary(a_month())
    assert "1 retraining(s)" in line and "1 kept champion(s)" in line and "1 retraining(s) skipped in cool-down" in line
    assert "1 with data drift" in line


def test_a_state_folder_that_is_not_empty_is_refused(tmp_path, capsys):
    (tmp_path / "something").write_text("kept")
    with pytest.raises(SystemExit):
        main(["--candles", str(tmp_path / "candles.csv"), "--state", str(tmp_path)])
    assert "is not empty" in capsys.readouterr().err


def make_dry_run(target: str, simulation) -> str:
    completed = subprocess.run(
        ["make", "-n", target, f"SIMULATION={simulation}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(simulation)},
    )
    return completed.stdout + completed.stderr


def test_make_opens_a_simulation_folder_in_the_mlflow_ui_and_the_dagster_ui(tmp_path):
    (tmp_path / "simulation.json").write_text(json.dumps({"candles": "/data/march.csv"}))
    mlflow_ui = make_dry_run("mlflow-ui", tmp_path)
    assert f"sqlite:///{tmp_path}/mlflow/mlflow.db" in mlflow_ui
    dev = make_dry_run("dev", tmp_path)
    assert f"{tmp_path}/dagster_home" in dev and '--candles "/data/march.csv"' in dev


def test_make_refuses_a_folder_that_no_simulation_wrote(tmp_path):
    assert "is not a folder written by make simulate" in make_dry_run("dev", tmp_path)
