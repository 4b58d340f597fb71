"""The drift report folder: complete with HTML and JSON, or not there at all; its headline and
column table whole, summary.json's layout, the performance page from exactly the minimum of
labels, pruning, and the refusals naming their window.

Small synthetic windows keep most report builds to about a second; the tests on the shared
feature windows build bigger reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.monitoring import report as report_module
from btc_lifecycle.monitoring.drift import ColumnDrift, DataDriftResult, MonitoringConfig
from btc_lifecycle.monitoring.performance import realized_performance
from btc_lifecycle.monitoring.report import _column_table, write_drift_report
from btc_lifecycle.reporting import retention

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


# small windows

# The report's headline, column table and folder, on small windows: ``a`` moves by one reference
# std, ``b`` and the predictions stay put, ``flag`` is 0 in both windows.

SMALL_CONFIG = MonitoringConfig(
    columns=("a", "b", "flag", "prediction"), stattest_threshold=0.3, drift_share_threshold=0.4, min_realized_labels=200
)


def window(rows: int, shift: float, seed: int, start: str | None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(shift, 1, rows), "b": rng.normal(0, 1, rows), "flag": np.zeros(rows)})
    if start is not None:
        frame.insert(0, "open_time", pd.date_range(start, periods=rows, freq="min", tz="UTC"))
    return frame


def uniform(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.4, 0.6, rows)


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """Predictions for both windows and exactly ``min_realized_labels`` realized pairs."""
    root = tmp_path_factory.mktemp("judged")
    (root / "drift" / "20240101T000000Z").mkdir(parents=True)  # an older report, pruned
    probability = uniform(200, seed=3)
    outcome = (np.random.default_rng(4).random(200) < probability).astype(int)
    report = write_drift_report(
        window(300, 0.0, seed=1, start="2024-01-05T00:00:00Z"),
        window(200, 1.0, seed=2, start="2024-01-06T00:00:00Z"),
        root,
        NOW,
        SMALL_CONFIG,
        reference_predictions=uniform(300, seed=5),
        current_predictions=probability,
        realized_probabilities=probability,
        realized_outcomes=outcome,
        keep_last=1,
    )
    return root, report, realized_performance(probability, outcome)


@pytest.fixture(scope="module")
def unjudged(tmp_path_factory):
    """No open_time, no predictions, probabilities without outcomes; every argument by keyword."""
    root = tmp_path_factory.mktemp("unjudged")
    report = write_drift_report(
        reference=window(300, 0.0, seed=1, start=None),
        current=window(200, 1.0, seed=2, start=None),
        report_root=root,
        now=NOW,
        config=SMALL_CONFIG,
        realized_probabilities=uniform(200, seed=3),
    )
    return root, report


@pytest.mark.parametrize("side", ["reference", "current"])
def test_predictions_for_one_window_only_are_refused(tmp_path, side):
    reference, current = window(30, 0.0, 1, None), window(20, 0.0, 2, None)
    predictions = {f"{side}_predictions": [0.5] * len(reference if side == "reference" else current)}
    with pytest.raises(ValueError) as raised:
        write_drift_report(reference, current, tmp_path, NOW, SMALL_CONFIG, **predictions)
    assert str(raised.value) == "pass predictions for both windows or for neither"


@pytest.mark.parametrize(
    "reference_count, current_count, message",
    [
        (29, 20, "29 reference predictions for 30 reference rows"),
        (30, 21, "21 current predictions for 20 current rows"),
    ],
)
def test_a_prediction_count_unlike_the_rows_is_refused_naming_the_window(
    tmp_path, reference_count, current_count, message
):
    with pytest.raises(ValueError) as raised:
        write_drift_report(
            window(30, 0.0, 1, None),
            window(20, 0.0, 2, None),
            tmp_path,
            NOW,
            SMALL_CONFIG,
            reference_predictions=[0.5] * reference_count,
            current_predictions=[0.5] * current_count,
        )
    assert str(raised.value) == message


def test_a_column_without_a_usable_score_is_written_as_null():
    column = ColumnDrift(score=float("nan"), threshold=0.3, drifted=False, stattest="wasserstein")
    result = DataDriftResult(
        drift_share=0.0, drifted_columns=(), per_column={"a": column}, reference_rows=3, current_rows=2
    )
    assert _column_table(result) == [
        {"column": "a", "score": None, "threshold": 0.3, "drifted": False, "stattest": "wasserstein", "compared": True}
    ]


def test_without_open_time_outcomes_or_predictions_the_headline_says_so(unjudged):
    root, report = unjudged
    headline = report.headline
    assert {key: headline[key] for key in ("reference_start", "reference_end", "current_start", "current_end")} == {
        "reference_start": None,
        "reference_end": None,
        "current_start": None,
        "current_end": None,
    }
    assert (headline["reference_rows"], headline["current_rows"]) == (300, 200)
    assert headline["monitored_columns"] == ["a", "b"] and headline["stattest_threshold"] == 0.3
    assert headline["realized_labels"] == 0 and report.realized is None
    assert (headline["realized_roc_auc"], headline["realized_log_loss"], headline["realized_accuracy"]) == (None,) * 3
    assert report.performance_html_path is None
    assert report.folder == root / "drift" / "20240106T030000Z"


def test_a_failure_after_the_temp_folder_is_gone_still_raises_the_failure_itself(tmp_path, monkeypatch):
    def renamed_then_failed(temp, stamp):
        temp.rename(temp.with_name("moved-away"))
        raise OSError("fsync of the report root failed")

    monkeypatch.setattr(retention, "publish_report_folder", renamed_then_failed)
    with pytest.raises(OSError, match="^fsync of the report root failed$"):
        write_drift_report(window(30, 0.0, 1, None), window(20, 1.0, 2, None), tmp_path, NOW, SMALL_CONFIG)
    assert [path.name for path in (tmp_path / "drift").iterdir()] == ["moved-away"]


def test_the_headline_of_a_judged_report_holds_every_number(judged):
    _, report, realized = judged
    assert report.headline == {
        "generated_at": "2024-01-06T03:00:00+00:00",
        "reference_start": "2024-01-05T00:00:00+00:00",
        "reference_end": "2024-01-05T04:59:00+00:00",
        "reference_rows": 300,
        "current_start": "2024-01-06T00:00:00+00:00",
        "current_end": "2024-01-06T03:19:00+00:00",
        "current_rows": 200,
        "monitored_columns": ["a", "b", "prediction"],
        "constant_columns": ["flag"],
        "drifted_columns": ["a"],
        "drift_share": pytest.approx(1 / 3),
        "drift_share_threshold": 0.4,
        "stattest": "wasserstein",
        "stattest_threshold": 0.3,
        "realized_labels": 200,
        "min_realized_labels": 200,
        "realized_roc_auc": realized.roc_auc,
        "realized_log_loss": realized.log_loss,
        "realized_accuracy": realized.accuracy,
    }
    assert report.drift.per_column["a"].threshold == 0.3


def test_exactly_the_minimum_of_realized_labels_gets_a_performance_page(judged):
    _, report, _ = judged
    assert report.performance_html_path == report.folder / "performance_report.html"
    assert report.performance_html_path.is_file()


def test_the_summary_file_is_the_headline_and_the_column_table_indented_for_people(judged):
    _, report, _ = judged
    text = report.json_path.read_text(encoding="utf-8")
    summary = json.loads(text)
    assert text == json.dumps(summary, indent=2)
    assert summary == {**report.headline, "columns": summary["columns"]}
    scores = {name: column.score for name, column in report.drift.per_column.items()}
    assert summary["columns"] == [
        {
            "column": "a",
            "score": scores["a"],
            "threshold": 0.3,
            "drifted": True,
            "stattest": "wasserstein",
            "compared": True,
        },
        {
            "column": "b",
            "score": scores["b"],
            "threshold": 0.3,
            "drifted": False,
            "stattest": "wasserstein",
            "compared": True,
        },
        {
            "column": "prediction",
            "score": scores["prediction"],
            "threshold": 0.3,
            "drifted": False,
            "stattest": "wasserstein",
            "compared": True,
        },
        {"column": "flag", "score": 0.0, "threshold": None, "drifted": False, "stattest": None, "compared": False},
    ]


def test_keep_last_prunes_the_older_reports(judged):
    root, report, _ = judged
    assert [path.name for path in (root / "drift").iterdir()] == ["20240106T030000Z"] == [report.folder.name]
