"""The drift report folder: complete with HTML and JSON, or not there at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from btc_lifecycle.monitoring import MonitoringConfig, write_drift_report
from btc_lifecycle.monitoring import report as report_module

NOW = datetime(2024, 1, 6, 3, 0, tzinfo=UTC)
CONFIG = MonitoringConfig(min_realized_labels=1_000)


def predictions(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.4, 0.6, count)


def outcomes(probability: np.ndarray, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(len(probability)) < probability).astype(int)


def test_the_report_folder_holds_html_json_and_the_headline(tmp_path, reference_features, volatile_features):
    current_predictions = predictions(len(volatile_features), seed=2)
    report = write_drift_report(
        reference_features,
        volatile_features,
        tmp_path,
        NOW,
        CONFIG,
        reference_predictions=predictions(len(reference_features), seed=1),
        current_predictions=current_predictions,
        realized_probabilities=current_predictions,
        realized_outcomes=outcomes(current_predictions, seed=3),
    )
    assert report.folder == tmp_path / "drift" / "20240106T030000Z"
    assert sorted(path.name for path in report.folder.iterdir()) == [
        "drift_report.html",
        "drift_snapshot.json",
        "performance_report.html",
        "performance_snapshot.json",
        "summary.json",
    ]
    assert "<html" in report.html_path.read_text()[:2000].lower()
    summary = json.loads(report.json_path.read_text())
    assert summary["drift_share"] == report.drift.drift_share > CONFIG.drift_share_threshold
    assert "prediction" in summary["monitored_columns"]
    assert summary["current_start"] == volatile_features["open_time"].min().isoformat()
    assert summary["reference_rows"] == len(reference_features)
    assert summary["realized_labels"] == 1_500
    assert summary["realized_log_loss"] == pytest.approx(report.realized.log_loss)
    assert [column["column"] for column in summary["columns"]] == [
        *(name for name in CONFIG.columns if name not in ("filled", "filled_share_60")),
        "filled",
        "filled_share_60",
    ]
    assert summary["constant_columns"] == ["filled", "filled_share_60"]  # 0 in both windows
    assert [column["compared"] for column in summary["columns"][-2:]] == [False, False]
    compared = {column["column"]: column for column in summary["columns"] if column["compared"]}
    for name, column in report.drift.per_column.items():
        assert compared[name]["score"] == pytest.approx(column.score) and compared[name]["drifted"] == column.drifted
    html = report.html_path.read_text()
    assert all(name in html for name in report.drift.drifted_columns)
    # evidently's own performance page agrees with the realized log loss in the summary.
    performance = json.loads((report.folder / "performance_snapshot.json").read_text())
    log_losses = [m["value"] for m in performance["metrics"] if m["metric_name"].startswith("LogLoss")]
    assert log_losses and log_losses[0] == pytest.approx(summary["realized_log_loss"], rel=1e-4)
    json.loads((report.folder / "drift_snapshot.json").read_text())  # evidently's, valid JSON
    assert [p.name for p in (tmp_path / "drift").iterdir()] == ["20240106T030000Z"]


def test_without_predictions_or_enough_labels_there_is_no_performance_page(tmp_path, reference_features, calm_features):
    report = write_drift_report(
        reference_features,
        calm_features,
        tmp_path,
        NOW,
        CONFIG,
        realized_probabilities=[0.5] * 10,
        realized_outcomes=[1, 0] * 5,
    )
    assert report.performance_html_path is None
    assert "prediction" not in report.drift.monitored_columns
    assert report.headline["realized_labels"] == 10
    assert not (report.folder / "performance_report.html").exists()


def test_a_failure_midway_leaves_no_folder_behind(tmp_path, reference_features, calm_features, monkeypatch):
    earlier = write_drift_report(reference_features, calm_features, tmp_path, datetime(2024, 1, 5, tzinfo=UTC), CONFIG)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while writing the performance page")

    monkeypatch.setattr(report_module, "classification_snapshot", broken)
    probability = predictions(1_200, seed=4)
    with pytest.raises(RuntimeError, match="disk full"):
        write_drift_report(
            reference_features,
            calm_features,
            tmp_path,
            NOW,
            CONFIG,
            realized_probabilities=probability,
            realized_outcomes=outcomes(probability, seed=5),
        )
    assert [path.name for path in (tmp_path / "drift").iterdir()] == [earlier.folder.name]
    assert (earlier.folder / "summary.json").is_file()


def test_predictions_must_come_for_both_windows(tmp_path, reference_features, calm_features):
    with pytest.raises(ValueError, match="both windows or for neither"):
        write_drift_report(
            reference_features,
            calm_features,
            tmp_path,
            NOW,
            CONFIG,
            current_predictions=predictions(len(calm_features), seed=1),
        )
