"""What an ingest fetches and how it summarizes what it stored (btc_lifecycle.domain.ingestion)."""

from __future__ import annotations

import pandas as pd
import pytest

from btc_lifecycle.domain.ingestion import (
    GAPS_LISTED,
    day_summaries,
    days_table,
    fetch_start,
    label_summary,
    store_summary,
)
from btc_lifecycle.domain.labels import LABEL_COLUMN
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes

NOW = pd.Timestamp("2024-01-10T12:34:56.789Z")


@pytest.mark.parametrize(("interval", "step"), [("1m", pd.Timedelta(minutes=1)), ("1h", pd.Timedelta(hours=1))])
def test_an_ingest_resumes_one_interval_after_the_last_stored_candle(interval, step):
    last = pd.Timestamp("2024-01-09T23:00Z")
    assert fetch_start(last, NOW, interval, backfill_days=3) == last + step
    assert fetch_start(last, NOW, interval, backfill_days=None) == last + step


def test_a_first_ingest_goes_back_the_backfill_days_to_a_whole_interval():
    assert fetch_start(None, NOW, "1m", backfill_days=3) == pd.Timestamp("2024-01-07T12:34:00Z")
    assert fetch_start(None, NOW, "1h", backfill_days=1) == pd.Timestamp("2024-01-09T12:00:00Z")


def test_a_first_ingest_of_all_history_starts_at_the_epoch():
    assert fetch_start(None, NOW, "1m", backfill_days=None) == pd.Timestamp(0, tz="UTC")


def labeled(closes: list[float], labels: list[int | None]) -> pd.DataFrame:
    return pd.DataFrame({"close": closes, LABEL_COLUMN: pd.array(labels, dtype="Int8")})


def test_the_label_summary_counts_ups_and_ties_among_labeled_rows_only():
    # The first row has no previous candle; the fourth follows a gap: its equal close is no tie.
    frame = labeled([100.0, 101.0, 101.0, 101.0, 102.0, 102.0], [None, 1, 0, None, 1, 0])
    assert label_summary(frame) == {"labeled_rows": 4, "unlabeled_rows": 2, "up_share": 0.5, "tie_share": 0.5}


def test_the_label_summary_of_rows_without_labels_has_zero_shares():
    assert label_summary(labeled([100.0, 99.0], [None, None])) == {
        "labeled_rows": 0,
        "unlabeled_rows": 2,
        "up_share": 0.0,
        "tie_share": 0.0,
    }


def test_label_shares_are_rounded_to_six_decimals():
    # Three labeled rows, one up, one tie: shares of a third.
    summary = label_summary(labeled([1.0, 2.0, 2.0, 2.0], [1, 0, 0, None]))
    assert summary["labeled_rows"] == 3 and summary["unlabeled_rows"] == 1
    assert summary["up_share"] == 0.333333


def test_the_store_summary_names_its_range_and_each_gap():
    candles = without_minutes(synthetic_candles(100, start="2024-01-01T00:00Z"), [*range(10, 13), 50])
    summary = store_summary(candles["open_time"], "1m")
    assert summary == {
        "total_rows": 96,
        "first_candle": "2024-01-01T00:00:00+00:00",
        "last_candle": "2024-01-01T01:39:00+00:00",
        "missing_minutes": 4,
        "gaps": [
            {"after": "2024-01-01T00:09:00+00:00", "before": "2024-01-01T00:13:00+00:00", "missing": 3},
            {"after": "2024-01-01T00:49:00+00:00", "before": "2024-01-01T00:51:00+00:00", "missing": 1},
        ],
    }


def test_the_store_summary_lists_the_first_gaps_only_but_counts_every_missing_minute():
    candles = synthetic_candles(3 * (GAPS_LISTED + 10), start="2024-01-01T00:00Z")
    gappy = without_minutes(candles, range(1, len(candles), 3))  # one minute missing in every three
    summary = store_summary(gappy["open_time"], "1m")
    assert len(summary["gaps"]) == GAPS_LISTED
    assert summary["missing_minutes"] == GAPS_LISTED + 10
    assert summary["gaps"][0] == {
        "after": "2024-01-01T00:00:00+00:00",
        "before": "2024-01-01T00:02:00+00:00",
        "missing": 1,
    }


def test_an_empty_store_has_no_range():
    summary = store_summary(pd.Series([], dtype="datetime64[ns, UTC]"), "1m")
    assert summary == {"total_rows": 0, "first_candle": None, "last_candle": None, "missing_minutes": 0, "gaps": []}


def test_each_utc_day_reports_its_candles_and_the_minutes_and_gaps_missing_inside_it():
    start, end = pd.Timestamp("2024-01-01T12:00Z"), pd.Timestamp("2024-01-03T06:00Z")
    candles = synthetic_candles(720 + 1440 + 360, start=start)
    # Five minutes on the first day, one on the second, the last hour before the clock on the third.
    stored = without_minutes(candles, [*range(100, 105), 800, *range(2460, 2520)])["open_time"]

    days = day_summaries(stored, start, end, "1m")

    assert days == [
        {"day": "2024-01-01", "rows": 715, "missing_minutes": 5, "gaps": 1},  # from 12:00 only
        {"day": "2024-01-02", "rows": 1439, "missing_minutes": 1, "gaps": 1},
        # Up to the clock at 06:00; the missing last hour is no gap inside the day: nothing follows.
        {"day": "2024-01-03", "rows": 300, "missing_minutes": 60, "gaps": 0},
    ]
    assert days_table(days).splitlines() == [
        "| day | candles | missing minutes | gaps inside |",
        "|---|---|---|---|",
        "| 2024-01-01 | 715 | 5 | 1 |",
        "| 2024-01-02 | 1439 | 1 | 1 |",
        "| 2024-01-03 | 300 | 60 | 0 |",
    ]


def test_a_day_without_candles_is_missing_every_minute():
    stored = synthetic_candles(60, start="2024-01-01T00:00Z")["open_time"]
    days = day_summaries(stored, pd.Timestamp("2024-01-01T00:00Z"), pd.Timestamp("2024-01-03T00:00Z"), "1m")
    assert days[1] == {"day": "2024-01-02", "rows": 0, "missing_minutes": 1440, "gaps": 0}


START = pd.Timestamp("2024-03-01T00:00:00Z")


def at(minute: float) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=minute)


def test_a_range_ending_at_midnight_has_no_summary_for_the_next_day():
    times = pd.Series([at(0), at(1)])
    days = day_summaries(times, START, START + pd.Timedelta(days=1), "1m")
    assert [day["day"] for day in days] == ["2024-03-01"]
    assert days[0] == {"day": "2024-03-01", "rows": 2, "missing_minutes": 1438, "gaps": 0}


def test_less_than_a_candle_of_the_day_expects_no_candle():
    days = day_summaries(pd.Series([], dtype="datetime64[ns, UTC]"), at(0.25), at(0.75), "1m")
    assert days == [{"day": "2024-03-01", "rows": 0, "missing_minutes": 0, "gaps": 0}]
