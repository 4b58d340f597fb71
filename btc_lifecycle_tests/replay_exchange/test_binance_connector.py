"""Binance's own Python connector (binance-connector) and ccxt, as clients of the replay exchange."""

from __future__ import annotations

import pandas as pd
import pytest
from binance.error import ClientError
from binance.spot import Spot

from btc_lifecycle.replay_exchange import ReplayExchange, replay_binance_client
from btc_lifecycle_tests.replay_exchange.aggregation import (
    assert_klines_match,
    get,
    minutes_with_extras,
    resampled,
)

FIRST = "2024-02-26T00:00:00Z"  # a Monday; four days, across February's leap day
START_MS = int(pd.Timestamp(FIRST).value // 1_000_000)
DAYS = 4


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    return minutes_with_extras(DAYS * 1440, FIRST, seed=13)


@pytest.fixture(scope="module")
def exchange(minutes):
    with ReplayExchange(minutes, speed=0) as running:
        yield running


@pytest.fixture(scope="module")
def spot(exchange) -> Spot:
    return Spot(base_url=exchange.base_url, timeout=10)


def every_kline(spot: Spot, interval: str, method: str = "klines") -> list[list]:
    rows, start = [], START_MS
    while page := getattr(spot, method)("BTCUSDT", interval, startTime=start, limit=1000):
        rows += page
        start = page[-1][0] + 1
    return rows


def test_the_connector_reads_the_server_time_and_the_market(spot):
    assert spot.time() == {"serverTime": START_MS + DAYS * 86_400_000}
    assert spot.exchange_info(symbol="BTCUSDT")["symbols"][0]["quoteAsset"] == "USDT"


def test_the_connector_gets_the_minute_file_as_1m_klines(spot, minutes):
    rows = every_kline(spot, "1m")
    assert [row[0] for row in rows] == (minutes["open_time"].astype("int64") // 1_000_000).tolist()
    assert [row[4] for row in rows] == [f"{close:.8f}" for close in minutes["close"]]
    assert [row[8] for row in rows] == minutes["trades"].astype("int64").tolist()


@pytest.mark.parametrize("interval", ["5m", "1h", "1d"])
def test_the_connector_gets_klines_at_coarser_intervals_as_pandas_aggregates_them(spot, minutes, interval):
    assert_klines_match(every_kline(spot, interval), resampled(minutes, interval))


def test_the_connector_gets_ui_klines_with_the_rows_of_klines(spot, minutes):
    assert every_kline(spot, "1h", "ui_klines") == every_kline(spot, "1h")
    assert_klines_match(every_kline(spot, "1d", "ui_klines"), resampled(minutes, "1d"))


def test_the_connector_reads_the_tickers_at_the_replay_clock(spot, minutes):
    last = f"{minutes['close'].iloc[-1]:.8f}"
    assert spot.ticker_price("BTCUSDT") == {"symbol": "BTCUSDT", "price": last}
    assert spot.ticker_price(symbols=["BTCUSDT"]) == [{"symbol": "BTCUSDT", "price": last}]
    tail = minutes.tail(5)
    average = spot.avg_price("BTCUSDT")
    assert average["mins"] == 5 and average["closeTime"] == START_MS + DAYS * 86_400_000 - 1
    assert float(average["price"]) == pytest.approx(tail["quote_volume"].sum() / tail["volume"].sum(), rel=1e-12)
    stats = spot.ticker_24hr("BTCUSDT")
    day = minutes.tail(1440)
    assert stats["lastPrice"] == last and stats["openPrice"] == f"{day['open'].iloc[0]:.8f}"
    assert stats["count"] == day["trades"].sum()
    assert spot.ticker_24hr(symbols=["BTCUSDT"], type="MINI")[0]["quoteVolume"] == stats["quoteVolume"]


@pytest.mark.parametrize(
    "call, status, code",
    [
        (lambda spot: spot.klines("ETHUSDT", "1h"), 400, -1121),
        (lambda spot: spot.ticker_price("ETHUSDT"), 400, -1121),
        (lambda spot: spot.avg_price("ETHUSDT"), 400, -1121),
        (lambda spot: spot.klines("BTCUSDT", "1s"), 400, -1120),
        (lambda spot: spot.ui_klines("BTCUSDT", "2d"), 400, -1120),
        (lambda spot: spot.klines("BTCUSDT", "1h", limit=5000), 400, -1130),
        (lambda spot: spot.depth("BTCUSDT"), 404, -1020),
    ],
)
def test_the_connector_raises_client_errors_with_binance_codes(spot, call, status, code):
    with pytest.raises(ClientError) as error:
        call(spot)
    assert (error.value.status_code, error.value.error_code) == (status, code)


def test_an_unknown_path_answers_raw_json_not_an_html_page(exchange):
    status, kind, body = get(exchange.base_url + "/api/v3/noSuchEndpoint?symbol=BTCUSDT")
    assert (status, kind) == (404, "application/json;charset=UTF-8")
    assert body == {
        "code": -1020,
        "msg": "This operation is not supported: GET /api/v3/noSuchEndpoint is not served here.",
    }


def test_ccxt_fetches_hourly_candles_as_pandas_aggregates_the_minutes(exchange, minutes):
    client = replay_binance_client(exchange.base_url, enableRateLimit=False)
    rows = client.fetch_ohlcv("BTC/USDT", "1h", since=START_MS, limit=1000)
    hours = resampled(minutes, "1h")
    assert len(rows) == DAYS * 24
    assert [row[0] for row in rows] == hours["open_ms"].tolist()
    for position, name in enumerate(["open", "high", "low", "close"], start=1):
        assert [row[position] for row in rows] == [float(f"{price:.8f}") for price in hours[name]], name
    assert [row[5] for row in rows] == pytest.approx(hours["volume"].tolist(), rel=1e-11, abs=1e-8)
