"""What an ingest should fetch, and what it did: pure decisions and summaries."""

from __future__ import annotations

from typing import Any

import pandas as pd

from btc_lifecycle.domain.candles import Gap, find_gaps, interval_ms
from btc_lifecycle.domain.labels import label_balance

GAPS_LISTED = 50


def fetch_start(
    last_stored: pd.Timestamp | None, now: pd.Timestamp, interval: str, backfill_days: int | None
) -> pd.Timestamp:
    """Where the next ingest starts: after the last stored candle, else the backfill window.

    ``backfill_days=None`` asks for everything the exchange has (Binance answers a start time of
    0 with its first candle).
    """
    if last_stored is not None:
        return last_stored + pd.Timedelta(milliseconds=interval_ms(interval))
    if backfill_days is None:
        return pd.Timestamp(0, tz="UTC")  # the epoch (built here: pandas loads lazily)
    return (now - pd.Timedelta(days=backfill_days)).floor(pd.Timedelta(milliseconds=interval_ms(interval)))


def gap_records(gaps: list[Gap]) -> list[dict[str, Any]]:
    return [
        {"after": gap.after.isoformat(), "before": gap.before.isoformat(), "missing": gap.missing}
        for gap in gaps[:GAPS_LISTED]
    ]


def label_summary(labeled: pd.DataFrame) -> dict[str, float | int]:
    """Label balance (``domain.labels.label_balance``), with ties counted apart; shares of the
    labeled rows, 0 when none is labeled (JSON has no NaN)."""
    balance = label_balance(labeled)

    def share(value: float) -> float:
        return round(value, 6) if balance.labeled else 0.0

    return {
        "labeled_rows": balance.labeled,
        "unlabeled_rows": balance.unlabeled,
        "up_share": share(balance.up_share),
        "tie_share": share(balance.tie_share),
    }


def store_summary(open_times: pd.Series, interval: str) -> dict[str, Any]:
    """Rows, range and gaps of a stored series."""
    gaps = find_gaps(open_times, interval)
    return {
        "total_rows": int(len(open_times)),
        "first_candle": open_times.iloc[0].isoformat() if len(open_times) else None,
        "last_candle": open_times.iloc[-1].isoformat() if len(open_times) else None,
        "missing_minutes": sum(gap.missing for gap in gaps),
        "gaps": gap_records(gaps),
    }


def day_summaries(open_times: pd.Series, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> list[dict[str, Any]]:
    """Per UTC day in [start, end): candles, the minutes without one, and the gaps inside the day.

    ``end`` is where the exchange's clock stood for a day still forming: its future minutes are
    not missing.
    """
    step = pd.Timedelta(milliseconds=interval_ms(interval))
    days = []
    day = start.floor("D")
    while day < end:
        day_end = min(day + pd.Timedelta(days=1), end)
        in_day = open_times.loc[(open_times >= day) & (open_times < day_end)]
        expected = max(0, int((day_end - max(day, start)) / step))
        days.append(
            {
                "day": day.date().isoformat(),
                "rows": int(len(in_day)),
                "missing_minutes": max(0, expected - int(len(in_day))),
                "gaps": len(find_gaps(in_day.reset_index(drop=True), interval)),
            }
        )
        day += pd.Timedelta(days=1)
    return days


def days_table(days: list[dict[str, Any]]) -> str:
    """The per-day summaries as a Markdown table for the UI."""
    rows = ["| day | candles | missing minutes | gaps inside |", "|---|---|---|---|"]
    rows += [f"| {day['day']} | {day['rows']} | {day['missing_minutes']} | {day['gaps']} |" for day in days]
    return "\n".join(rows)
