"""The report a worker process sends back is the report without evidently's snapshot (no fast test
called it: its caller is the report worker; found by `make mutate`, docs/mutation.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from btc_lifecycle.monitoring import MonitoringConfig
from btc_lifecycle.monitoring.report import write_drift_report, write_drift_report_without_snapshot


def test_the_report_for_a_worker_is_the_report_without_evidentlys_snapshot(tmp_path, reference_features, calm_features):
    now = datetime(2024, 1, 6, 3, 0, tzinfo=UTC)
    config = MonitoringConfig(columns=MonitoringConfig().columns[:-1])
    sent = write_drift_report_without_snapshot(reference_features, calm_features, tmp_path / "a", now, config)
    kept = write_drift_report(reference_features, calm_features, tmp_path / "b", now, config)
    assert sent.drift.snapshot is None and kept.drift.snapshot is not None
    assert sent.drift.per_column == kept.drift.per_column
    assert sent.drift.drift_share == kept.drift.drift_share
    assert sent.headline == kept.headline
    assert sent.folder == tmp_path / "a" / "drift" / "20240106T030000Z" and sent.html_path.is_file()
