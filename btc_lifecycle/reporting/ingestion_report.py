"""The ingestion report: a PDF (and its PNGs) describing a labeled candle frame."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from btc_lifecycle.domain.gaps import GapFillSummary
from btc_lifecycle.domain.labels import label_balance
from btc_lifecycle.reporting.facts import ReportFacts
from btc_lifecycle.reporting.pdf import render_report_html, write_pdf
from btc_lifecycle.reporting.retention import (
    build_report_folder,
    report_stamp,
)
from btc_lifecycle.reporting.sections import gap_policy_text, report_context
from btc_lifecycle.reporting.statistics import LOG_RETURN, summary_statistics

REPORT_KIND = "ingestion"
PDF_NAME = "report.pdf"
HTML_NAME = "report.html"


@dataclass(frozen=True)
class IngestionReport:
    """Where the report landed and the headline numbers it shows."""

    pdf_path: Path
    html_path: Path
    folder: Path
    image_paths: tuple[Path, ...]
    page_count: int
    rows: int
    first_candle: pd.Timestamp
    last_candle: pd.Timestamp
    up_share: float
    not_up_share: float
    unlabeled_share: float
    tie_share: float
    missing_minutes: int
    gap_policy: GapFillSummary | None
    log_return_mean: float
    log_return_std: float
    markdown_summary: str


def build_ingestion_report(
    labeled: pd.DataFrame, facts: ReportFacts, report_root: Path, keep_last: int, now: datetime | None = None
) -> IngestionReport:
    """Write ``report_root/ingestion/<UTC stamp>/report.pdf`` with its PNGs; prune old ones.

    The report is built in a ``.tmp-*`` sibling and renamed into place only when complete.
    """
    if labeled.empty:
        raise ValueError("the ingestion report needs at least one candle; the frame is empty")
    if keep_last < 1:
        raise ValueError(f"keep_last must be at least 1, got {keep_last}")
    moment = now if now is not None else datetime.now(UTC)
    stamp = report_stamp(moment)
    folder, (page_count, image_names) = build_report_folder(
        Path(report_root) / REPORT_KIND, stamp, keep_last, lambda temp: _write_report(labeled, facts, temp, stamp)
    )
    return _describe(labeled, facts, folder, page_count, image_names)


def _write_report(labeled: pd.DataFrame, facts: ReportFacts, folder: Path, stamp: str) -> tuple[int, tuple[str, ...]]:
    # Imported here: plotly is only needed where the report is drawn (maybe the warm helper).
    from btc_lifecycle.reporting import charts

    title = f"{facts.symbol} {facts.interval}"
    # A generator, so each figure is built while the previous one renders.
    figures = (
        (name, build(labeled, facts.interval, title))
        for name, build in (
            ("candlestick", charts.candlestick_figure),
            ("close_price", charts.close_price_figure),
            ("label_scatter", charts.label_scatter_figure),
        )
    )
    images = charts.write_chart_pngs(figures, folder)
    context = report_context(labeled, facts, stamp, chart_files=[path.name for path in images])
    page_html = render_report_html("ingestion_report.html", context)
    (folder / HTML_NAME).write_text(page_html, encoding="utf-8")
    return write_pdf(page_html, folder, folder / PDF_NAME), tuple(path.name for path in images)


def _describe(
    labeled: pd.DataFrame, facts: ReportFacts, folder: Path, page_count: int, image_names: tuple[str, ...]
) -> IngestionReport:
    balance = label_balance(labeled)
    returns = summary_statistics(labeled, facts.interval).loc[LOG_RETURN]
    first, last = labeled["open_time"].iloc[0], labeled["open_time"].iloc[-1]
    pdf_path = folder / PDF_NAME
    summary = "\n".join(
        [
            f"**Ingestion report** for {_md(facts.symbol)} {_md(facts.interval)} from {_md(facts.source)}",
            "",
            f"- candles: {len(labeled):,} ({facts.rows_new:,} new), "
            f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC",
            f"- labels: {balance.up_share:.1%} up, {balance.not_up_share:.1%} not up, "
            f"{balance.unlabeled_share:.2%} unlabeled; ties {balance.tie_share:.2%} of labeled",
            f"- missing minutes: {facts.missing_minutes:,} in {len(facts.gaps):,} gap(s)",
            *([f"- gap policy: {_md(gap_policy_text(facts.gap_policy))}"] if facts.gap_policy else []),
            f"- PDF: `{pdf_path}` ({page_count} pages)",
        ]
    )
    return IngestionReport(
        pdf_path=pdf_path,
        html_path=folder / HTML_NAME,
        folder=folder,
        image_paths=tuple(folder / name for name in image_names),
        page_count=page_count,
        rows=len(labeled),
        first_candle=first,
        last_candle=last,
        up_share=balance.up_share,
        not_up_share=balance.not_up_share,
        unlabeled_share=balance.unlabeled_share,
        tie_share=balance.tie_share,
        missing_minutes=facts.missing_minutes,
        gap_policy=facts.gap_policy,
        log_return_mean=float(returns["mean"]),
        log_return_std=float(returns["std"]),
        markdown_summary=summary,
    )


def _md(text: str) -> str:
    # Dagster renders this markdown; data must not become markup or links there either.
    escaped = str(text)
    for character in "\\`*_[]()#|":
        escaped = escaped.replace(character, "\\" + character)
    return html.escape(escaped, quote=False)
