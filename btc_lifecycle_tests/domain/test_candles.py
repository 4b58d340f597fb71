"""Candle frames: exchange rows in their columns, validation naming the problem and the candle,
de-duplication, the forming candle, gaps and the missing candles they hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.candles import (
    CANDLE_COLUMNS,
    EXTRA_COLUMNS,
    OHLCV_COLUMNS,
    CandleDataError,
    Gap,
    candle_frame_from_rows,
    closed_candles,
    complete_candle_frame,
    empty_candle_frame,
    find_gaps,
    interval_ms,
    missing_candle_count,
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


# missing candles, gaps


def times(minutes: list[int]) -> pd.Series:
    return pd.Series([pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(minutes=m) for m in minutes])


def test_missing_candles_are_summed_over_all_gaps():
    assert missing_candle_count(times([0, 1, 4, 5, 9]), "1m") == 2 + 3


def test_a_series_without_gaps_misses_no_candle():
    assert missing_candle_count(times([0, 1, 2]), "1m") == 0


def test_the_interval_sets_what_counts_as_missing():
    assert missing_candle_count(times([0, 10, 30]), "5m") == 1 + 3


def test_an_empty_candle_frame_has_utc_times_and_float_numbers():
    frame = empty_candle_frame()
    assert frame.empty and list(frame.columns) == list(CANDLE_COLUMNS)
    for name in ("open_time", "close_time"):
        assert isinstance(frame[name].dtype, pd.DatetimeTZDtype) and str(frame[name].dt.tz) == "UTC", name
    numbers = [name for name in CANDLE_COLUMNS if name not in ("open_time", "close_time")]
    assert all(frame[name].dtype == np.float64 for name in numbers), frame.dtypes


# interval_ms


def test_an_unsupported_interval_is_refused_listing_the_supported_ones():
    with pytest.raises(
        ValueError,
        match=r"^interval '7m' is not supported; use one of 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d$",
    ):
        interval_ms("7m")


# candle_frame_from_rows, field by field

OPEN0 = pd.Timestamp("2023-03-01T00:00:00Z")


def binance_row(minute: int, *extra) -> list:
    start = T0 + minute * 60_000
    return [start, "10", "13", "9", "12", "5", start + 59_999, "60", 7, "2", "24", "0", *extra]


def values(frame: pd.DataFrame, row: int = 0) -> list:
    return [None if pd.isna(v) else v for v in frame.iloc[row].tolist()]


def test_every_field_of_a_binance_row_lands_in_its_column():
    frame = candle_frame_from_rows([binance_row(0), binance_row(1)], "1m")
    assert list(frame.columns) == list(CANDLE_COLUMNS)
    assert values(frame, 1) == [
        OPEN0 + pd.Timedelta(minutes=1),
        10.0,
        13.0,
        9.0,
        12.0,
        5.0,
        OPEN0 + pd.Timedelta(minutes=1, milliseconds=59_999),
        60.0,
        7.0,
        2.0,
        24.0,
    ]
    assert frame.index.tolist() == [0, 1]


def test_ccxt_rows_of_six_fields_have_no_extras():
    frame = candle_frame_from_rows([[T0, 10, 13, 9, 12, 5], [T0 + 60_000, 12, 14, 11, 13, 6]], "1m")
    assert values(frame, 1) == [
        OPEN0 + pd.Timedelta(minutes=1),
        12.0,
        14.0,
        11.0,
        13.0,
        6.0,
        OPEN0 + pd.Timedelta(minutes=1, milliseconds=59_999),
        None,
        None,
        None,
        None,
    ]


def test_rows_of_five_fields_have_a_missing_volume():
    frame = candle_frame_from_rows([[T0, 10, 13, 9, 12], [T0 + 60_000, 12, 14, 11, 13]], "1m")
    assert frame["close"].tolist() == [12.0, 13.0]
    assert frame["volume"].isna().all() and frame["quote_volume"].isna().all()


def test_rows_of_eleven_fields_carry_all_four_extras():
    frame = candle_frame_from_rows([binance_row(0)[:11]], "1m")
    assert values(frame)[7:] == [60.0, 7.0, 2.0, 24.0]


def test_rows_with_none_values_are_read_field_by_field_as_missing():
    page = [[T0, 10, 13, 9, 12, None], [T0 + 60_000, "12", "14", "11", "13", "6"]]
    frame = candle_frame_from_rows(page, "1m")
    assert values(frame, 0)[:6] == [OPEN0, 10.0, 13.0, 9.0, 12.0, None]
    assert values(frame, 1)[:6] == [OPEN0 + pd.Timedelta(minutes=1), 12.0, 14.0, 11.0, 13.0, 6.0]
    assert {str(frame[name].dtype) for name in OHLCV_COLUMNS} == {"float64"}


def test_ragged_rows_longer_than_twelve_fields_ignore_the_rest():
    page = [binance_row(0, "ignored"), [T0 + 60_000, 12, 14, 11, 13, None]]
    frame = candle_frame_from_rows(page, "1m")
    assert values(frame, 0)[1:6] == [10.0, 13.0, 9.0, 12.0, 5.0]
    assert values(frame, 0)[7:] == [60.0, 7.0, 2.0, 24.0]
    assert values(frame, 1)[1:] == [
        12.0,
        14.0,
        11.0,
        13.0,
        None,
        OPEN0 + pd.Timedelta(minutes=1, milliseconds=59_999),
        None,
        None,
        None,
        None,
    ]
    assert {str(frame[name].dtype) for name in (*OHLCV_COLUMNS, *EXTRA_COLUMNS)} == {"float64"}


# complete_candle_frame


def test_completing_a_frame_keeps_the_extras_it_has_and_adds_the_others():
    frame = pd.DataFrame(
        {"open_time": [OPEN0], "open": [1.0], "high": [2.0], "low": [0.5], "close": [1.5], "volume": [3.0]},
        index=[7],
    ).assign(trades=4.0)
    completed = complete_candle_frame(frame, "5m")
    assert list(completed.columns) == list(CANDLE_COLUMNS)
    assert completed.index.tolist() == [0]
    assert completed["trades"].tolist() == [4.0]
    assert completed[["quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume"]].isna().all().all()
    assert completed["close_time"].tolist() == [OPEN0 + pd.Timedelta(minutes=5) - pd.Timedelta(milliseconds=1)]


# validate_candles


def valid_candles(count: int = 3) -> pd.DataFrame:
    return candle_frame_from_rows([binance_row(m) for m in range(count)], "1m")


def message_of(frame: pd.DataFrame) -> str:
    with pytest.raises(CandleDataError) as raised:
        validate_candles(frame, "page 3")
    return str(raised.value)


def test_a_flat_candle_with_zero_volume_and_small_prices_is_valid():
    frame = valid_candles()
    frame.loc[1, list(OHLCV_COLUMNS)] = [0.5, 0.5, 0.5, 0.5, 0.0]
    validate_candles(frame, "page 3")  # no error: equal prices, zero volume, prices below 1


def test_open_and_close_may_touch_the_high_and_the_low():
    frame = valid_candles()
    frame.loc[0, list(OHLCV_COLUMNS)] = [13.0, 13.0, 9.0, 9.0, 5.0]
    frame.loc[1, list(OHLCV_COLUMNS)] = [9.0, 13.0, 9.0, 13.0, 5.0]
    validate_candles(frame, "page 3")


def test_an_infinite_price_is_named_with_its_candle_and_count():
    frame = valid_candles()
    frame.loc[1, "high"] = np.inf
    assert message_of(frame) == (
        "page 3: non-finite open/high/low/close/volume at candle 2023-03-01T00:01:00+00:00 (1 candle(s) affected)"
    )


def test_a_zero_price_is_named_with_its_candle():
    frame = valid_candles()
    frame.loc[2, "low"] = 0.0
    assert (
        message_of(frame) == "page 3: zero or negative price at candle 2023-03-01T00:02:00+00:00 (1 candle(s) affected)"
    )


def test_a_negative_volume_is_named_with_its_candle():
    frame = valid_candles()
    frame.loc[1, "volume"] = -0.5
    frame.loc[2, "volume"] = -1.0
    assert message_of(frame) == "page 3: negative volume at candle 2023-03-01T00:01:00+00:00 (2 candle(s) affected)"


@pytest.mark.parametrize(("column", "value"), [("open", 14.0), ("close", 14.0), ("open", 8.0), ("close", 8.0)])
def test_an_open_or_close_outside_the_range_is_named_with_its_candle(column, value):
    frame = valid_candles()
    frame.loc[1, column] = value
    assert message_of(frame) == (
        "page 3: open or close outside the high-low range at candle 2023-03-01T00:01:00+00:00 (1 candle(s) affected)"
    )


def test_a_missing_value_in_a_nullable_column_is_reported_as_missing():
    frame = valid_candles()
    frame["volume"] = pd.array([5.0, None, 5.0], dtype="Float64")
    assert message_of(frame) == (
        "page 3: missing or non-numeric open/high/low/close/volume at candle 2023-03-01T00:01:00+00:00 "
        "(1 candle(s) affected)"
    )


def test_numbers_held_in_an_object_column_are_validated_as_numbers():
    frame = valid_candles().astype({"volume": object})
    validate_candles(frame, "page 3")
    frame.loc[1, "volume"] = -1
    assert message_of(frame).startswith("page 3: negative volume at candle 2023-03-01T00:01:00+00:00")


# sort_and_deduplicate


def test_sorting_a_frame_without_repeats_drops_nothing_and_renumbers_the_rows():
    frame = valid_candles().iloc[[2, 0, 1]]
    result, dropped = sort_and_deduplicate(frame, "pages")
    assert dropped == 0
    assert list(result.columns) == list(CANDLE_COLUMNS) and result.index.tolist() == [0, 1, 2]
    assert result["open_time"].tolist() == sorted(frame["open_time"])


def test_of_repeated_candles_the_one_from_the_later_page_is_kept():
    first_page = valid_candles(2)
    later_page = valid_candles(2).assign(trades=[8.0, 9.0])  # same prices, updated trade count
    result, dropped = sort_and_deduplicate(pd.concat([first_page, later_page]), "pages")
    assert dropped == 2
    assert list(result.columns) == list(CANDLE_COLUMNS) and result.index.tolist() == [0, 1]
    assert result["trades"].tolist() == [8.0, 9.0]


def test_repeats_in_a_long_back_fill_keep_the_later_page_in_order():
    first_page = valid_candles(300)
    later_page = valid_candles(300).assign(trades=8.0)
    result, dropped = sort_and_deduplicate(pd.concat([first_page, later_page]), "pages")
    assert dropped == 300
    assert result["trades"].tolist() == [8.0] * 300


# closed_candles


def test_closed_candles_are_renumbered_without_an_index_column():
    frame = valid_candles().iloc[[1, 2]]
    closed = closed_candles(frame, OPEN0 + pd.Timedelta(minutes=5))
    assert list(closed.columns) == list(CANDLE_COLUMNS) and closed.index.tolist() == [0, 1]


# find_gaps


def test_a_gap_between_just_two_candles_is_found_with_both_ends():
    gaps = find_gaps(times([0, 4]), "1m")
    assert gaps == [Gap(after=times([0])[0], before=times([4])[0], missing=3)]
