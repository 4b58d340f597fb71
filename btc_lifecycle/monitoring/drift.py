"""Data drift between the champion's reference window and the current window, with evidently.

evidently is imported inside the functions that use it: it is a heavy import, and the Dagster code
location imports this module without needing it (benchmarks/FINDINGS.md has the figures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from btc_lifecycle.modelling.features import FEATURE_COLUMNS, feature_complete

PREDICTION_COLUMN = "prediction"
# Time of day is cyclic and uniform in any whole day: it says nothing about the market.
TIME_OF_DAY_COLUMNS = ("minute_of_day_sin", "minute_of_day_cos")
# The gap-fill flags are monitored too: on a thin market a change in how many minutes go without
# a trade is a change in the market. On a complete series they are 0 in both windows, and a column
# holding one same value in both windows does not vote (see DataDriftResult.constant_columns).
MONITORED_FEATURES = tuple(name for name in FEATURE_COLUMNS if name not in TIME_OF_DAY_COLUMNS)
MONITORED_COLUMNS = (*MONITORED_FEATURES, PREDICTION_COLUMN)


@dataclass(frozen=True)
class MonitoringConfig:
    """What the drift report compares and when its checks fail.

    Defaults come from the March 2023 calibration (docs/ml-method.md): with a 3- or
    5-day reference, no hourly window of the calm first week goes red, and the SVB/USDC crash
    turns the check red on 10 March.
    """

    current_window: int = 1440  # most recent candles compared with the reference
    # The tail of the champion's training data used as reference; None: all of it.
    reference_window: int | None = 4320
    stattest: str = "wasserstein"  # evidently's normed Wasserstein distance, per column
    stattest_threshold: float = 0.4  # a column drifts when its distance reaches this
    drift_share_threshold: float = 0.5  # the check fails when more columns than this drift
    min_realized_labels: int = 720  # realized outcomes needed before performance is judged
    # Realized log loss the champion may exceed its own constant prior's by, on the candles it
    # predicted, before the check fails (calibrated in docs/ml-method.md).
    performance_margin: float = 0.0
    # After a retraining that kept the champion, failures on the next N hours of candles do not
    # retrain again; each further keep in a row doubles it. 0 disables the cool-down.
    retrain_cooldown_hours: float = 24.0
    columns: tuple[str, ...] = MONITORED_COLUMNS

    def __post_init__(self) -> None:
        def fail(name: str, problem: str) -> None:
            raise ValueError(f"monitoring field {name!r} {problem}, got {getattr(self, name)!r}")

        if self.current_window < 2:
            fail("current_window", "must be at least 2 candles")
        if self.reference_window is not None and self.reference_window < 2:
            fail("reference_window", "must be at least 2 candles or None")
        if not self.stattest_threshold > 0:
            fail("stattest_threshold", "must be positive")
        if not 0 <= self.drift_share_threshold < 1:
            fail("drift_share_threshold", "must be in [0, 1)")
        if self.min_realized_labels < 1:
            fail("min_realized_labels", "must be at least 1")
        if not self.performance_margin >= 0:
            fail("performance_margin", "must not be negative")
        if not self.retrain_cooldown_hours >= 0:
            fail("retrain_cooldown_hours", "must not be negative")
        if not self.columns or len(set(self.columns)) != len(self.columns):
            fail("columns", "must name at least one column, each once")
        # None would make evidently pick a test from the data, silently, instead of the one named.
        if not isinstance(self.stattest, str) or not self.stattest:
            fail("stattest", "must name one of evidently's stattests")


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift score against its threshold under one stattest."""

    score: float
    threshold: float
    drifted: bool
    stattest: str


@dataclass(frozen=True)
class DataDriftResult:
    """Share of drifted columns, per-column detail, and evidently's snapshot for the report."""

    drift_share: float
    drifted_columns: tuple[str, ...]
    per_column: Mapping[str, ColumnDrift]
    reference_rows: int
    current_rows: int
    # evidently's Snapshot (save_html, json); None from the fast path used by the calibration.
    snapshot: Any = field(default=None, repr=False, compare=False)
    # Columns with one and the same value in both windows: not compared and not in the share.
    # Their distance is 0, so they could only dilute the share of the columns that do move
    # (with both gap flags counted, 7 drifted columns of 15 would no longer be more than half).
    constant_columns: tuple[str, ...] = ()

    @property
    def monitored_columns(self) -> tuple[str, ...]:
        return tuple(self.per_column)


def reference_window(training_features: pd.DataFrame, config: MonitoringConfig) -> pd.DataFrame:
    """The feature-complete tail of the champion's training data that drift is measured from."""
    rows = training_features.loc[feature_complete(training_features)]
    return rows if config.reference_window is None else rows.tail(config.reference_window)


def current_window(features: pd.DataFrame, config: MonitoringConfig) -> pd.DataFrame:
    """The most recent ``current_window`` feature-complete candles."""
    return features.loc[feature_complete(features)].tail(config.current_window)


def data_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    config: MonitoringConfig = MonitoringConfig(),
) -> DataDriftResult:
    """Run evidently's DataDriftPreset on ``columns`` (default ``config.columns``)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns, constant = _compared_columns(reference, current, columns or config.columns)
    definition = DataDefinition(numerical_columns=columns)
    preset = DataDriftPreset(
        columns=columns,
        method=config.stattest,
        threshold=config.stattest_threshold,
        drift_share=config.drift_share_threshold,
    )
    # include_tests: evidently's per-column verdicts are read back, not re-derived here.
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(_numeric(current, columns), data_definition=definition),
        Dataset.from_pandas(_numeric(reference, columns), data_definition=definition),
    )
    per_column = _per_column_from_snapshot(snapshot.dict(), columns)
    return _result(per_column, len(reference), len(current), snapshot, constant)


def drift_scores(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    config: MonitoringConfig = MonitoringConfig(),
) -> DataDriftResult:
    """The same per-column numbers as ``data_drift`` without building a report.

    Calls evidently's registered stattest directly (with its NaN/inf cleaning): about 30 times
    faster, for studies that scan hundreds of windows. No snapshot.
    """
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    columns, constant = _compared_columns(reference, current, columns or config.columns)
    per_column = {}
    for name in columns:
        ref = _finite(reference[name])
        cur = _finite(current[name])
        test = get_stattest(ref, cur, ColumnType.Numerical, config.stattest)
        outcome = test(ref, cur, ColumnType.Numerical, config.stattest_threshold)
        per_column[name] = ColumnDrift(
            score=float(outcome.drift_score),
            threshold=float(outcome.actual_threshold),
            drifted=bool(outcome.drifted),
            stattest=config.stattest,
        )
    return _result(per_column, len(reference), len(current), None, constant)


def _result(
    per_column: dict[str, ColumnDrift], reference_rows: int, current_rows: int, snapshot: Any, constant: tuple[str, ...]
) -> DataDriftResult:
    drifted = tuple(name for name, column in per_column.items() if column.drifted)
    return DataDriftResult(
        drift_share=len(drifted) / len(per_column),
        drifted_columns=drifted,
        per_column=per_column,
        reference_rows=reference_rows,
        current_rows=current_rows,
        snapshot=snapshot,
        constant_columns=constant,
    )


def _per_column_from_snapshot(snapshot: dict, columns: list[str]) -> dict[str, ColumnDrift]:
    scores, thresholds, methods, drifted = {}, {}, {}, {}
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith(":ValueDrift"):
            scores[config["column"]] = float(metric["value"])
            thresholds[config["column"]] = float(config["threshold"])
            methods[config["column"]] = str(config["method"])
    for test in snapshot["tests"]:
        params = test["metric_config"]["params"]
        if params.get("type", "").endswith(":ValueDrift"):
            drifted[params["column"]] = test["status"] == "FAIL"
    missing = [name for name in columns if name not in scores or name not in drifted]
    if missing:
        raise RuntimeError(f"evidently's snapshot has no drift result for {missing}")
    return {name: ColumnDrift(scores[name], thresholds[name], drifted[name], methods[name]) for name in columns}


def _checked_columns(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    for side, frame in (("reference", reference), ("current", current)):
        missing = [name for name in columns if name not in frame.columns]
        if missing:
            raise ValueError(f"the {side} window lacks monitored column(s) {missing}")
        empty = [name for name in columns if not np.isfinite(frame[name].to_numpy("float64")).any()]
        if empty:
            raise ValueError(f"the {side} window has no finite value in column(s) {empty}")
    return list(columns)


def _compared_columns(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]
) -> tuple[list[str], tuple[str, ...]]:
    """The checked columns to compare, and those with one same value in both windows.

    evidently's normed Wasserstein divides by max(reference std, 0.001): a column constant and
    equal in both windows scores 0 (not drifted), and one constant in the reference but not in
    the current window scores its mean shift times 1000 (drifted), which is the honest verdict.
    Only the first kind is set aside. If every column is of that kind, all are compared (all 0).
    """
    columns = _checked_columns(reference, current, columns)
    constant = tuple(
        name
        for name in columns
        if np.unique(np.concatenate([_finite(reference[name]), _finite(current[name])])).size == 1
    )
    compared = [name for name in columns if name not in constant]
    return (compared, constant) if compared else (columns, ())


def _numeric(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[columns].astype("float64").reset_index(drop=True)


def _finite(values: pd.Series) -> pd.Series:
    numbers = values.astype("float64")
    return numbers[np.isfinite(numbers.to_numpy())].reset_index(drop=True)
