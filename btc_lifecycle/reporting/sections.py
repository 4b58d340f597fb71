"""The ingestion report's sections as plain strings for the HTML template.

Formatting lives here so the template only lays out; the template escapes every value.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from btc_lifecycle.domain.candles import Gap, interval_ms
from btc_lifecycle.domain.gaps import GapFillSummary
from btc_lifecycle.domain.labels import LABEL_COLUMN, label_balance
from btc_lifecycle.reporting.facts import ReportFacts
from btc_lifecycle.reporting.statistics import (
    LOG_RETURN,
    SUMMARY_STATISTICS,
    latest_candles,
    summary_statistics,
)

MAX_LISTED_GAPS = 40
LATEST_CANDLES = 10

_CHARTS = {
    "candlestick": (
        "OHLC candles and volume",
        "Candles aggregated to the bar size in the title: first open, highest high, lowest low, "
        "last close, summed volume. Bars inside gaps are left out.",
    ),
    "close_price": (
        "Close price",
        "Close of every candle over the full range; a break in the line is a gap in the data.",
    ),
    "label_scatter": (
        "Label vs return",
        "Each labeled candle's log return against time, coloured by price_increase_label. "
        "Ties (close equal to the previous close) are labeled 0 and drawn as diamonds. "
        "Large ranges show a fixed-seed random sample.",
    ),
}


def utc_minute(moment: pd.Timestamp) -> str:
    moment = pd.Timestamp(moment)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _number(value: float, digits: int) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def _percent(value: float, digits: int = 2) -> str:
    if math.isnan(value):
        return "–"
    # One unlabeled candle in 30,000 is not "0.00%": say it is small but there.
    smallest = 10 ** -(digits + 2)
    return f"<{smallest:.{digits}%}" if 0 < value < smallest else f"{value:.{digits}%}"


def run_facts(labeled: pd.DataFrame, facts: ReportFacts) -> list[tuple[str, str]]:
    first, last = labeled["open_time"].iloc[0], labeled["close_time"].iloc[-1]
    return [
        ("Source", facts.source),
        ("Symbol", facts.symbol),
        ("Interval", facts.interval),
        ("Covered range", f"{utc_minute(first)} to {utc_minute(last)}"),
        ("Candles in this report", f"{len(labeled):,}"),
        ("Rows new in this run", f"{facts.rows_new:,}"),
        ("Rows total in the store", f"{facts.rows_total:,}"),
        ("Missing minutes", f"{facts.missing_minutes:,} in {len(facts.gaps):,} gap(s)"),
        *([("Gap policy (features.max_fill_minutes)", gap_policy_text(facts.gap_policy))] if facts.gap_policy else []),
        ("Generated at", utc_minute(facts.generated_at)),
    ]


def gap_policy_text(policy: GapFillSummary) -> str:
    """What the model's gap policy makes of the stored gaps, in one sentence."""
    limit = policy.max_fill_minutes
    if limit == 0:
        return (
            f"off (max_fill_minutes = 0): all {policy.gaps_left_open:,} gap(s) "
            f"({policy.minutes_left_open:,} minutes) stay gaps for the model"
        )
    return (
        f"max_fill_minutes = {limit}: {policy.minutes_filled:,} minute(s) in "
        f"{policy.gaps_filled:,} gap(s) of at most {limit} would be filled for the model as "
        f"flat trade-less candles; {policy.gaps_left_open:,} longer gap(s) "
        f"({policy.minutes_left_open:,} minutes) stay gaps"
    )


def statistics_table(labeled: pd.DataFrame, interval: str) -> dict:
    table = summary_statistics(labeled, interval)
    rows = []
    for quantity, values in table.iterrows():
        if quantity == LOG_RETURN:
            cells = [f"{values[name]:.3e}" if not math.isnan(values[name]) else "–" for name in SUMMARY_STATISTICS[1:]]
            name = f"{interval} log return"
        else:
            digits = 4 if quantity == "volume" else 2
            cells = [_number(values[name], digits) for name in SUMMARY_STATISTICS[1:]]
            name = quantity
        rows.append([name, f"{int(values['count']):,}", *cells])
    return {
        "header": ["quantity", *SUMMARY_STATISTICS],
        "rows": rows,
        "note": f"Log returns are ln(close / previous close) and are not taken across gaps, "
        f"so their count is the number of candles with an adjacent previous {interval} "
        f"candle.",
    }


def label_rows(labeled: pd.DataFrame, interval: str) -> tuple[list[tuple[str, str, str]], str]:
    balance = label_balance(labeled)
    rows = [
        ("1 (close above previous close)", f"{balance.up:,}", _percent(balance.up_share)),
        ("0 (not above, ties included)", f"{balance.not_up:,}", _percent(balance.not_up_share)),
        ("unlabeled (first candle, after a gap)", f"{balance.unlabeled:,}", _percent(balance.unlabeled_share)),
        ("all candles", f"{balance.candles:,}", _percent(1.0 if balance.candles else math.nan)),
    ]
    note = (
        f"Ties: {balance.ties:,} candles closed exactly at the previous adjacent close, "
        f"{_percent(balance.tie_share)} of the {balance.labeled:,} labeled candles."
    )
    return rows, note


def gap_lines(gaps: list[Gap], interval: str) -> list[str]:
    step = pd.Timedelta(milliseconds=interval_ms(interval))
    return [
        f"{utc_minute(gap.after + step)} to {utc_minute(gap.before - step)}: "
        f"{gap.missing:,} missing candle(s), between the candles at {utc_minute(gap.after)} "
        f"and {utc_minute(gap.before)}"
        for gap in gaps[:MAX_LISTED_GAPS]
    ]


def latest_table(labeled: pd.DataFrame) -> dict:
    latest = latest_candles(labeled, LATEST_CANDLES)
    rows = [
        [
            utc_minute(row.open_time),
            *(f"{getattr(row, name):,.2f}" for name in ("open", "high", "low", "close")),
            f"{row.volume:,.4f}",
            "–" if pd.isna(row[LABEL_COLUMN]) else str(int(row[LABEL_COLUMN])),
        ]
        for _, row in latest.iterrows()
    ]
    return {"header": ["open time", "open", "high", "low", "close", "volume", "label"], "rows": rows}


def report_context(labeled: pd.DataFrame, facts: ReportFacts, stamp: str, chart_files: list[str]) -> dict:
    """Everything the ingestion template shows, already formatted as text."""
    labels, label_note = label_rows(labeled, facts.interval)
    gaps = facts.gaps
    return {
        "title": f"Ingestion report: {facts.symbol} {facts.interval}",
        "subtitle": f"{facts.source} · {len(labeled):,} candles · generated {utc_minute(facts.generated_at)}",
        "footer": f"btc-lifecycle ingestion report {stamp}",
        "run_facts": run_facts(labeled, facts),
        "statistics": statistics_table(labeled, facts.interval),
        "label_rows": labels,
        "label_note": label_note,
        "charts": [
            {"file": name, "heading": _CHARTS[Path(name).stem][0], "caption": _CHARTS[Path(name).stem][1]}
            for name in chart_files
        ],
        "gaps": gap_lines(gaps, facts.interval),
        "gaps_summary": f"{facts.missing_minutes:,} missing minutes in {len(gaps):,} gap(s).",
        "gaps_more": (
            f"… and {len(gaps) - MAX_LISTED_GAPS:,} more gaps not listed." if len(gaps) > MAX_LISTED_GAPS else ""
        ),
        "gap_policy": (
            f"Gap policy for the model inputs: {gap_policy_text(facts.gap_policy)}. "
            "Stored candles and labels stay as they are; feature windows never cross "
            "a gap left open."
            if facts.gap_policy
            else ""
        ),
        "latest": latest_table(labeled),
    }
