"""The drift report on disk: evidently's HTML and JSON plus our own summary, in one folder.

``<report_root>/drift/<UTC stamp>/`` is built in a ``.tmp-*`` sibling and renamed into place
only when every file is written, so a crash never leaves a folder that looks complete.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from btc_lifecycle.monitoring.drift import (
    PREDICTION_COLUMN,
    DataDriftResult,
    MonitoringConfig,
    data_drift,
)
from btc_lifecycle.monitoring.performance import (
    RealizedPerformance,
    classification_snapshot,
    realized_performance,
)
from btc_lifecycle.reporting.retention import (
    build_report_folder,
    report_stamp,
)

REPORT_KIND = "drift"
DRIFT_HTML = "drift_report.html"
DRIFT_JSON = "drift_snapshot.json"
PERFORMANCE_HTML = "performance_report.html"
PERFORMANCE_JSON = "performance_snapshot.json"
SUMMARY_JSON = "summary.json"


@dataclass(frozen=True)
class DriftReport:
    """Where the report landed, the results behind it, and its headline numbers."""

    folder: Path
    html_path: Path  # evidently's drift report
    json_path: Path  # summary.json: the headline and every column's score
    performance_html_path: Path | None  # None until enough realized labels exist
    drift: DataDriftResult
    realized: RealizedPerformance | None
    headline: dict[str, Any]


def write_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    report_root: Path,
    now: datetime,
    config: MonitoringConfig = MonitoringConfig(),
    *,
    reference_predictions=None,
    current_predictions=None,
    realized_probabilities=None,
    realized_outcomes=None,
    keep_last: int | None = None,
) -> DriftReport:
    """Measure drift of ``current`` against ``reference`` and write the report folder.

    ``reference``/``current`` are feature frames with ``open_time``; the predictions (one per
    row) become the ``prediction`` column, and without them that column is not monitored.
    Realized pairs get a performance page once there are ``min_realized_labels`` of them.
    ``keep_last`` prunes older drift reports.
    """
    if (reference_predictions is None) != (current_predictions is None):
        raise ValueError("pass predictions for both windows or for neither")
    reference = _with_predictions(reference, reference_predictions, "reference")
    current = _with_predictions(current, current_predictions, "current")
    columns = [name for name in config.columns if name != PREDICTION_COLUMN or current_predictions is not None]
    drift = data_drift(reference, current, columns, config)
    realized = None if realized_outcomes is None else realized_performance(realized_probabilities, realized_outcomes)
    judged = realized is not None and realized.n >= config.min_realized_labels and realized.roc_auc is not None
    headline = _headline(reference, current, drift, realized, config, now)

    def write(temp: Path) -> None:
        drift.snapshot.save_html(str(temp / DRIFT_HTML))
        (temp / DRIFT_JSON).write_text(drift.snapshot.json(), encoding="utf-8")
        if judged:
            performance = classification_snapshot(realized_probabilities, realized_outcomes)
            performance.save_html(str(temp / PERFORMANCE_HTML))
            (temp / PERFORMANCE_JSON).write_text(performance.json(), encoding="utf-8")
        summary = {**headline, "columns": _column_table(drift)}
        (temp / SUMMARY_JSON).write_text(json.dumps(summary, indent=2), encoding="utf-8")

    folder, _ = build_report_folder(Path(report_root) / REPORT_KIND, report_stamp(now), keep_last, write)
    return DriftReport(
        folder=folder,
        html_path=folder / DRIFT_HTML,
        json_path=folder / SUMMARY_JSON,
        performance_html_path=folder / PERFORMANCE_HTML if judged else None,
        drift=drift,
        realized=realized,
        headline=headline,
    )


def _with_predictions(frame: pd.DataFrame, predictions, side: str) -> pd.DataFrame:
    if predictions is None:
        return frame
    values = np.asarray(predictions, dtype="float64")
    if len(values) != len(frame):
        raise ValueError(f"{len(values)} {side} predictions for {len(frame)} {side} rows")
    return frame.assign(**{PREDICTION_COLUMN: values})


def _headline(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    drift: DataDriftResult,
    realized: RealizedPerformance | None,
    config: MonitoringConfig,
    now: datetime,
) -> dict[str, Any]:
    return {
        "generated_at": pd.Timestamp(now).isoformat(),
        **_bounds("reference", reference),
        **_bounds("current", current),
        "monitored_columns": list(drift.monitored_columns),
        # One same value in both windows (the gap flags on a complete series): not compared.
        "constant_columns": list(drift.constant_columns),
        "drifted_columns": list(drift.drifted_columns),
        "drift_share": drift.drift_share,
        "drift_share_threshold": config.drift_share_threshold,
        "stattest": config.stattest,
        "stattest_threshold": config.stattest_threshold,
        "realized_labels": 0 if realized is None else realized.n,
        "min_realized_labels": config.min_realized_labels,
        "realized_roc_auc": None if realized is None else realized.roc_auc,
        "realized_log_loss": None if realized is None else realized.log_loss,
        "realized_accuracy": None if realized is None else realized.accuracy,
    }


def _bounds(side: str, frame: pd.DataFrame) -> dict[str, Any]:
    times = frame["open_time"] if "open_time" in frame and len(frame) else None
    return {
        f"{side}_start": None if times is None else times.min().isoformat(),
        f"{side}_end": None if times is None else times.max().isoformat(),
        f"{side}_rows": int(len(frame)),
    }


def _column_table(drift: DataDriftResult) -> list[dict[str, Any]]:
    compared = [
        {
            "column": name,
            "score": _plain(column.score),
            "threshold": column.threshold,
            "drifted": column.drifted,
            "stattest": column.stattest,
            "compared": True,
        }
        for name, column in drift.per_column.items()
    ]
    # One same value in both windows: distance 0, not drifted, and not counted in the share.
    constant = [
        {"column": name, "score": 0.0, "threshold": None, "drifted": False, "stattest": None, "compared": False}
        for name in drift.constant_columns
    ]
    return compared + constant


def _plain(value: float) -> float | None:
    # JSON has no NaN; a column with no usable score is written as null.
    return None if math.isnan(value) else value
