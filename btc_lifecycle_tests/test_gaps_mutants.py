"""The gap-fill summary records its limit (found loose by `make mutate`, docs/mutation.md)."""

from __future__ import annotations

import pandas as pd

from btc_lifecycle.domain.gaps import gap_fill_summary

START = pd.Timestamp("2024-03-01T00:00:00Z")


def at(minute: float) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=minute)


def iso(minute: float) -> str:
    return at(minute).isoformat()


# gap_fill_summary


def test_the_gap_fill_summary_records_its_limit():
    times = pd.Series([at(0), at(1), at(4), at(20)])
    summary = gap_fill_summary(times, "1m", max_fill_minutes=3)
    assert summary.max_fill_minutes == 3
    assert (summary.gaps_filled, summary.minutes_filled) == (1, 2)
    assert (summary.gaps_left_open, summary.minutes_left_open) == (1, 15)
