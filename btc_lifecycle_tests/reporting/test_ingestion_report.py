"""The ingestion PDF: where it lands, what it says, and what it embeds."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from pypdf import PdfReader

from btc_lifecycle.domain.gaps import gap_fill_summary
from btc_lifecycle.domain.labels import LABEL_COLUMN, label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.reporting import ReportFacts, build_ingestion_report
from btc_lifecycle.reporting import ingestion_report as ingestion_module
from btc_lifecycle.reporting.charts import chart_title, write_chart_pngs
from btc_lifecycle.reporting.sections import report_context
from btc_lifecycle_tests.reporting.conftest import (
    GAP_MINUTES,
    HOSTILE_SYMBOL,
    MAX_FILL_MINUTES,
    REPORT_TIME,
)

SECTIONS = (
    "Run facts",
    "Summary statistics",
    "Label balance",
    "OHLC candles and volume",
    "Close price",
    "Label vs return",
    "Missing minutes",
    "Latest candles",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pdf_text(ingestion_report) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(ingestion_report.pdf_path).pages)


def test_report_lands_in_a_utc_timestamp_folder_under_ingestion(ingestion_report, report_root):
    assert ingestion_report.folder == report_root / "ingestion" / "20260326T101500Z"
    assert ingestion_report.pdf_path == ingestion_report.folder / "report.pdf"
    assert ingestion_report.pdf_path.read_bytes().startswith(b"%PDF")


def test_page_count_is_the_pdfs(ingestion_report):
    assert ingestion_report.page_count == len(PdfReader(ingestion_report.pdf_path).pages) >= 2


def test_pdf_has_every_section_as_text(pdf_text):
    missing = [heading for heading in SECTIONS if heading not in pdf_text]
    assert missing == []


def test_row_counts_in_the_pdf_equal_the_frames(pdf_text, labeled_candles, ingestion_report):
    rows = f"{len(labeled_candles):,}"
    assert f"Candles in this report {rows}" in pdf_text
    assert f"open {rows}" in pdf_text  # the count column of the statistics table
    assert f"Rows total in the store {rows}" in pdf_text
    assert ingestion_report.rows == len(labeled_candles)


def test_every_chart_is_a_real_png_at_least_800_pixels_wide(ingestion_report):
    assert len(ingestion_report.image_paths) == 3
    for path in ingestion_report.image_paths:
        data = path.read_bytes()
        assert path.parent == ingestion_report.folder
        assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", path.name
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 800 and height >= 300, path.name
        assert len(data) > 10_000, path.name


def test_hostile_symbol_is_text_in_the_pdf_and_escaped_in_the_html(ingestion_report, pdf_text):
    page_html = ingestion_report.html_path.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_html
    assert "<script>" not in page_html and "<b>candles</b>" not in page_html
    assert HOSTILE_SYMBOL in pdf_text
    assert "replay of <b>candles</b>.csv" in pdf_text


def test_markdown_summary_does_not_carry_markup(ingestion_report):
    assert "<script>" not in ingestion_report.markdown_summary
    assert f"{ingestion_report.rows:,}" in ingestion_report.markdown_summary


def test_gap_section_lists_the_gap(pdf_text, labeled_candles):
    after = labeled_candles["open_time"][labeled_candles["open_time"].diff() > pd.Timedelta(minutes=1)].iloc[0]
    first_missing = after - pd.Timedelta(minutes=GAP_MINUTES)
    assert f"{GAP_MINUTES} missing minutes in 1 gap(s)" in pdf_text
    assert f"{first_missing:%Y-%m-%d %H:%M} UTC to" in pdf_text
    assert f"{GAP_MINUTES} missing candle(s)" in pdf_text


def test_the_pdf_says_what_the_gap_policy_makes_of_the_stored_gaps(pdf_text, ingestion_report):
    text = " ".join(pdf_text.split())  # the PDF wraps lines anywhere
    assert f"max_fill_minutes = {MAX_FILL_MINUTES}: 0 minute(s) in 0 gap(s)" in text
    assert f"1 longer gap(s) ({GAP_MINUTES} minutes) stay gaps" in text
    assert ingestion_report.gap_policy.gaps_left_open == 1
    assert f"max\\_fill\\_minutes = {MAX_FILL_MINUTES}" in ingestion_report.markdown_summary


def test_the_report_counts_the_minutes_the_policy_would_fill_and_the_gaps_it_leaves_open():
    # Gaps of 3 and 40 minutes under a limit of 30: the first is filled, the second stays.
    candles = label_candles(without_minutes(synthetic_candles(300, seed=2), [*range(50, 53), *range(100, 140)]), "1m")
    facts = ReportFacts(
        source="test",
        symbol="BTC/USDT",
        interval="1m",
        rows_new=len(candles),
        rows_total=len(candles),
        missing_minutes=43,
        gaps=[],
        generated_at=REPORT_TIME,
        gap_policy=gap_fill_summary(candles["open_time"], "1m", 30),
    )
    context = report_context(candles, facts, "stamp", chart_files=[])
    facts_table = dict(context["run_facts"])
    expected = (
        "max_fill_minutes = 30: 3 minute(s) in 1 gap(s) of at most 30 would be filled for "
        "the model as flat trade-less candles; 1 longer gap(s) (40 minutes) stay gaps"
    )
    assert facts_table["Gap policy (features.max_fill_minutes)"] == expected
    assert expected in context["gap_policy"]


def test_headline_numbers_describe_the_frame(ingestion_report, labeled_candles):
    labels = labeled_candles[LABEL_COLUMN]
    assert ingestion_report.first_candle == labeled_candles["open_time"].iloc[0]
    assert ingestion_report.last_candle == labeled_candles["open_time"].iloc[-1]
    assert ingestion_report.up_share == pytest.approx((labels == 1).sum() / labels.notna().sum())  # of labeled
    assert ingestion_report.unlabeled_share == pytest.approx(2 / len(labels))  # first + gap
    assert 0 < ingestion_report.tie_share < 0.2
    assert ingestion_report.missing_minutes == GAP_MINUTES
    assert 0 < ingestion_report.log_return_std < 0.01


def test_latest_candles_table_shows_the_last_ten(pdf_text, labeled_candles):
    for moment in labeled_candles["open_time"].tail(10):
        assert f"{moment:%Y-%m-%d %H:%M} UTC" in pdf_text


def test_building_prunes_old_reports_and_stale_temp_folders(ingestion_report, report_root):
    entries = sorted(path.name for path in (report_root / "ingestion").iterdir())
    # keep_last=2: the newest old report survives next to the new one; the fresh temp folder
    # may belong to a build still running, so only the day-old one is cleaned.
    assert entries == [".tmp-20260326T101459Z-2", "20200102T000000Z", "20260326T101500Z"]


def test_a_failed_build_leaves_no_report_folder(labeled_candles, tmp_path, monkeypatch):
    def crash(labeled, facts, folder, stamp):
        (folder / "report.pdf").write_bytes(b"%PDF-half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingestion_module, "_write_report", crash)
    facts = ReportFacts(
        source="test",
        symbol="BTC/USDT",
        interval="1m",
        rows_new=0,
        rows_total=0,
        missing_minutes=0,
        gaps=[],
        generated_at=REPORT_TIME,
    )
    with pytest.raises(RuntimeError, match="disk full"):
        build_ingestion_report(labeled_candles, facts, tmp_path, keep_last=3, now=REPORT_TIME)
    assert list((tmp_path / "ingestion").iterdir()) == []


def test_an_empty_frame_is_refused(labeled_candles, tmp_path):
    facts = ReportFacts(
        source="test",
        symbol="BTC/USDT",
        interval="1m",
        rows_new=0,
        rows_total=0,
        missing_minutes=0,
        gaps=[],
        generated_at=REPORT_TIME,
    )
    with pytest.raises(ValueError, match="empty"):
        build_ingestion_report(labeled_candles.iloc[:0], facts, tmp_path, keep_last=1)


def test_charts_reuse_one_kaleido_process(ingestion_report, tmp_path):
    process = pio.kaleido.scope._proc
    assert process is not None and process.poll() is None  # alive after the report
    figures = [(name, go.Figure(go.Scatter(y=[1, 3, 2]))) for name in ("a", "b")]
    assert [path.name for path in write_chart_pngs(figures, tmp_path)] == ["a.png", "b.png"]
    assert pio.kaleido.scope._proc is process


def test_chart_titles_keep_data_as_text_and_short():
    title = chart_title(HOSTILE_SYMBOL + " 1m", "close price")
    assert "<script>" not in title and "&lt;script&gt;" in title
    assert len(title) < 60
