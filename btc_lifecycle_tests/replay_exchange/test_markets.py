"""Specifications of a replay exchange serving several markets at once, one candle file each, on one
replay clock: every market through the real ccxt client, Binance's archives per market, and the
command line's ``--candles SYMBOL=FILE``."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import ccxt
import pandas as pd
import pytest

from btc_lifecycle.domain.archives import Archive, published_checksum, read_archive
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.replay_exchange import Fault, ReplayExchange, replay_binance_client, write_archive_tree
from btc_lifecycle.replay_exchange.__main__ import main as replay_main
from btc_lifecycle.replay_exchange.__main__ import parse_arguments
from btc_lifecycle.replay_exchange.markets import candle_sources, pair
from btc_lifecycle_tests.conftest import write_generic_csv

REPO = Path(__file__).resolve().parents[2]
MINUTE = 60_000
PRICES = ["open", "high", "low", "close", "volume"]
# BTC/USDT trades two days and a bit from 1 March 2024; BTC/USD stops a day earlier, at the end of
# 1 March: when the replay starts at the end of BTC/USDT's file, BTC/USD is a halted market.
USDT = synthetic_candles(2 * 1440 + 90, start="2024-03-01T00:00:00Z", seed=21)
USD = synthetic_candles(1440, start="2024-03-01T00:00:00Z", seed=22, start_price=31_000.0)
FILES = {"BTC/USDT": USDT, "BTC/USD": USD}


def ms(moment: pd.Timestamp) -> int:
    return int(moment.value // 1_000_000)


def get_bytes(url: str) -> tuple[int, dict, bytes]:
    """Status, headers and body of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get(url: str) -> tuple[int, dict, object]:
    """Status, headers and parsed JSON of a GET, errors included."""
    status, headers, body = get_bytes(url)
    return status, headers, json.loads(body)


def end_of(frame: pd.DataFrame) -> int:
    return ms(frame["open_time"].iloc[-1]) + MINUTE


@pytest.fixture(scope="module")
def exchange():
    with ReplayExchange(FILES, speed=0) as running:
        yield running


@pytest.fixture(scope="module")
def client(exchange):
    return replay_binance_client(exchange.base_url, enableRateLimit=False)


def every_candle(client, symbol: str, timeframe: str = "1m") -> pd.DataFrame:
    """The market's candles, paged through ccxt as a client backfills them."""
    rows, since = [], ms(pd.Timestamp("2024-03-01T00:00:00Z"))
    while page := client.fetch_ohlcv(symbol, timeframe, since=since, limit=1000):
        rows += page
        since = page[-1][0] + 1
    frame = pd.DataFrame(rows, columns=["open_time", *PRICES])
    frame["open_time"] = pd.to_datetime(frame["open_time"], unit="ms", utc=True)
    return frame


# --- markets through the real ccxt client ---------------------------------------------------


def test_ccxt_loads_both_markets_with_their_base_and_quote_assets(client):
    markets = client.load_markets()
    assert sorted(markets) == ["BTC/USD", "BTC/USDT"]
    assert (markets["BTC/USD"]["id"], markets["BTC/USD"]["base"], markets["BTC/USD"]["quote"]) == (
        "BTCUSD",
        "BTC",
        "USD",
    )
    assert markets["BTC/USDT"]["id"] == "BTCUSDT"


@pytest.mark.parametrize("symbol", ["BTC/USDT", "BTC/USD"])
def test_each_markets_klines_through_ccxt_are_its_own_file(client, symbol):
    fetched = every_candle(client, symbol)
    pd.testing.assert_frame_equal(fetched, FILES[symbol][["open_time", *PRICES]].reset_index(drop=True))


def test_each_market_is_served_at_every_interval_from_its_own_minutes(client):
    hours = every_candle(client, "BTC/USD", "1h")
    assert len(hours) == 24
    first_hour = USD.head(60)
    assert hours.iloc[0][PRICES].tolist() == pytest.approx(
        [
            first_hour["open"].iloc[0],
            first_hour["high"].max(),
            first_hour["low"].min(),
            first_hour["close"].iloc[-1],
            first_hour["volume"].sum(),
        ]
    )


def test_exchange_info_lists_every_market_in_the_shape_of_btcusdts(exchange):
    status, _, info = get(f"{exchange.base_url}/api/v3/exchangeInfo")
    assert status == 200
    listed = {entry["symbol"]: entry for entry in info["symbols"]}
    assert sorted(listed) == ["BTCUSD", "BTCUSDT"]
    assert (listed["BTCUSD"]["baseAsset"], listed["BTCUSD"]["quoteAsset"]) == ("BTC", "USD")
    assert listed["BTCUSD"].keys() == listed["BTCUSDT"].keys()
    assert listed["BTCUSD"]["filters"] == listed["BTCUSDT"]["filters"]
    only = get(f"{exchange.base_url}/api/v3/exchangeInfo?symbol=BTCUSD")[2]
    assert [entry["symbol"] for entry in only["symbols"]] == ["BTCUSD"]


@pytest.mark.parametrize(
    "path",
    [
        "klines?symbol=ETHUSD&interval=1m",
        "uiKlines?symbol=ETHUSD&interval=1h",
        "trades?symbol=ETHUSD",
        "ticker/price?symbol=ETHUSD",
        "exchangeInfo?symbol=ETHUSD",
    ],
)
def test_a_symbol_no_file_serves_is_still_invalid_symbol(exchange, path):
    assert get(f"{exchange.base_url}/api/v3/{path}")[::2] == (400, {"code": -1121, "msg": "Invalid symbol."})


def test_ccxt_raises_bad_symbol_for_a_market_no_file_serves(client):
    with pytest.raises(ccxt.BadSymbol):
        client.fetch_ohlcv("ETH/USD", "1m", limit=1)


def test_ticker_price_without_a_symbol_lists_every_market_at_its_last_close(exchange):
    prices = get(f"{exchange.base_url}/api/v3/ticker/price")[2]
    assert prices == [
        {"symbol": "BTCUSDT", "price": f"{USDT['close'].iloc[-1]:.8f}"},
        {"symbol": "BTCUSD", "price": f"{USD['close'].iloc[-1]:.8f}"},
    ]


def test_one_clock_starts_at_the_end_of_the_file_that_ends_last_and_the_other_market_is_halted(exchange, client):
    assert client.fetch_time() == end_of(USDT)
    latest = client.fetch_ohlcv("BTC/USD", "1m", limit=5)
    assert latest[-1][0] == ms(USD["open_time"].iloc[-1])
    (trade,) = get(f"{exchange.base_url}/api/v3/trades?symbol=BTCUSD")[2]
    assert trade["time"] == end_of(USD) - 1
    day = get(f"{exchange.base_url}/api/v3/ticker/24hr?symbol=BTCUSD")[2]
    assert (day["firstId"], day["lastId"], day["volume"]) == (-1, -1, "0.00000000")
    clock = get(f"{exchange.base_url}/replay/clock")[2]
    assert clock["symbols"]["BTCUSD"] == {
        "symbol": "BTC/USD",
        "first_open": ms(USD["open_time"].iloc[0]),
        "last_close": end_of(USD),
        "candles": len(USD),
    }


def test_an_endpoint_fault_hits_the_endpoint_whichever_market_is_asked():
    with ReplayExchange(FILES, speed=0, faults=[Fault("klines", "status:503", count=1)]) as faulty:
        url = f"{faulty.base_url}/api/v3/klines?interval=1m&limit=1&symbol="
        statuses = [get_bytes(url + symbol)[0] for symbol in ("BTCUSD", "BTCUSDT", "BTCUSD")]
        assert statuses == [503, 200, 200]


def test_two_names_of_one_market_are_refused():
    with pytest.raises(ValueError, match="BTC/USDT and BTCUSDT are both Binance's BTCUSDT"):
        ReplayExchange({"BTC/USDT": USDT, "BTCUSDT": USD})


# --- archives per market -------------------------------------------------------------------


def test_the_archive_tree_has_each_markets_zips_with_checksums_of_their_bytes(exchange):
    for symbol, frame in FILES.items():
        each = Archive(pair(symbol).id, "1m", "2024-03-01")
        status, _, data = get_bytes(f"{exchange.base_url}/{each.path}")
        assert status == 200
        checksum = get_bytes(f"{exchange.base_url}/{each.checksum_path}")[2].decode()
        assert published_checksum(checksum, each) == hashlib.sha256(data).hexdigest()
        day = read_archive(data, each)
        pd.testing.assert_frame_equal(day[PRICES], frame[PRICES].head(1440))
    # BTC/USD's file ends with 1 March: it has no archive of 2 March, BTC/USDT has.
    assert get_bytes(f"{exchange.base_url}/{Archive('BTCUSD', '1m', '2024-03-02').path}")[0] == 404
    assert get_bytes(f"{exchange.base_url}/{Archive('BTCUSDT', '1m', '2024-03-02').path}")[0] == 200


def test_write_archive_tree_writes_every_markets_archives_under_its_id(tmp_path):
    written = write_archive_tree(FILES, tmp_path)
    assert {each.symbol for each in written} == {"BTCUSDT", "BTCUSD"}
    assert sorted(each.period for each in written if each.symbol == "BTCUSD") == ["2024-03-01"]
    for each in written:
        data = (tmp_path / each.path).read_bytes()
        assert published_checksum((tmp_path / each.checksum_path).read_text(), each) == hashlib.sha256(data).hexdigest()


# --- the command line ----------------------------------------------------------------------


def test_candles_pairs_name_their_market_and_a_bare_file_is_the_default_one():
    assert candle_sources(["BTC/USDT=a.csv", "BTC/USD=b.csv"]) == {"BTC/USDT": Path("a.csv"), "BTC/USD": Path("b.csv")}
    assert candle_sources(["a.csv"], "ETH/BTC") == {"ETH/BTC": Path("a.csv")}
    assert candle_sources(["ETH/USDT=dir/x=y.csv"]) == {"ETH/USDT": Path("dir/x=y.csv")}


def test_a_bare_file_whose_name_holds_an_equals_sign_is_that_file(tmp_path):
    odd = tmp_path / "a=b.csv"
    odd.write_text("")
    assert candle_sources([str(odd)]) == {"BTC/USDT": odd}


def test_the_cli_reads_repeated_candles_as_one_market_each():
    arguments = parse_arguments(["--candles", "BTC/USDT=a.csv", "--candles", "BTC/USD=b.csv"])
    assert arguments.markets == {"BTC/USDT": Path("a.csv"), "BTC/USD": Path("b.csv")}
    assert parse_arguments(["--candles", "a.csv", "--symbol", "ETH/USDT"]).markets == {"ETH/USDT": Path("a.csv")}
    assert parse_arguments(["--candles", "a.csv", "--symbol", "ETHUSDT"]).markets == {"ETH/USDT": Path("a.csv")}


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["--candles", "BTCUSD=b.csv"], "argument --candles: BTCUSD=b.csv: 'BTCUSD' is not a symbol BASE/QUOTE"),
        (["--candles", "btc/usd=b.csv"], "argument --candles: btc/usd=b.csv: 'btc/usd' is not a symbol BASE/QUOTE"),
        (["--candles", "BTC/USD="], "argument --candles: BTC/USD=: no file after '='"),
        (
            ["--candles", "BTC/USD=a.csv", "--candles", "BTC/USD=b.csv"],
            "argument --candles: BTC/USD=b.csv: the market BTC/USD is given twice (also by BTC/USD=a.csv)",
        ),
        (
            ["--candles", "a.csv", "--candles", "BTC/USDT=b.csv"],
            "argument --candles: BTC/USDT=b.csv: the market BTC/USDT is given twice (also by a.csv)",
        ),
        (["--candles", "a.csv", "--symbol", "BTC-USD"], "argument --symbol: cannot tell base and quote asset"),
    ],
)
def test_a_bad_candles_argument_exits_2_naming_the_argument_and_the_value(argv, problem, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_arguments(argv)
    assert exit_.value.code == 2
    assert problem in capsys.readouterr().err


def test_a_missing_file_of_one_market_stops_the_cli_with_one_line_naming_it(tmp_path, capsys):
    good = write_generic_csv(USD.head(10), tmp_path / "usd.csv")
    assert replay_main(["--candles", f"BTC/USD={good}", "--candles", f"BTC/USDT={tmp_path / 'nope.csv'}"]) == 2
    error = capsys.readouterr().err
    missing = tmp_path / "nope.csv"
    assert error == f"replay exchange: {missing}: candle file not found (--candles BTC/USDT={missing})\n"


def test_a_bad_line_in_one_markets_file_stops_the_cli_naming_file_and_line(tmp_path, capsys):
    good = write_generic_csv(USD.head(10), tmp_path / "usd.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("open_time,open,high,low,close,volume\n2024-03-01T00:00:00Z,1,abc,1,1,1\n")
    assert replay_main(["--candles", f"BTC/USD={good}", "--candles", f"BTC/USDT={bad}"]) == 2
    assert f"{bad}, line 2, field high: non-numeric 'abc'" in capsys.readouterr().err


def test_the_cli_writes_the_archives_of_every_market(tmp_path, capsys):
    usdt = write_generic_csv(USDT, tmp_path / "usdt.csv")
    usd = write_generic_csv(USD, tmp_path / "usd.csv")
    tree = tmp_path / "tree"
    argv = ["--candles", f"BTC/USDT={usdt}", "--candles", f"BTC/USD={usd}", "--write-archives", str(tree)]
    assert replay_main(argv) == 0
    # BTCUSDT's days 1 and 2 March, BTCUSD's 1 March; March 2024 has not ended.
    assert capsys.readouterr().out == f"wrote 3 archives under {tree}\n"
    assert (tree / Archive("BTCUSD", "1m", "2024-03-01").checksum_path).is_file()


def test_the_cli_serves_two_files_and_its_banner_names_each_market(tmp_path):
    usdt = write_generic_csv(USDT.head(100), tmp_path / "usdt.csv")
    usd = write_generic_csv(USD.head(50), tmp_path / "usd.csv")
    command = [
        sys.executable,
        "-m",
        "btc_lifecycle.replay_exchange",
        "--candles",
        f"BTC/USDT={usdt}",
        "--candles",
        f"BTC/USD={usd}",
        "--speed",
        "0",
    ]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().strip()
        match = re.fullmatch(
            rf"replay exchange serving BTC/USDT={re.escape(str(usdt))} \(100 candles, .*\), "
            rf"BTC/USD={re.escape(str(usd))} \(50 candles, .*\) at (http://127\.0\.0\.1:\d+)",
            line,
        )
        assert match, line
        klines = f"{match.group(1)}/api/v3/klines?interval=1m&limit=1000&symbol="
        assert [len(get(klines + "BTCUSDT")[2]), len(get(klines + "BTCUSD")[2])] == [100, 50]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
