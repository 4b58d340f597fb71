"""Specifications of the replay exchange, exercised with the real ccxt Binance client."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import ccxt
import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.adapters.exchange import point_ccxt_at
from btc_lifecycle.domain.candles import complete_candle_frame
from btc_lifecycle.replay_exchange import (
    Fault,
    ReplayClock,
    ReplayExchange,
    parse_fault,
    replay_binance_client,
)
from btc_lifecycle.replay_exchange.__main__ import main as replay_main
from btc_lifecycle.replay_exchange.__main__ import parse_arguments

START_MS = 1_677_628_800_000  # 2023-03-01T00:00:00Z
MINUTE = 60_000
CANDLES = 2_500
REPO = Path(__file__).resolve().parents[2]


def sample_candles(count: int = CANDLES, seed: int = 11) -> pd.DataFrame:
    """A seeded random walk of consistent minute candles, without Binance's extras."""
    rng = np.random.default_rng(seed)
    close = np.round(23_000 * np.exp(np.cumsum(rng.normal(0, 0.001, count))), 2)
    open_ = np.concatenate([[23_000.0], close[:-1]])
    frame = pd.DataFrame(
        {
            "open_time": pd.to_datetime(START_MS + MINUTE * np.arange(count), unit="ms", utc=True),
            "open": open_,
            "high": np.round(np.maximum(open_, close) + rng.uniform(0, 5, count), 2),
            "low": np.round(np.minimum(open_, close) - rng.uniform(0, 5, count), 2),
            "close": close,
            "volume": np.round(rng.uniform(0.1, 3, count), 6),
        }
    )
    return complete_candle_frame(frame, "1m")


class FakeWall:
    """A wall clock that only moves when the test says so."""

    def __init__(self) -> None:
        self.seconds = 1_000.0

    def __call__(self) -> float:
        return self.seconds


def get(url: str) -> tuple[int, dict, object]:
    """Status, headers and parsed JSON (or raw text) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            status, headers, body = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, dict(error.headers), error.read()
    try:
        return status, headers, json.loads(body)
    except ValueError:
        return status, headers, body.decode()


def post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return sample_candles()


@pytest.fixture
def exchange(candles):
    with ReplayExchange(candles, speed=0) as running:
        yield running


@pytest.fixture
def client(exchange):
    return replay_binance_client(exchange.base_url, enableRateLimit=False)


def klines_url(exchange: ReplayExchange) -> str:
    return f"{exchange.base_url}/api/v3/klines?symbol=BTCUSDT&interval=1m"


def open_ms(rows: list[list]) -> list[int]:
    return [int(row[0]) for row in rows]


# --- the replay clock ----------------------------------------------------------------------


def test_clock_runs_at_speed_replay_seconds_per_wall_second():
    wall = FakeWall()
    clock = ReplayClock(START_MS, speed=60, wall=wall)
    wall.seconds += 1.5
    assert clock.now_ms() == START_MS + 90_000


def test_clock_at_speed_zero_is_frozen():
    wall = FakeWall()
    clock = ReplayClock(START_MS, speed=0, wall=wall)
    wall.seconds += 3_600
    assert clock.now_ms() == START_MS


def test_clock_advance_and_set_now_keep_running_at_the_same_speed():
    wall = FakeWall()
    clock = ReplayClock(START_MS, speed=2, wall=wall)
    assert clock.advance(MINUTE) == START_MS + MINUTE
    wall.seconds += 10
    assert clock.now_ms() == START_MS + MINUTE + 20_000
    clock.set_now(START_MS)
    wall.seconds += 1
    assert clock.now_ms() == START_MS + 2_000


def test_replay_starts_at_the_close_of_the_last_candle_so_all_candles_are_closed(exchange, client):
    last_open = START_MS + (CANDLES - 1) * MINUTE
    assert client.fetch_time() == last_open + MINUTE
    rows = client.publicGetKlines({"symbol": "BTCUSDT", "interval": "1m", "limit": 1})
    assert int(rows[0][0]) == last_open and int(rows[0][6]) < client.fetch_time()


def test_replay_start_can_be_chosen(candles):
    with ReplayExchange(candles, start="2023-03-01T01:00:00Z", speed=0) as exchange:
        assert get(exchange.base_url + "/api/v3/time")[2] == {"serverTime": START_MS + 60 * MINUTE}


def test_server_time_follows_the_injected_clock(candles):
    wall = FakeWall()
    with ReplayExchange(candles, clock=ReplayClock(START_MS, speed=2, wall=wall)) as exchange:
        client = replay_binance_client(exchange.base_url)
        wall.seconds += 30
        assert client.fetch_time() == START_MS + MINUTE


def test_clock_can_be_read_set_and_advanced_over_http(exchange):
    url = exchange.base_url + "/replay/clock"
    assert post(url, {"now": "2023-03-01T00:10:00Z"})["now"] == START_MS + 10 * MINUTE
    assert post(url, {"advance_ms": MINUTE})["now"] == START_MS + 11 * MINUTE
    state = get(url)[2]
    assert state["now"] == START_MS + 11 * MINUTE and state["speed"] == 0
    assert state["symbols"]["BTCUSDT"] == {
        "symbol": "BTC/USDT",
        "first_open": START_MS,
        "last_close": START_MS + CANDLES * MINUTE,
        "candles": CANDLES,
    }


# --- markets and klines through the real ccxt client ---------------------------------------


def test_point_ccxt_at_rewrites_every_api_url_host_and_keeps_paths():
    client = point_ccxt_at(ccxt.binance(), "http://127.0.0.1:9")
    urls = client.urls["api"]
    assert urls["public"] == "http://127.0.0.1:9/api/v3"
    assert urls["fapiPublic"] == "http://127.0.0.1:9/fapi/v1"
    assert all(url.startswith("http://127.0.0.1:9/") for url in urls.values())


def test_ccxt_loads_the_spot_market_from_spot_exchange_info_only(exchange, client):
    market = client.load_markets()["BTC/USDT"]
    assert market["spot"] and market["active"] and market["precision"]["price"] == 0.01
    assert set(exchange.request_counts) == {"/api/v3/exchangeInfo"}


def test_default_ccxt_binance_fails_because_futures_markets_are_not_served(exchange):
    default_client = point_ccxt_at(ccxt.binance(), exchange.base_url)
    with pytest.raises(ccxt.BadRequest, match="-1020"):
        default_client.load_markets()
    assert any(path.startswith(("/fapi", "/dapi")) for path in exchange.request_counts)


def test_ccxt_fetches_every_candle_across_page_boundaries_with_since_and_limit(client, candles):
    since, pages = START_MS, []
    while rows := client.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=1000):
        pages.append(rows)
        since = rows[-1][0] + MINUTE
    fetched = [row for page in pages for row in page]
    assert [len(page) for page in pages] == [1000, 1000, 500]
    assert open_ms(fetched) == list(range(START_MS, START_MS + CANDLES * MINUTE, MINUTE))
    assert [row[4] for row in fetched] == candles["close"].tolist()


def test_klines_start_time_is_inclusive_on_open_time(client):
    rows = client.fetch_ohlcv("BTC/USDT", "1m", since=START_MS + 5 * MINUTE, limit=3)
    assert open_ms(rows) == [START_MS + 5 * MINUTE, START_MS + 6 * MINUTE, START_MS + 7 * MINUTE]
    between = client.fetch_ohlcv("BTC/USDT", "1m", since=START_MS + 5 * MINUTE + 1, limit=1)
    assert open_ms(between) == [START_MS + 6 * MINUTE]


def test_klines_end_time_is_inclusive_and_bounds_the_page(client):
    rows = client.fetch_ohlcv("BTC/USDT", "1m", since=START_MS, params={"until": START_MS + 2 * MINUTE})
    assert open_ms(rows) == [START_MS, START_MS + MINUTE, START_MS + 2 * MINUTE]


def test_klines_without_start_time_returns_most_recent_candles(client):
    rows = client.fetch_ohlcv("BTC/USDT", "1m", limit=3)
    last = START_MS + (CANDLES - 1) * MINUTE
    assert open_ms(rows) == [last - 2 * MINUTE, last - MINUTE, last]


def test_klines_with_only_end_time_returns_the_limit_candles_up_to_it(client):
    rows = client.fetch_ohlcv("BTC/USDT", "1m", limit=2, params={"endTime": START_MS + 9 * MINUTE})
    assert open_ms(rows) == [START_MS + 8 * MINUTE, START_MS + 9 * MINUTE]


def test_klines_limit_defaults_to_500(exchange):
    url = f"{exchange.base_url}/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime={START_MS}"
    assert len(get(url)[2]) == 500


def test_klines_rows_have_binance_types_and_derived_extras_when_the_file_lacks_them(exchange):
    (row,) = get(f"{klines_url(exchange)}&startTime={START_MS}&limit=1")[2]
    types = [int, str, str, str, str, str, int, str, int, str, str, str]
    assert [type(value) for value in row] == types
    assert row[6] == START_MS + MINUTE - 1
    assert float(row[7]) == pytest.approx(float(row[5]) * float(row[4]), rel=1e-6)
    assert (row[8], row[9], row[10], row[11]) == (0, "0.00000000", "0.00000000", "0")


def test_only_candles_opened_by_replay_now_are_visible(exchange, client):
    post(exchange.base_url + "/replay/clock", {"now": START_MS + 10 * MINUTE})
    rows = client.fetch_ohlcv("BTC/USDT", "1m", since=START_MS, limit=1000)
    assert open_ms(rows)[-1] == START_MS + 10 * MINUTE and len(rows) == 11


def test_forming_candle_is_partial_and_flagged_by_close_time_after_server_time(exchange, candles):
    post(exchange.base_url + "/replay/clock", {"now": START_MS + 10 * MINUTE + 15_000})
    url = f"{exchange.base_url}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=2"
    closed, forming = get(url)[2]
    server_time = get(exchange.base_url + "/api/v3/time")[2]["serverTime"]
    final = candles.iloc[10]

    assert closed[6] < server_time < forming[6]
    assert float(forming[1]) == final["open"]
    quarter_way = final["open"] + 0.25 * (final["close"] - final["open"])
    assert float(forming[4]) == pytest.approx(quarter_way)
    assert float(forming[5]) == pytest.approx(0.25 * final["volume"], abs=1e-8)
    assert float(forming[4]) != final["close"]


def test_ccxt_client_can_spot_the_forming_candle_by_its_open_time(exchange, client):
    post(exchange.base_url + "/replay/clock", {"now": START_MS + 10 * MINUTE + 15_000})
    last = client.fetch_ohlcv("BTC/USDT", "1m", limit=5)[-1]
    assert last[0] + MINUTE > client.fetch_time()


def test_a_start_time_inside_a_stretch_without_candles_answers_the_candles_after_it(candles):
    quiet = candles.drop(index=range(100, 1_600)).reset_index(drop=True)  # 1,500 minutes, no trade
    with ReplayExchange(quiet, speed=0) as running:
        rows = get(f"{klines_url(running)}&startTime={START_MS + 100 * MINUTE}&limit=3")[2]
    assert open_ms(rows) == [START_MS + minute * MINUTE for minute in (1_600, 1_601, 1_602)]


def test_trades_answers_the_markets_last_trade_by_replay_now(exchange, candles):
    post(exchange.base_url + "/replay/clock", {"now": START_MS + 10 * MINUTE + 15_000})
    (trade,) = get(f"{exchange.base_url}/api/v3/trades?symbol=BTCUSDT&limit=1")[2]
    assert trade["time"] == START_MS + 10 * MINUTE + 15_000  # inside the forming minute
    assert float(trade["price"]) == candles["close"].iloc[10]
    post(exchange.base_url + "/replay/clock", {"now": START_MS - MINUTE})
    assert get(f"{exchange.base_url}/api/v3/trades?symbol=BTCUSDT")[2] == []
    assert get(f"{exchange.base_url}/api/v3/trades?symbol=ETHUSDT")[:3:2] == (
        400,
        {"code": -1121, "msg": "Invalid symbol."},
    )


def test_trades_of_a_market_that_went_quiet_end_with_its_last_candle(candles):
    last_open = START_MS + (len(candles) - 1) * MINUTE
    with ReplayExchange(candles, start=last_open + 45 * MINUTE, speed=0) as running:
        (trade,) = get(f"{running.base_url}/api/v3/trades?symbol=BTCUSDT&limit=1")[2]
    assert trade["time"] == last_open + MINUTE - 1


# --- Binance errors as ccxt sees them ------------------------------------------------------


def test_unknown_symbol_is_invalid_symbol_and_ccxt_raises_bad_symbol(exchange, client):
    status, _, body = get(f"{exchange.base_url}/api/v3/klines?symbol=ETHUSDT&interval=1m")
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    with pytest.raises(ccxt.BadSymbol):
        client.publicGetKlines({"symbol": "ETHUSDT", "interval": "1m"})


@pytest.mark.parametrize("interval", ["1s", "7m"])
def test_interval_the_file_cannot_serve_is_invalid_interval_and_a_bad_request(client, interval):
    with pytest.raises(ccxt.BadRequest, match="-1120"):
        client.publicGetKlines({"symbol": "BTCUSDT", "interval": interval})


@pytest.mark.parametrize("limit", [0, 1001])
def test_limit_out_of_range_is_refused_with_1130(exchange, client, limit):
    status, _, body = get(f"{klines_url(exchange)}&limit={limit}")
    assert status == 400 and body["code"] == -1130
    with pytest.raises(ccxt.BadRequest):
        client.publicGetKlines({"symbol": "BTCUSDT", "interval": "1m", "limit": limit})


def test_missing_mandatory_parameter_is_refused_with_1102(exchange):
    status, _, body = get(f"{exchange.base_url}/api/v3/klines?symbol=BTCUSDT")
    assert status == 400 and body["code"] == -1102 and "'interval'" in body["msg"]


def test_non_integer_start_time_is_refused_with_1100(exchange, client):
    status, _, body = get(f"{klines_url(exchange)}&startTime=-5")
    assert status == 400 and body["code"] == -1100 and "'startTime'" in body["msg"]


def test_unknown_path_is_404(exchange):
    assert get(exchange.base_url + "/api/v3/depth")[0] == 404


def test_ping_answers_an_empty_object(exchange):
    assert get(exchange.base_url + "/api/v3/ping")[:3:2] == (200, {})


# --- the fault plan ------------------------------------------------------------------------


def test_fault_syntax_reads_endpoint_kind_count_and_after():
    assert parse_fault("klines:429:2") == Fault("klines", "status:429", count=2)
    assert parse_fault("klines:429=30") == Fault("klines", "status:429", retry_after_s=30)
    assert parse_fault("*:503:1:5") == Fault("*", "status:503", count=1, after=5)
    assert parse_fault("klines:delay=2.5:3") == Fault("klines", "delay:2.5", count=3)
    assert parse_fault("klines:truncate") == Fault("klines", "truncate")
    with pytest.raises(ValueError, match="klines:404"):
        parse_fault("klines:404")


def test_429_with_retry_after_surfaces_as_ccxt_ddos_protection_with_the_header(candles):
    faults = [Fault("klines", "status:429", count=2, retry_after_s=7)]
    with ReplayExchange(candles, speed=0, faults=faults) as exchange:
        client = replay_binance_client(exchange.base_url, enableRateLimit=False)
        for _ in range(2):
            with pytest.raises(ccxt.DDoSProtection):
                client.fetch_ohlcv("BTC/USDT", "1m", limit=1)
            assert client.last_response_headers["Retry-After"] == "7"
        assert len(client.fetch_ohlcv("BTC/USDT", "1m", limit=1)) == 1
        assert exchange.request_counts["/api/v3/klines"] == 3


def test_418_ban_surfaces_as_ccxt_ddos_protection(candles):
    with ReplayExchange(candles, speed=0, faults=[Fault("time", "status:418")]) as exchange:
        client = replay_binance_client(exchange.base_url, enableRateLimit=False)
        with pytest.raises(ccxt.DDoSProtection, match="418"):
            client.fetch_time()


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_surface_as_ccxt_exchange_not_available(candles, status):
    with ReplayExchange(candles, speed=0, faults=[Fault("klines", f"status:{status}")]) as exchange:
        client = replay_binance_client(exchange.base_url, enableRateLimit=False)
        with pytest.raises(ccxt.ExchangeNotAvailable):
            client.fetch_ohlcv("BTC/USDT", "1m", limit=1)


def test_fault_after_lets_the_first_matching_requests_through(candles):
    with ReplayExchange(candles, speed=0, faults=[parse_fault("*:500:1:2")]) as exchange:
        statuses = [get(exchange.base_url + "/api/v3/ping")[0] for _ in range(4)]
    assert statuses == [200, 200, 500, 200]


def test_truncated_body_is_not_valid_json(candles):
    with ReplayExchange(candles, speed=0, faults=[Fault("klines", "truncate")]) as exchange:
        status, _, body = get(f"{exchange.base_url}/api/v3/klines?symbol=BTCUSDT&interval=1m")
    # ccxt 4.5 does not raise on this: it parses the text as garbage rows. Callers must check.
    assert status == 200 and isinstance(body, str) and body.startswith("[[")


def test_delay_longer_than_the_client_timeout_is_a_ccxt_request_timeout(candles):
    with ReplayExchange(candles, speed=0, faults=[Fault("time", "delay:5")]) as exchange:
        client = replay_binance_client(exchange.base_url, enableRateLimit=False, timeout=200)
        with pytest.raises(ccxt.RequestTimeout):
            client.fetch_time()


def test_a_held_request_is_answered_once_released_and_only_then(exchange):
    """A hold fault: the request waits, visibly, until a release; later requests pass."""
    post(exchange.base_url + "/replay/faults", {"add": ["ping:hold"]})
    answers: list[int] = []
    waiting = threading.Thread(target=lambda: answers.append(get(exchange.base_url + "/api/v3/ping")[0]))
    waiting.start()
    deadline = time.monotonic() + 60
    while get(exchange.base_url + "/replay/faults")[2]["held"] != 1:
        assert time.monotonic() < deadline, "the ping was never held"
        time.sleep(0.02)
    assert answers == [] and waiting.is_alive()
    assert get(exchange.base_url + "/api/v3/time")[0] == 200  # other endpoints answer meanwhile
    assert post(exchange.base_url + "/replay/faults", {"release": True})["faults"][0]["kind"] == "hold"
    waiting.join(timeout=60)
    assert answers == [200]
    assert get(exchange.base_url + "/replay/faults")[2]["held"] == 0
    assert get(exchange.base_url + "/api/v3/ping")[0] == 200  # the fault held one request


def test_stopping_the_exchange_lets_go_of_a_held_request(candles):
    exchange = ReplayExchange(candles, speed=0, faults=[Fault("ping", "hold")])
    exchange.start()
    outcome: list[object] = []

    def ask() -> None:
        try:
            outcome.append(get(exchange.base_url + "/api/v3/ping")[0])
        except (urllib.error.URLError, ConnectionError, OSError) as error:
            outcome.append(type(error).__name__)

    waiting = threading.Thread(target=ask)
    waiting.start()
    deadline = time.monotonic() + 60
    while exchange.held != 1:
        assert time.monotonic() < deadline, "the ping was never held"
        time.sleep(0.02)
    exchange.stop()
    waiting.join(timeout=60)
    assert not waiting.is_alive() and len(outcome) == 1 and outcome != [200]


def test_faults_can_be_added_over_http(exchange):
    post(exchange.base_url + "/replay/faults", {"add": ["ping:503"]})
    assert get(exchange.base_url + "/api/v3/ping")[0] == 503
    assert get(exchange.base_url + "/api/v3/ping")[0] == 200


# --- the command line ----------------------------------------------------------------------


def test_cli_prints_its_url_writes_the_ready_file_and_stops_on_sigterm(tmp_path, candles):
    path = tmp_path / "candles.csv"
    columns = ["open_time", "open", "high", "low", "close", "volume"]
    candles.head(100)[columns].to_csv(path, index=False)
    ready = tmp_path / "ready.url"
    command = [
        sys.executable,
        "-m",
        "btc_lifecycle.replay_exchange",
        "--candles",
        str(path),
        "--port",
        "0",
        "--speed",
        "0",
        "--ready-file",
        str(ready),
        "--fault",
        "klines:429:1",
    ]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        match = re.search(r"\(100 candles, .*\) at (http://127\.0\.0\.1:\d+)$", line.strip())
        assert match, line
        url = match.group(1)
        assert ready.read_text().strip() == url
        klines = f"{url}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1"
        assert [get(klines)[0], get(klines)[0]] == [429, 200]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0


@pytest.mark.parametrize(
    "spec, fault",
    [
        ("klines:429:2", Fault("klines", "status:429", count=2)),
        ("klines:429=30", Fault("klines", "status:429", retry_after_s=30)),
        ("*:503:1:5", Fault("*", "status:503", count=1, after=5)),
        ("/api/v3/klines:418", Fault("/api/v3/klines", "status:418")),
        ("klines:delay=2:1", Fault("klines", "delay:2", count=1)),
        ("klines:overlap=5", Fault("klines", "overlap:5")),
        ("klines:empty:1:3", Fault("klines", "empty", count=1, after=3)),
        ("klines:shuffle", Fault("klines", "shuffle")),
        ("klines:truncate", Fault("klines", "truncate")),
        ("klines:hold:1:5", Fault("klines", "hold", count=1, after=5)),
    ],
)
def test_cli_fault_flag_accepts_every_documented_form(spec, fault):
    assert parse_arguments(["--candles", "c.csv", "--fault", spec]).fault == [fault]


def test_cli_fault_flag_repeats_and_keeps_the_order():
    arguments = parse_arguments(["--candles", "c.csv", "--fault", "klines:429", "--fault", "*:500:1:2"])
    assert arguments.fault == [Fault("klines", "status:429"), Fault("*", "status:500", after=2)]


def test_cli_without_fault_flags_injects_no_fault():
    assert parse_arguments(["--candles", "c.csv"]).fault == []


@pytest.mark.parametrize(
    "spec, reason",
    [
        ("klines", "expected ENDPOINT:KIND[:COUNT[:AFTER]]"),
        (":429", "expected ENDPOINT:KIND[:COUNT[:AFTER]]"),
        ("klines:429:1:2:3", "expected ENDPOINT:KIND[:COUNT[:AFTER]]"),
        ("klines:404", "is not one of status:"),
        ("klines:teapot", "invalid literal"),
        ("klines:429:zero", "invalid literal"),
        ("klines:429:0", "count must be >= 1"),
        ("klines:delay=soon", "is not one of"),
        ("klines:overlap=0", "is not one of"),
        ("klines:empty=3", "invalid literal"),
    ],
)
def test_cli_malformed_fault_exits_2_naming_the_spec_and_the_reason(spec, reason, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_arguments(["--candles", "c.csv", "--fault", spec])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert f"argument --fault: fault {spec!r}" in error and reason in error


def test_cli_malformed_start_exits_2_saying_it_is_not_iso_8601(capsys):
    with pytest.raises(SystemExit):
        parse_arguments(["--candles", "c.csv", "--start", "yesterday"])
    assert "'yesterday' is not an ISO 8601 time" in capsys.readouterr().err


def test_cli_with_a_missing_candle_file_answers_one_line_and_exit_code_2(tmp_path, capsys):
    assert replay_main(["--candles", str(tmp_path / "missing.csv")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("replay exchange: ") and error.count("\n") == 1
