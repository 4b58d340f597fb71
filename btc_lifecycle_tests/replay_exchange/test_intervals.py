"""Specifications of the replay exchange's klines at every Binance interval, made from a minute file."""

from __future__ import annotations

import pandas as pd
import pytest

from btc_lifecycle.replay_exchange import Fault, ReplayExchange
from btc_lifecycle_tests import minute_candles
from btc_lifecycle_tests.replay_exchange.aggregation import (
    RULES,
    assert_klines_match,
    get,
    minutes_with_extras,
    resampled,
    set_clock,
)

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
FIRST = "2024-01-29T00:00:00Z"  # a Monday: five weeks, a month's end and a leap day follow
DAYS = 33


def ms(moment: str) -> int:
    return int(pd.Timestamp(moment).value // 1_000_000)


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    return minutes_with_extras(DAYS * 1440, FIRST)


@pytest.fixture(scope="module")
def exchange(minutes):
    with ReplayExchange(minutes, speed=0) as running:
        yield running


@pytest.fixture
def frozen(exchange):
    """The module's exchange, its clock put back to the end of the file after the test."""
    yield exchange
    set_clock(exchange.base_url, ms(FIRST) + DAYS * DAY)


def klines(exchange: ReplayExchange, interval: str, path: str = "klines", **params) -> list[list]:
    query = "".join(f"&{name}={value}" for name, value in params.items())
    status, _, body = get(f"{exchange.base_url}/api/v3/{path}?symbol=BTCUSDT&interval={interval}{query}")
    assert status == 200, body
    return body


def every_kline(exchange: ReplayExchange, interval: str) -> list[list]:
    """All of the file's klines at ``interval``, paged the way clients page: from the open time
    after the last row."""
    rows, start = [], 0
    while page := klines(exchange, interval, startTime=start, limit=1000):
        rows += page
        start = page[-1][0] + 1
    return rows


def sparse(*moments: str, closes: list[float] | None = None) -> pd.DataFrame:
    """Hand-written minutes at ``moments`` (minute_candles: open at the previous close, a
    one-wide wick each side, volume 2)."""
    start = minute_candles.START
    offsets = [int((pd.Timestamp(moment) - start) / pd.Timedelta(minutes=1)) for moment in moments]
    return minute_candles.candles(offsets, closes)


# --- every interval, as pandas aggregates the same minutes ---------------------------------


@pytest.mark.parametrize("interval", list(RULES))
def test_every_interval_is_the_aggregation_of_the_minute_file(exchange, minutes, interval):
    assert_klines_match(every_kline(exchange, interval), resampled(minutes, interval))


def test_the_one_minute_klines_are_the_file_itself(exchange, minutes):
    rows = every_kline(exchange, "1m")
    assert [row[0] for row in rows] == (minutes["open_time"].astype("int64") // 1_000_000).tolist()
    assert [row[4] for row in rows] == [f"{close:.8f}" for close in minutes["close"]]


# --- where buckets open ----------------------------------------------------------------------


def test_a_1w_candle_opens_on_monday_0000_utc_and_closes_a_millisecond_before_the_next():
    week = sparse("2024-03-01T10:00Z", "2024-03-03T23:59Z", "2024-03-04T00:00Z", "2024-03-12T08:30Z")
    with ReplayExchange(week, speed=0) as exchange:
        rows = klines(exchange, "1w")
    assert [row[0] for row in rows] == [ms("2024-02-26"), ms("2024-03-04"), ms("2024-03-11")]
    assert [row[6] for row in rows] == [ms("2024-03-04") - 1, ms("2024-03-11") - 1, ms("2024-03-18") - 1]
    assert [row[5] for row in rows] == ["4.00000000", "2.00000000", "2.00000000"]  # two minutes, then one each


def test_a_1M_candle_opens_on_the_first_and_february_2024_has_29_days():
    months = sparse("2024-01-31T23:59Z", "2024-02-01T00:00Z", "2024-02-29T23:59Z", "2024-03-01T00:00Z")
    with ReplayExchange(months, speed=0) as exchange:
        rows = klines(exchange, "1M")
    assert [row[0] for row in rows] == [ms("2024-01-01"), ms("2024-02-01"), ms("2024-03-01")]
    assert [row[6] for row in rows] == [ms("2024-02-01") - 1, ms("2024-03-01") - 1, ms("2024-04-01") - 1]
    assert [row[5] for row in rows] == ["2.00000000", "4.00000000", "2.00000000"]


def test_a_3d_candle_opens_on_a_multiple_of_three_days_since_the_epoch():
    # 2024-03-01 is day 19,783 since the epoch: its 3d candle opened on day 19,782, 2024-02-29.
    days = sparse("2024-03-01T12:00Z", "2024-03-02T23:59Z", "2024-03-03T00:00Z")
    with ReplayExchange(days, speed=0) as exchange:
        rows = klines(exchange, "3d")
    assert [row[0] for row in rows] == [ms("2024-02-29"), ms("2024-03-03")]
    assert all(row[0] % (3 * DAY) == 0 for row in rows)
    assert rows[0][6] == ms("2024-03-03") - 1


def test_a_candle_is_first_open_highest_high_lowest_low_last_close_and_summed_volume():
    hour = sparse("2024-03-01T05:00Z", "2024-03-01T05:17Z", "2024-03-01T05:59Z", closes=[100, 90, 104])
    with ReplayExchange(hour, speed=0) as exchange:
        (row,) = klines(exchange, "1h")
    # minute_candles: the opens are 100 (the first close), 100, 90; wicks one wide.
    assert row[:7] == [ms("2024-03-01T05:00Z"), "100.00000000", "105.00000000", "89.00000000", "104.00000000"] + [
        "6.00000000",
        ms("2024-03-01T06:00Z") - 1,
    ]


def test_an_hour_without_minutes_in_the_file_is_no_candle():
    hours = sparse("2024-03-01T05:30Z", "2024-03-01T08:10Z")
    with ReplayExchange(hours, speed=0) as exchange:
        assert [row[0] for row in klines(exchange, "1h")] == [ms("2024-03-01T05:00Z"), ms("2024-03-01T08:00Z")]


# --- the replay clock ------------------------------------------------------------------------


def test_the_current_hour_is_served_up_to_the_replay_clock(frozen, minutes):
    hour = ms("2024-02-20T13:00Z")
    now = hour + 30 * MINUTE + 15_000  # a quarter into the hour's 31st minute
    set_clock(frozen.base_url, now)
    closed, current = klines(frozen, "1h", limit=2)

    times = minutes["open_time"].astype("int64") // 1_000_000
    done = minutes[(times >= hour) & (times < hour + 30 * MINUTE)]
    forming = minutes[times == hour + 30 * MINUTE].iloc[0]
    partial_close = forming["open"] + 0.25 * (forming["close"] - forming["open"])
    assert closed[0] == hour - HOUR and closed[6] == hour - 1
    assert current[0] == hour and current[6] == hour + HOUR - 1 > now
    assert float(current[1]) == done["open"].iloc[0]
    assert float(current[4]) == pytest.approx(partial_close)
    assert float(current[2]) == max(done["high"].max(), forming["open"], partial_close)
    assert float(current[5]) == pytest.approx(done["volume"].sum() + 0.25 * forming["volume"], abs=1e-8)
    assert current[8] == int(done["trades"].sum() + int(0.25 * forming["trades"]))


def test_an_interval_opens_with_its_first_minute_and_not_before(frozen, minutes):
    day = ms("2024-02-21T00:00Z")
    set_clock(frozen.base_url, day - 1)
    assert klines(frozen, "1d", limit=1)[0][0] == day - DAY
    set_clock(frozen.base_url, day)
    (today,) = klines(frozen, "1d", limit=1)
    first = minutes[minutes["open_time"] == pd.Timestamp(day, unit="ms", tz="UTC")].iloc[0]
    assert today[0] == day and float(today[1]) == float(today[4]) == first["open"]
    assert today[5] == "0.00000000"  # no part of the day has passed yet


def test_the_current_week_and_month_are_partial_at_the_end_of_the_file(exchange, minutes):
    # The replay starts when the last minute closes, 2024-03-02T00:00Z, a Saturday.
    (week,) = klines(exchange, "1w", limit=1)
    (month,) = klines(exchange, "1M", limit=1)
    in_week = minutes[minutes["open_time"] >= pd.Timestamp("2024-02-26", tz="UTC")]
    assert week[0] == ms("2024-02-26") and week[6] == ms("2024-03-04") - 1
    assert float(week[5]) == pytest.approx(in_week["volume"].sum(), rel=1e-12)
    assert month[0] == ms("2024-03-01") and float(month[4]) == minutes["close"].iloc[-1]


# --- the request parameters ------------------------------------------------------------------


def test_a_bucket_is_included_when_its_open_time_is_within_start_and_end_time(exchange):
    day = ms("2024-02-10")
    assert [row[0] for row in klines(exchange, "1d", startTime=day, endTime=day)] == [day]
    assert [row[0] for row in klines(exchange, "1d", startTime=day + 1, endTime=day + DAY)] == [day + DAY]
    assert klines(exchange, "1d", startTime=day + 1, endTime=day + DAY - 1) == []


def test_without_start_time_the_latest_limit_candles_end_at_end_time(exchange):
    rows = klines(exchange, "4h", endTime=ms("2024-02-10T09:00Z"), limit=3)
    assert [row[0] for row in rows] == [ms("2024-02-10T00:00Z"), ms("2024-02-10T04:00Z"), ms("2024-02-10T08:00Z")]


def test_limit_defaults_to_500_and_refuses_more_than_1000(exchange):
    assert len(klines(exchange, "3m", startTime=0)) == 500
    status, _, body = get(f"{exchange.base_url}/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1001")
    assert (status, body["code"]) == (400, -1130)


def test_ui_klines_answer_the_rows_of_klines(exchange):
    for interval in ("1m", "15m", "1w"):
        assert klines(exchange, interval, "uiKlines", limit=20) == klines(exchange, interval, limit=20)


def test_an_interval_finer_than_the_file_is_invalid_and_coarser_ones_are_served():
    hours = minute_candles.candles([0, 60, 120, 180, 240], interval="1h")
    with ReplayExchange(hours, interval="1h", speed=0) as exchange:
        url = f"{exchange.base_url}/api/v3/klines?symbol=BTCUSDT&interval="
        assert get(url + "30m")[::2] == (400, {"code": -1120, "msg": "Invalid interval."})
        assert [row[0] for row in get(url + "4h")[2]] == [ms("2024-03-01T00:00Z"), ms("2024-03-01T04:00Z")]
        (day,) = get(url + "1d")[2]
        assert day[5] == "10.00000000" and day[8] == 0


def test_a_time_zone_other_than_utc_is_refused_naming_the_parameter(exchange):
    url = f"{exchange.base_url}/api/v3/klines?symbol=BTCUSDT&limit=1&interval="
    status, _, body = get(url + "1d&timeZone=8")
    assert status == 400 and body["code"] == -1130 and "'timeZone'" in body["msg"]
    assert get(url + "1d&timeZone=0")[0] == get(url + "1d&timeZone=%2B00:00")[0] == 200
    assert get(url + "1m&timeZone=8")[0] == 200  # minutes are the same in every time zone


def test_an_overlap_fault_starts_an_aggregated_page_whole_candles_early(minutes):
    with ReplayExchange(minutes, speed=0, faults=[Fault("klines", "overlap:2")]) as exchange:
        rows = klines(exchange, "1d", startTime=ms("2024-02-10T06:00Z"), limit=3)
    assert [row[0] for row in rows] == [ms("2024-02-09"), ms("2024-02-10"), ms("2024-02-11")]
