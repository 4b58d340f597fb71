"""The ingestion PDF: where it lands, what it says, and what it embeds."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from pypdf import PdfReader

from btc_lifecycle.domain.labels import LABEL_COLUMN
from btc_lifecycle.reporting import ReportFacts, build_ingestion_report
from btc_lifecycle.reporting import ingestion_report as ingestion_module
from btc_lifecycle.reporting.charts import chart_title, write_chart_pngs
from btc_lifecycle_tests.test_reporting.conftest import GAP_MINUTES, HOSTILE_SYMBOL, REPORT_TIME

SECTIONS = ("Run facts", "Summary statistics", "Label balance", "OHLC candles and volume",
            "Close price", "Label vs return", "Missing minutes", "Latest candles")
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
    after = labeled_candles["open_time"][labeled_candles["open_time"].diff()
                                         > pd.Timedelta(minutes=1)].iloc[0]
    first_missing = after - pd.Timedelta(minutes=GAP_MINUTES)
    assert f"{GAP_MINUTES} missing minutes in 1 gap(s)" in pdf_text
    assert f"{first_missing:%Y-%m-%d %H:%M} UTC to" in pdf_text
    assert f"{GAP_MINUTES} missing candle(s)" in pdf_text


def test_headline_numbers_describe_the_frame(ingestion_report, labeled_candles):
    labels = labeled_candles[LABEL_COLUMN]
    assert ingestion_report.first_candle == labeled_candles["open_time"].iloc[0]
    assert ingestion_report.last_candle == labeled_candles["open_time"].iloc[-1]
    assert ingestion_report.up_share == pytest.approx((labels == 1).sum() / len(labels))
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
    facts = ReportFacts(source="test", symbol="BTC/USDT", interval="1m", rows_new=0,
                        rows_total=0, missing_minutes=0, gaps=[], generated_at=REPORT_TIME)
    with pytest.raises(RuntimeError, match="disk full"):
        build_ingestion_report(labeled_candles, facts, tmp_path, keep_last=3, now=REPORT_TIME)
    assert list((tmp_path / "ingestion").iterdir()) == []


def test_an_empty_frame_is_refused(labeled_candles, tmp_path):
    facts = ReportFacts(source="test", symbol="BTC/USDT", interval="1m", rows_new=0,
                        rows_total=0, missing_minutes=0, gaps=[], generated_at=REPORT_TIME)
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
