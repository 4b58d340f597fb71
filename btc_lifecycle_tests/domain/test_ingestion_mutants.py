"""The ingestion summaries pinned down where `make mutate` found the tests loose: label shares
to six decimals, the days of a range (docs/mutation.md)."""

from __future__ import annotations

import pandas as pd

from btc_lifecycle.domain.ingestion import day_summaries, label_summary

START = pd.Timestamp("2024-03-01T00:00:00Z")


def at(minute: float) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=minute)


def iso(minute: float) -> str:
    return at(minute).isoformat()


# label_summary


def test_label_shares_are_rounded_to_six_decimals():
    # Three labeled rows, one up, one tie: shares of a third.
    labeled = pd.DataFrame({"price_increase_label": pd.array([1, 0, 0, pd.NA], dtype="Int8")})
    labeled["close"] = [1.0, 2.0, 2.0, 2.0]
    summary = label_summary(labeled)
    assert summary["labeled_rows"] == 3 and summary["unlabeled_rows"] == 1
    assert summary["up_share"] == 0.333333


# day_summaries


def test_a_range_ending_at_midnight_has_no_summary_for_the_next_day():
    times = pd.Series([at(0), at(1)])
    days = day_summaries(times, START, START + pd.Timedelta(days=1), "1m")
    assert [day["day"] for day in days] == ["2024-03-01"]
    assert days[0] == {"day": "2024-03-01", "rows": 2, "missing_minutes": 1438, "gaps": 0}


def test_less_than_a_candle_of_the_day_expects_no_candle():
    days = day_summaries(pd.Series([], dtype="datetime64[ns, UTC]"), at(0.25), at(0.75), "1m")
    assert days == [{"day": "2024-03-01", "rows": 0, "missing_minutes": 0, "gaps": 0}]
