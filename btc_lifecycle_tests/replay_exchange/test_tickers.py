"""Specifications of the replay exchange's tickers at the replay clock, and its unknown paths."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pandas as pd
import pytest

from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle_tests.replay_exchange.aggregation import get, minutes_with_extras, set_clock

MINUTE, DAY = 60_000, 86_400_000
FIRST = "2024-02-27T00:00:00Z"
START_MS = int(pd.Timestamp(FIRST).value // 1_000_000)
DAYS = 3
FULL_FIELDS = [
    "symbol",
    "priceChange",
    "priceChangePercent",
    "weightedAvgPrice",
    "prevClosePrice",
    "lastPrice",
    "lastQty",
    "bidPrice",
    "bidQty",
    "askPrice",
    "askQty",
    "openPrice",
    "highPrice",
    "lowPrice",
    "volume",
    "quoteVolume",
    "openTime",
    "closeTime",
    "firstId",
    "lastId",
    "count",
]


def text(value: float) -> str:
    return f"{value:.8f}"


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    return minutes_with_extras(DAYS * 1440, FIRST, seed=8)


@pytest.fixture(scope="module")
def two_markets(minutes) -> dict[str, pd.DataFrame]:
    return {"BTCUSDT": minutes, "ETHUSDT": minutes_with_extras(DAYS * 1440, FIRST, seed=9)}


@pytest.fixture(scope="module")
def exchange(two_markets):
    with ReplayExchange(two_markets, speed=0) as running:
        yield running


@pytest.fixture
def at(exchange):
    """Set the module's exchange's clock; back at the end of the file after the test."""
    yield lambda now: set_clock(exchange.base_url, now)
    set_clock(exchange.base_url, START_MS + DAYS * DAY)


def ticker(exchange: ReplayExchange, path: str, query: str = "") -> object:
    status, kind, body = get(f"{exchange.base_url}/api/v3/{path}{query}")
    assert (status, kind) == (200, "application/json;charset=UTF-8"), body
    return body


def window(minutes: pd.DataFrame, since_ms: int, until_ms: int) -> pd.DataFrame:
    times = minutes["open_time"].astype("int64") // 1_000_000
    return minutes[(times >= since_ms) & (times < until_ms)]


# --- the last price --------------------------------------------------------------------------


def test_the_price_ticker_is_the_close_the_klines_show_now(exchange, at, minutes):
    assert ticker(exchange, "ticker/price", "?symbol=BTCUSDT") == {
        "symbol": "BTCUSDT",
        "price": text(minutes["close"].iloc[-1]),
    }
    at(START_MS + 100 * MINUTE + 30_000)  # halfway through minute 100
    (forming,) = ticker(exchange, "klines", "?symbol=BTCUSDT&interval=1m&limit=1")
    assert ticker(exchange, "ticker/price", "?symbol=BTCUSDT")["price"] == forming[4]
    minute = minutes.iloc[100]
    assert forming[4] == text(minute["open"] + 0.5 * (minute["close"] - minute["open"]))


def test_the_price_ticker_without_symbol_lists_every_market_and_symbols_picks_some(exchange, two_markets):
    everything = ticker(exchange, "ticker/price")
    assert [entry["symbol"] for entry in everything] == ["BTCUSDT", "ETHUSDT"]
    assert everything[1]["price"] == text(two_markets["ETHUSDT"]["close"].iloc[-1])
    picked = ticker(exchange, "ticker/price", '?symbols=["ETHUSDT","BTCUSDT"]'.replace('"', "%22"))
    assert [entry["symbol"] for entry in picked] == ["ETHUSDT", "BTCUSDT"]


def test_before_the_first_candle_a_market_has_no_price_and_no_trades(exchange, at):
    at(START_MS - MINUTE)
    assert ticker(exchange, "ticker/price", "?symbol=BTCUSDT")["price"] == "0.00000000"
    stats = ticker(exchange, "ticker/24hr", "?symbol=BTCUSDT")
    assert (stats["firstId"], stats["lastId"], stats["count"], stats["volume"]) == (-1, -1, 0, "0.00000000")
    assert ticker(exchange, "avgPrice", "?symbol=BTCUSDT") == {"mins": 5, "price": "0.00000000", "closeTime": 0}


# --- the average price -----------------------------------------------------------------------


def test_the_average_price_is_volume_weighted_over_the_last_five_minutes(exchange, at, minutes):
    now = START_MS + 2_000 * MINUTE  # on a minute: minutes 1,995 to 1,999 have closed
    at(now)
    five = window(minutes, now - 5 * MINUTE, now)
    assert len(five) == 5
    answer = ticker(exchange, "avgPrice", "?symbol=BTCUSDT")
    # Minute 2,000 opens now, empty so far: the last trade time is now, as /trades says.
    assert answer["mins"] == 5 and answer["closeTime"] == now
    assert float(answer["price"]) == pytest.approx(five["quote_volume"].sum() / five["volume"].sum(), rel=1e-12)
    assert answer["price"] != text(five["close"].mean())


def test_without_a_trade_in_five_minutes_the_average_is_the_last_trade_price():
    minutes = minutes_with_extras(30, FIRST)
    quiet = minutes.drop(index=range(10, 30)).reset_index(drop=True)  # the market stops after 10
    with ReplayExchange(quiet, start=START_MS + 25 * MINUTE, speed=0) as exchange:
        answer = ticker(exchange, "avgPrice", "?symbol=BTCUSDT")
    assert answer == {"mins": 5, "price": text(quiet["close"].iloc[9]), "closeTime": START_MS + 10 * MINUTE - 1}


# --- the 24 hours ----------------------------------------------------------------------------


def test_the_24_hour_ticker_rolls_over_the_day_up_to_the_replay_clock(exchange, at, minutes):
    now = START_MS + 2 * DAY + 7 * 60 * MINUTE  # whole minutes: no candle is forming
    at(now)
    stats = ticker(exchange, "ticker/24hr", "?symbol=BTCUSDT")
    day = window(minutes, now - DAY, now)
    before = window(minutes, 0, now - DAY)
    assert list(stats) == FULL_FIELDS
    assert (stats["openTime"], stats["closeTime"]) == (now - DAY, now)
    assert stats["openPrice"] == text(day["open"].iloc[0])
    assert stats["lastPrice"] == text(day["close"].iloc[-1])
    assert stats["prevClosePrice"] == text(before["close"].iloc[-1])
    assert (stats["highPrice"], stats["lowPrice"]) == (text(day["high"].max()), text(day["low"].min()))
    assert float(stats["volume"]) == pytest.approx(day["volume"].sum(), rel=1e-12)
    assert float(stats["quoteVolume"]) == pytest.approx(day["quote_volume"].sum(), rel=1e-12)
    assert float(stats["weightedAvgPrice"]) == pytest.approx(day["quote_volume"].sum() / day["volume"].sum())
    change = day["close"].iloc[-1] - day["open"].iloc[0]
    assert stats["priceChange"] == text(change)
    assert stats["priceChangePercent"] == f"{100 * change / day['open'].iloc[0]:.3f}"
    # Ids are candle positions (as in /trades); the minute opening now is the last, still empty.
    assert (stats["firstId"], stats["lastId"], stats["count"]) == (len(before), len(before) + 1440, day["trades"].sum())


def test_the_24_hour_ticker_says_no_book_and_no_trade_size_rather_than_invent_them(exchange):
    stats = ticker(exchange, "ticker/24hr", "?symbol=BTCUSDT")
    unknown = ("lastQty", "bidPrice", "bidQty", "askPrice", "askQty")
    assert {name: stats[name] for name in unknown} == dict.fromkeys(unknown, "0.00000000")
    assert ticker(exchange, "ticker/bookTicker", "?symbol=BTCUSDT") == {
        "symbol": "BTCUSDT",
        **{name: "0.00000000" for name in ("bidPrice", "bidQty", "askPrice", "askQty")},
    }


def test_the_mini_24_hour_ticker_leaves_out_the_full_fields_and_a_bad_type_is_refused(exchange):
    full = ticker(exchange, "ticker/24hr", "?symbol=ETHUSDT")
    (mini,) = ticker(exchange, "ticker/24hr", "?symbols=%5B%22ETHUSDT%22%5D&type=MINI")
    assert mini == {name: full[name] for name in mini} and "bidPrice" not in mini and len(mini) == 12
    status, _, body = get(f"{exchange.base_url}/api/v3/ticker/24hr?symbol=ETHUSDT&type=HUGE")
    assert (status, body) == (400, {"code": -1139, "msg": "Invalid ticker type."})


# --- bad parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, query, code, named",
    [
        ("ticker/price", "?symbol=DOGEUSDT", -1121, ""),
        ("ticker/24hr", "?symbols=%5B%22BTCUSDT%22,%22DOGEUSDT%22%5D", -1121, ""),
        ("ticker/price", "?symbol=BTCUSDT&symbols=%5B%22BTCUSDT%22%5D", -1101, "'symbols'"),
        ("ticker/24hr", "?symbols=BTCUSDT", -1100, "'symbols'"),
        ("ticker/bookTicker", "?symbols=%5B%5D", -1100, "'symbols'"),
        ("ticker/price", "?symbols=%5B%22BTCUSDT%22,%22BTCUSDT%22%5D", -1151, ""),
        ("avgPrice", "", -1102, "'symbol'"),
        ("avgPrice", "?symbol=DOGEUSDT", -1121, ""),
    ],
)
def test_bad_ticker_parameters_get_binance_errors_naming_the_parameter(exchange, path, query, code, named):
    status, kind, body = get(f"{exchange.base_url}/api/v3/{path}{query}")
    assert (status, kind, body["code"]) == (400, "application/json;charset=UTF-8", code)
    assert named in body["msg"]


# --- what the replay exchange does not serve -------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v3/depth", "/api/v3/ticker", "/fapi/v1/exchangeInfo", "/", "/favicon.ico"])
def test_an_unknown_path_is_a_json_404_naming_it(exchange, path):
    status, kind, body = get(exchange.base_url + path)
    assert (status, kind) == (404, "application/json;charset=UTF-8")
    assert body["code"] == -1020 and f"GET {path} " in body["msg"]


def test_a_post_to_an_unknown_path_is_a_json_404_too(exchange):
    request = urllib.request.Request(exchange.base_url + "/replay/nothing", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 404
    assert json.loads(answer.value.read())["msg"].startswith("This operation is not supported: POST /replay/nothing")
