"""Candle frame transforms: validation, de-duplication, the forming candle, gaps."""

from __future__ import annotations

import pandas as pd
import pytest

from btc_lifecycle.domain.candles import (
    CandleDataError,
    candle_frame_from_rows,
    closed_candles,
    find_gaps,
    sort_and_deduplicate,
    validate_candles,
)
from btc_lifecycle.domain.synthetic import without_minutes

T0 = 1_677_628_800_000  # 2023-03-01T00:00Z in ms


def rows(n: int, start: int = T0) -> list[list]:
    return [
        [start + i * 60_000, "100", "101", "99", "100.5", "2", start + i * 60_000 + 59_999, "200", 5, "1", "100", "0"]
        for i in range(n)
    ]


def test_rows_from_binance_become_a_frame_with_utc_times_and_extras():
    frame = candle_frame_from_rows(rows(2), "1m")
    assert str(frame["open_time"].dt.tz) == "UTC"
    assert frame["close_time"].iloc[0] == frame["open_time"].iloc[0] + pd.Timedelta(milliseconds=59_999)
    assert frame["trades"].tolist() == [5, 5]
    assert frame["close"].tolist() == [100.5, 100.5]


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [("low", 102.0, "high below low"), ("open", -1.0, "zero or negative price"), ("volume", float("nan"), "missing")],
)
def test_validation_names_the_problem_and_the_candle(column, value, problem):
    frame = candle_frame_from_rows(rows(3), "1m")
    frame.loc[1, column] = value
    with pytest.raises(CandleDataError, match=rf"page: {problem}.*2023-03-01T00:01:00"):
        validate_candles(frame, "page")


def test_repeated_identical_candles_are_dropped_and_counted():
    frame = candle_frame_from_rows(rows(3) + rows(2, start=T0 + 60_000), "1m")
    deduplicated, dropped = sort_and_deduplicate(frame, "pages")
    assert dropped == 2
    assert deduplicated["open_time"].is_monotonic_increasing and len(deduplicated) == 3


def test_two_different_candles_for_one_minute_are_an_error():
    conflicting = rows(1)
    conflicting[0][4] = "99.5"
    frame = candle_frame_from_rows(rows(2) + conflicting, "1m")
    with pytest.raises(CandleDataError, match="different candles share the open time 2023-03-01T00:00:00"):
        sort_and_deduplicate(frame, "pages")


def test_the_still_forming_candle_is_not_closed():
    frame = candle_frame_from_rows(rows(3), "1m")
    now = frame["open_time"].iloc[2] + pd.Timedelta(seconds=30)
    assert len(closed_candles(frame, now)) == 2
    assert len(closed_candles(frame, now + pd.Timedelta(seconds=30))) == 3


def test_a_candle_is_still_forming_during_its_last_millisecond():
    frame = candle_frame_from_rows(rows(3), "1m")
    last_close = frame["close_time"].iloc[2]  # open + 59.999 s
    assert len(closed_candles(frame, last_close)) == 2
    assert len(closed_candles(frame, last_close + pd.Timedelta(milliseconds=1))) == 3


def test_gaps_are_found_with_their_missing_count(generated_candles):
    holed = without_minutes(generated_candles, [10, 11, 12, 500])
    gaps = find_gaps(holed["open_time"], "1m")
    assert [(g.after, g.missing) for g in gaps] == [
        (generated_candles["open_time"][9], 3),
        (generated_candles["open_time"][499], 1),
    ]
