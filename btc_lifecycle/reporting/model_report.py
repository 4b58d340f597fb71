"""The model report: a PDF on one model version, its promotion gate, its walk-forward metrics
against the baselines, and the backtest of its calls with and without costs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from btc_lifecycle.domain.candles import interval_ms
from btc_lifecycle.modelling.backtest import NEVER, STRATEGY_NAMES, Backtest
from btc_lifecycle.modelling.champion import GATE_MEASURES
from btc_lifecycle.reporting.pdf import render_report_html, write_pdf
from btc_lifecycle.reporting.retention import (
    build_report_folder,
    labelled_stamp,
    report_stamp,
)
from btc_lifecycle.reporting.sections import utc_minute

if TYPE_CHECKING:
    # sklearn stays out of the code location's load: the facts only carry the metrics.
    from btc_lifecycle.modelling.metrics import ClassificationMetrics

REPORT_KIND = "model"
PDF_NAME = "report.pdf"
HTML_NAME = "report.html"
EQUITY_CHART = "equity_curves"
# The rows of the metrics tables, in this order; any other model follows under its own name.
MODEL_LABELS = {
    "xgboost": "XGBoost",
    "majority": "majority class",
    "persistence": "persistence",
    "prior": "prior (base rate)",
}
THRESHOLDS_A_ROW = 4
UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class ModelReportFacts:
    """What the run knows about the model that the backtest does not."""

    model_name: str
    model_version: str
    alias: str  # the registry alias the version holds after the gate: champion, challenger...
    decision: str
    promotion_reason: str
    gate_p_value: float | None  # None: no paired test decided (no champion to compare with)
    gate_metric: Literal["log_loss", "net_return"]
    overall: dict[str, ClassificationMetrics]  # walk-forward: the folds, pooled
    heldout: dict[str, ClassificationMetrics]  # the window the gate judges on
    generated_at: datetime

    def __post_init__(self) -> None:
        if self.gate_metric not in GATE_MEASURES:
            raise ValueError(f"gate_metric must be one of {', '.join(GATE_MEASURES)}, got {self.gate_metric!r}")
        for name in ("overall", "heldout"):
            if "xgboost" not in getattr(self, name):
                raise ValueError(f"{name} metrics need the model's own ('xgboost'), got {sorted(getattr(self, name))}")


@dataclass(frozen=True)
class ModelReport:
    """Where the report landed and the verdict it leads with."""

    pdf_path: Path
    html_path: Path
    folder: Path
    image_paths: tuple[Path, ...]
    page_count: int
    verdict: str


def build_model_report(
    backtest: Backtest, facts: ModelReportFacts, report_root: Path, keep_last: int, now: datetime | None = None
) -> ModelReport:
    """Write ``report_root/model/v<version>-<UTC stamp>/report.pdf`` with its chart; keep the
    newest ``keep_last`` model reports.

    The report is built in a ``.tmp-*`` sibling and renamed into place only when complete.
    """
    if backtest.candles == 0:
        raise ValueError("the model report needs a backtest of at least one candle; it has none")
    if keep_last < 1:
        raise ValueError(f"keep_last must be at least 1, got {keep_last}")
    moment = now if now is not None else datetime.now(UTC)
    name = labelled_stamp(f"v{facts.model_version}", report_stamp(moment))
    folder, (page_count, image_names) = build_report_folder(
        Path(report_root) / REPORT_KIND, name, keep_last, lambda temp: _write_report(backtest, facts, temp, name)
    )
    return ModelReport(
        pdf_path=folder / PDF_NAME,
        html_path=folder / HTML_NAME,
        folder=folder,
        image_paths=tuple(folder / image for image in image_names),
        page_count=page_count,
        verdict=backtest.verdict,
    )


def _write_report(backtest: Backtest, facts: ModelReportFacts, folder: Path, name: str) -> tuple[int, tuple[str, ...]]:
    # Imported here: plotly loads in the step that draws the report, not with the code location.
    from btc_lifecycle.reporting.charts import equity_curve_figure, write_chart_pngs

    images = write_chart_pngs([(EQUITY_CHART, equity_curve_figure(backtest))], folder)
    context = report_context(backtest, facts, name, chart_files=[path.name for path in images])
    page_html = render_report_html("model_report.html", context)
    (folder / HTML_NAME).write_text(page_html, encoding="utf-8")
    return write_pdf(page_html, folder, folder / PDF_NAME), tuple(path.name for path in images)


def report_context(backtest: Backtest, facts: ModelReportFacts, name: str, chart_files: list[str]) -> dict:
    """Everything the model template shows, already formatted as text."""
    return {
        "title": f"Model report: {facts.model_name} version {facts.model_version}",
        "subtitle": f"alias {facts.alias} · {backtest.candles:,} candles backtested · "
        f"generated {utc_minute(facts.generated_at)}",
        "footer": f"btc-lifecycle model report {name}",
        "verdict": backtest.verdict,
        "model_facts": model_facts(facts),
        "gate_facts": gate_facts(facts),
        "overall": metrics_table(facts.overall),
        "heldout": metrics_table(facts.heldout),
        "backtest": backtest_table(backtest),
        "backtest_facts": backtest_facts(backtest),
        "thresholds": threshold_table(backtest.thresholds),
        "charts": chart_files,
        "costs_label": f"{backtest.costs.side_bps:g} bps a side",
    }


def model_facts(facts: ModelReportFacts) -> list[tuple[str, str]]:
    return [
        ("Model", facts.model_name),
        ("Version", facts.model_version),
        ("Alias", facts.alias),
        ("Generated at", utc_minute(facts.generated_at)),
    ]


def gate_facts(facts: ModelReportFacts) -> list[tuple[str, str]]:
    return [
        ("Decision", facts.decision),
        ("Reason", facts.promotion_reason),
        ("Gate metric", GATE_MEASURES[facts.gate_metric]),
        ("p-value", p_value_text(facts.gate_p_value)),
    ]


def p_value_text(p_value: float | None) -> str:
    if p_value is None or math.isnan(p_value):
        return "none (no paired test decided)"
    return "<0.0001" if p_value < 0.0001 else f"{p_value:.4f}"


def metrics_table(metrics: dict[str, ClassificationMetrics]) -> dict:
    """The model against its baselines: ranking, calibration and hit rate."""
    order = [name for name in MODEL_LABELS if name in metrics] + [name for name in metrics if name not in MODEL_LABELS]
    rows = [
        [
            MODEL_LABELS.get(name, name),
            _number(metrics[name].roc_auc, 4),
            _number(metrics[name].log_loss, 5),
            _number(metrics[name].brier, 5),
            percent_text(metrics[name].accuracy),
            f"{metrics[name].rows:,}",
        ]
        for name in order
    ]
    return {"header": ["model", "ROC AUC", "log loss", "Brier", "accuracy", "candles"], "rows": rows}


def backtest_table(backtest: Backtest) -> dict:
    """``backtest.table()`` as text: a gross and a net row per strategy; the break-even columns,
    one value per strategy, span both."""
    rows = []
    for strategy, group in backtest.table().groupby("strategy", sort=False):
        for position, row in enumerate(group.itertuples(index=False)):
            rows.append(
                {
                    "strategy": STRATEGY_NAMES.get(strategy, strategy) if position == 0 else None,
                    "span": len(group),
                    "costs": row.costs,
                    "cells": [
                        percent_text(row.total_return, signed=True),
                        percent_text(row.annualised_return, signed=True),
                        _number(row.sharpe, 2),
                        percent_text(row.max_drawdown),
                        f"{row.turnover:,.1f}×",
                        f"{row.trades:,}",
                        percent_text(row.hit_rate),
                    ],
                    "break_even": (
                        [
                            break_even_cost_text(row.break_even_side_bps),
                            break_even_hit_rate_text(row.break_even_hit_rate),
                        ]
                        if position == 0
                        else None
                    ),
                }
            )
    header = [
        "strategy",
        "costs",
        "total return",
        "annualised",
        "Sharpe",
        "max drawdown",
        "turnover",
        "trades",
        "hit rate",
        "break-even cost a side",
        "break-even hit rate",
    ]
    return {"header": header, "rows": rows}


def break_even_cost_text(side_bps: float) -> str:
    return "–" if not math.isfinite(side_bps) else f"{side_bps:,.2f} bps"


def break_even_hit_rate_text(hit_rate: float) -> str:
    """A hit rate above 100 % is no target: no calls could be right that often."""
    if not math.isfinite(hit_rate):
        return "–"
    return UNREACHABLE if hit_rate > 1 else percent_text(hit_rate)


def backtest_facts(backtest: Backtest) -> list[tuple[str, str]]:
    costs = backtest.costs
    horizon_minutes = backtest.horizon * interval_ms(backtest.interval) // 60_000
    fee = costs.taker_fee_bps if costs.fills == "taker" else costs.maker_fee_bps
    first, last = pd.Timestamp(backtest.times.iloc[0]), pd.Timestamp(backtest.times.iloc[-1])
    return [
        (
            "Cost a side",
            f"{costs.side_bps:g} bps ({costs.fills} fee {fee:g} bps + slippage {costs.slippage_bps:g} bps)",
        ),
        ("Cost a round trip", f"{costs.round_trip_bps:g} bps"),
        ("Fills", f"{costs.fills} ({'market' if costs.fills == 'taker' else 'limit'} orders)"),
        (
            "Horizon",
            f"{horizon_minutes:,} minutes: each call held {backtest.horizon:,} {backtest.interval} candle(s) "
            f"as a 1/{backtest.horizon:,} tranche of the capital",
        ),
        ("Candles backtested", f"{backtest.candles:,}, {utc_minute(first)} to {utc_minute(last)}"),
    ]


def threshold_table(thresholds: dict[str, float]) -> dict:
    """Each block's selective threshold on |2p − 1|, THRESHOLDS_A_ROW blocks a row."""
    pairs = [(str(block), threshold_text(value)) for block, value in thresholds.items()]
    rows = [
        [cell for pair in pairs[start : start + THRESHOLDS_A_ROW] for cell in pair]
        for start in range(0, len(pairs), THRESHOLDS_A_ROW)
    ]
    columns = min(len(pairs), THRESHOLDS_A_ROW)
    return {"header": ["block", "threshold"] * columns, "rows": [row + [""] * (2 * columns - len(row)) for row in rows]}


def threshold_text(threshold: float) -> str:
    return "never" if threshold == NEVER else f"{threshold:.4f}"


def percent_text(value: float, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    sign = "+" if signed else ""
    # Past 10,000 % (a short backtest annualised), an exponent reads better than a row of digits.
    return f"{value * 100:{sign}.2e}%" if abs(value) >= 100 else f"{value:{sign},.2%}"


def _number(value: float, digits: int) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"
