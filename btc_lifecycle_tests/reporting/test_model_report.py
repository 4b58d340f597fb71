"""The model PDF: where it lands, the verdict it leads with, and the backtest it shows."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

from btc_lifecycle.modelling.backtest import NEVER, STRATEGIES, TradingCosts, run_backtest, verdict
from btc_lifecycle.modelling.metrics import classification_metrics
from btc_lifecycle.reporting import model_report as model_report_module
from btc_lifecycle.reporting.charts import MAX_EQUITY_POINTS, equity_curve_figure
from btc_lifecycle.reporting.model_report import (
    ModelReportFacts,
    break_even_hit_rate_text,
    build_model_report,
)
from btc_lifecycle.reporting.retention import completed_report_folders

REPORT_TIME = datetime(2026, 3, 26, 10, 15, 0, tzinfo=UTC)
BLOCK_CANDLES = 1_500
TEN_BPS = TradingCosts(taker_fee_bps=10.0)
THRESHOLDS = {"fold 0": 0.3, "held-out": NEVER}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_calls(blocks=("fold 0", "held-out"), candles_a_block=BLOCK_CANDLES, seed=11) -> pd.DataFrame:
    """Minute returns of about 5 bps and calls right on about 60 % of them, block after block."""
    rng = np.random.default_rng(seed)
    rows = len(blocks) * candles_a_block
    next_return = rng.normal(0, 5e-4, rows)
    right = rng.random(rows) < 0.6
    called_up = np.where(right, next_return > 0, next_return <= 0)
    confidence = rng.uniform(0.0, 0.45, rows)
    return pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=rows, freq="1min", tz="UTC"),
            "block": np.repeat(blocks, candles_a_block),
            "up_probability": np.where(called_up, 0.5 + confidence, 0.5 - confidence),
            "forward_return": next_return,  # over a horizon of one candle, the next candle's return
            "next_return": next_return,
        }
    )


def model_facts(**changes) -> ModelReportFacts:
    rng = np.random.default_rng(3)
    target = rng.integers(0, 2, 500)
    probabilities = {
        "xgboost": np.clip(0.5 + 0.1 * (target - 0.5) + rng.normal(0, 0.1, 500), 0.01, 0.99),
        "majority": np.full(500, 0.99),
        "persistence": np.where(rng.random(500) < 0.5, 0.99, 0.01),
        "prior": np.full(500, 0.51),
    }
    metrics = {name: classification_metrics(target, up) for name, up in probabilities.items()}
    facts = ModelReportFacts(
        model_name="btc_direction",
        model_version="7",
        alias="challenger",
        decision="keep champion",
        promotion_reason="the challenger's log loss is not significantly lower than the champion's",
        gate_p_value=0.0432,
        gate_metric="log_loss",
        overall=metrics,
        heldout={name: dataclasses.replace(value, rows=120) for name, value in metrics.items()},
        generated_at=REPORT_TIME,
    )
    return dataclasses.replace(facts, **changes)


def one_line(text: str) -> str:
    return " ".join(text.split())  # the PDF wraps lines anywhere


@pytest.fixture(scope="module")
def backtest():
    return run_backtest(synthetic_calls(), TEN_BPS, horizon=1, interval="1m", thresholds=THRESHOLDS)


@pytest.fixture(scope="module")
def report_root(tmp_path_factory):
    """A report root that already holds two older model reports of earlier versions."""
    root = tmp_path_factory.mktemp("reports")
    for name in ("v5-20200101T000000Z", "v6-20200102T000000Z"):
        (root / "model" / name).mkdir(parents=True)
        (root / "model" / name / "report.pdf").write_bytes(b"%PDF-old")
    return root


@pytest.fixture(scope="module")
def model_report(backtest, report_root):
    return build_model_report(backtest, model_facts(), report_root, keep_last=2, now=REPORT_TIME)


@pytest.fixture(scope="module")
def pdf_text(model_report) -> str:
    return one_line("\n".join(page.extract_text() for page in PdfReader(model_report.pdf_path).pages))


def test_report_lands_in_a_folder_named_by_version_and_utc_time_under_model(model_report, report_root):
    assert model_report.folder == report_root / "model" / "v7-20260326T101500Z"
    assert model_report.pdf_path == model_report.folder / "report.pdf"
    assert model_report.pdf_path.read_bytes().startswith(b"%PDF")


def test_page_count_is_the_pdfs(model_report):
    assert model_report.page_count == len(PdfReader(model_report.pdf_path).pages) >= 2


def test_the_pdf_leads_with_the_verdict_computed_from_the_backtest(model_report, backtest, pdf_text):
    assert model_report.verdict == backtest.verdict == verdict(backtest)
    assert one_line(backtest.verdict) in pdf_text
    assert pdf_text.index("Verdict") < pdf_text.index("Walk-forward metrics")


def test_the_pdf_shows_the_gate_decision_reason_and_p_value(pdf_text):
    assert "Decision keep champion" in pdf_text
    assert "the challenger's log loss is not significantly lower than the champion's" in pdf_text
    assert "p-value 0.0432" in pdf_text
    assert "btc_direction" in pdf_text and "Alias challenger" in pdf_text


def test_no_p_value_says_no_paired_test_decided():
    context = model_report_module.gate_facts(model_facts(gate_p_value=None))
    assert dict(context)["p-value"] == "none (no paired test decided)"


def test_the_metrics_tables_put_xgboost_against_every_baseline(pdf_text):
    facts = model_facts()
    xgboost = facts.overall["xgboost"]
    assert (
        f"XGBoost {xgboost.roc_auc:.4f} {xgboost.log_loss:.5f} {xgboost.brier:.5f} {xgboost.accuracy:.2%}" in pdf_text
    )
    for name in ("majority class", "persistence", "prior (base rate)"):
        assert pdf_text.count(name) >= 2  # overall and held-out
    assert f"{xgboost.log_loss:.5f} {xgboost.brier:.5f} {xgboost.accuracy:.2%} 120" in pdf_text  # held-out rows


def test_the_backtest_table_shows_each_strategys_numbers(pdf_text, backtest):
    hold = backtest.strategies["buy_and_hold"]
    assert hold.gross.annualised_return >= 100  # two days annualised: past 10,000 % reads as an exponent
    gross_row = (
        f"gross {hold.gross.total_return:+.2%} {hold.gross.annualised_return * 100:+.2e}% {hold.gross.sharpe:.2f} "
        f"{hold.gross.max_drawdown:.2%} {hold.gross.turnover:.1f}× {hold.gross.trades:,} {hold.gross.hit_rate:.2%}"
    )
    assert gross_row in pdf_text
    assert f"{hold.break_even_side_bps:.2f} bps" in pdf_text
    assert f"net {hold.net.total_return:+.2%}" in pdf_text
    for name in ("long/short on every call", "long/flat on every call", "buy and hold", "flat"):
        assert name in pdf_text


def test_a_break_even_hit_rate_above_one_reads_unreachable(pdf_text, backtest):
    assert backtest.strategies["long_short"].break_even_hit_rate > 1  # 20 bps a round trip, 4 bps moves
    assert "unreachable" in pdf_text
    assert break_even_hit_rate_text(1.2) == "unreachable"
    assert break_even_hit_rate_text(0.55) == "55.00%"
    assert break_even_hit_rate_text(float("nan")) == "–"


def test_the_pdf_states_costs_horizon_candles_and_thresholds(pdf_text, backtest):
    assert "Cost a side 10 bps (taker fee 10 bps + slippage 0 bps)" in pdf_text
    assert "Cost a round trip 20 bps" in pdf_text
    assert "Fills taker (market orders)" in pdf_text
    assert "Horizon 1 minutes: each call held 1 1m candle(s)" in pdf_text
    assert f"Candles backtested {backtest.candles:,}, 2024-01-01 00:00 UTC to" in pdf_text
    assert "fold 0 0.3000 held-out never" in pdf_text


def test_the_equity_chart_is_a_png_in_the_report_folder(model_report):
    (path,) = model_report.image_paths
    data = path.read_bytes()
    assert path.parent == model_report.folder
    assert data[:8] == PNG_SIGNATURE and int.from_bytes(data[16:20], "big") >= 800


def test_building_keeps_only_the_newest_model_reports_whatever_their_version(model_report, report_root):
    remaining = [path.name for path in completed_report_folders(report_root / "model")]
    assert remaining == ["v6-20200102T000000Z", "v7-20260326T101500Z"]


def test_a_failed_build_leaves_no_report_folder(backtest, tmp_path, monkeypatch):
    def crash(page_html, base_folder, pdf_path):
        pdf_path.write_bytes(b"%PDF-half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(model_report_module, "write_pdf", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        build_model_report(backtest, model_facts(), tmp_path, keep_last=3, now=REPORT_TIME)
    assert list((tmp_path / "model").iterdir()) == []


def test_a_version_that_is_no_safe_folder_name_is_refused(backtest, tmp_path):
    with pytest.raises(ValueError, match="report label"):
        build_model_report(backtest, model_facts(model_version="../7"), tmp_path, keep_last=1)


def test_an_unknown_gate_metric_is_refused():
    with pytest.raises(ValueError, match="gate_metric"):
        model_facts(gate_metric="accuracy")


def test_equity_curves_of_a_long_backtest_are_thinned_to_the_point_budget():
    calls = synthetic_calls(blocks=("fold 0",), candles_a_block=60_000, seed=4)
    long_backtest = run_backtest(calls, TEN_BPS, thresholds={"fold 0": 0.3})
    figure = equity_curve_figure(long_backtest)
    assert len(figure.data) == 2 * len(STRATEGIES)  # after and before costs
    for trace in figure.data:
        assert len(trace.y) <= MAX_EQUITY_POINTS
    net = long_backtest.strategies["long_short"].net_equity
    assert figure.data[0].y[-1] == net[-1]  # the last candle is always drawn


def test_the_reports_equity_curves_are_a_rendered_png(backtest, tmp_path):
    report = build_model_report(backtest, model_facts(), tmp_path, keep_last=1, now=REPORT_TIME)
    [image] = report.image_paths
    data = image.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
