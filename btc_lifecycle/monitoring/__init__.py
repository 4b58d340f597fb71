"""Watching the champion in production: data drift, realized performance, the checks, the report.

Names are resolved on first use, and evidently is imported only inside the functions that run
it: the configuration imports ``MonitoringConfig`` and must not pay for sklearn or evidently.
"""

from btc_lifecycle.lazy import lazy_exports

_EXPORTS = {
    "CheckOutcome": "checks",
    "evaluate_drift_share": "checks",
    "evaluate_realized_performance": "checks",
    "MONITORED_COLUMNS": "drift",
    "PREDICTION_COLUMN": "drift",
    "ColumnDrift": "drift",
    "DataDriftResult": "drift",
    "MonitoringConfig": "drift",
    "current_window": "drift",
    "data_drift": "drift",
    "drift_scores": "drift",
    "reference_window": "drift",
    "RealizedPerformance": "performance",
    "realized_performance": "performance",
    "DriftReport": "report",
    "write_drift_report": "report",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
