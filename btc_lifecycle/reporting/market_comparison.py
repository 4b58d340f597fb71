"""The market comparison page: one PDF table with every market's model, gate and realized numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from btc_lifecycle.monitoring.comparison import comparison_rows
from btc_lifecycle.reporting.pdf import render_report_html, write_pdf
from btc_lifecycle.reporting.retention import build_report_folder, report_stamp

REPORT_KIND = "markets"
PDF_NAME = "report.pdf"


def write_comparison_report(
    frame: pd.DataFrame, report_root: Path, keep_last: int, now: datetime | None = None
) -> Path:
    """Write ``report_root/markets/<UTC stamp>/report.pdf`` and keep the newest ``keep_last``;
    returns the PDF's path. Built in a temporary folder and renamed into place when complete."""
    moment = now if now is not None else datetime.now(UTC)
    stamp = report_stamp(moment)

    def write(folder: Path) -> int:
        page = render_report_html(
            "market_comparison.html",
            {
                "title": "Markets compared",
                "subtitle": f"{len(frame)} markets, {moment:%Y-%m-%d %H:%M} UTC",
                "footer": f"btc-lifecycle market comparison {stamp}",
                "header": list(frame.columns),
                "rows": comparison_rows(frame),
            },
        )
        return write_pdf(page, folder, folder / PDF_NAME)

    folder, _ = build_report_folder(Path(report_root) / REPORT_KIND, stamp, keep_last, write)
    return folder / PDF_NAME
