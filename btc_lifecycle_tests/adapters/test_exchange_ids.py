"""The candle client for any ccxt exchange id: ids ccxt does not know or that have no candles,
intervals an exchange does not list, pages no larger than the exchange sends, its rate limit.

binanceus speaks Binance's REST API, so the real ccxt client reaches the replay exchange under
that id, through Binance's klines or through ccxt's ``fetch_ohlcv`` (the path of every other
exchange); nothing in ccxt is mocked.
"""

from __future__ import annotations

import ccxt
import pandas as pd
import pytest

from btc_lifecycle.adapters.exchange import CandleClient, ExchangeFailure, RetryPolicy, make_ccxt_client
from btc_lifecycle.replay_exchange import Fault, ReplayExchange
from btc_lifecycle.resources.exchange import CandleExchangeResource
from btc_lifecycle_tests.adapters.test_exchange import RecordingLog

NO_WAIT = RetryPolicy(max_retries=2, initial_seconds=0, max_seconds=0)
OHLCV = ["open_time", "open", "high", "low", "close", "volume"]
BINANCE_KEYS = {"BINANCE_API_KEY": "k-123", "BINANCE_API_SECRET": "s-456"}


@pytest.fixture
def candles(generated_candles):
    return generated_candles.iloc[:1050].reset_index(drop=True)


def binanceus(url: str, binance_klines: bool = True) -> CandleClient:
    exchange = make_ccxt_client("binanceus", url, timeout_seconds=2)
    return CandleClient(exchange, NO_WAIT, RecordingLog(), lambda _: None, binance_klines=binance_klines)


def fetch_all(client: CandleClient, candles: pd.DataFrame, limit: int):
    return client.fetch_closed_candles("BTC/USDT", "1m", candles["open_time"].iloc[0], limit)


@pytest.mark.parametrize("binance_klines", [True, False], ids=["binance klines", "ccxt fetch_ohlcv"])
def test_another_exchange_id_pages_through_every_candle_of_the_file(candles, binance_klines):
    with ReplayExchange(candles) as exchange:
        result = fetch_all(binanceus(exchange.base_url, binance_klines), candles, limit=300)
        requests = exchange.request_counts["/api/v3/klines"]
    assert result.pages == requests == 4  # 1050 candles in pages of 300
    pd.testing.assert_frame_equal(result.candles[OHLCV], candles[OHLCV])


def test_binance_klines_keep_the_fields_a_ccxt_ohlcv_row_drops(candles):
    with ReplayExchange(candles) as exchange:
        klines = fetch_all(binanceus(exchange.base_url), candles, limit=1000).candles
        ohlcv = fetch_all(binanceus(exchange.base_url, binance_klines=False), candles, limit=1000).candles
    assert klines["quote_volume"].notna().all() and klines["trades"].notna().all()
    assert ohlcv["quote_volume"].isna().all() and ohlcv["trades"].isna().all()


@pytest.mark.parametrize("binance_klines", [True, False], ids=["binance klines", "ccxt fetch_ohlcv"])
def test_a_page_asks_for_no_more_candles_than_the_exchange_sends(candles, binance_klines):
    with ReplayExchange(candles) as exchange:
        client = binanceus(exchange.base_url, binance_klines)
        client.exchange.features = {"spot": {"fetchOHLCV": {"limit": 200}}}
        result = fetch_all(client, candles, limit=1000)
        requests = exchange.request_counts["/api/v3/klines"]
    assert result.pages == requests == 6  # 1050 candles in pages of 200, not 1000
    assert "limit=200" in client.exchange.last_request_url
    pd.testing.assert_frame_equal(result.candles[OHLCV], candles[OHLCV])


@pytest.mark.parametrize(
    "exchange_id, configured, page",
    [
        ("binance", 1000, 1000),
        ("kraken", 1000, 720),
        ("coinbase", 1000, 300),
        ("okx", 1000, 300),
        ("kraken", 500, 500),
        ("gemini", 1000, 1000),  # ccxt states no maximum: the configured limit stands
    ],
)
def test_the_page_size_is_the_configured_limit_or_the_exchanges_maximum_if_smaller(exchange_id, configured, page):
    client = CandleClient(make_ccxt_client(exchange_id), NO_WAIT, RecordingLog())
    assert client.page_limit(configured) == page


def test_a_body_cut_mid_json_is_retried_through_fetch_ohlcv_as_through_binance_klines(candles):
    # ccxt's fetch_ohlcv reads a body it cannot parse as a page without rows.
    with ReplayExchange(candles, faults=[Fault("klines", "truncate", count=2, after=1)]) as exchange:
        result = fetch_all(binanceus(exchange.base_url, binance_klines=False), candles, limit=300)
    assert result.retry_reasons == {"IncompleteResponse": 2}
    pd.testing.assert_frame_equal(result.candles[OHLCV], candles[OHLCV])


def test_an_id_ccxt_does_not_know_fails_naming_it_and_the_closest_ids():
    with pytest.raises(
        ExchangeFailure, match=r"^exchange 'krakn' is not a ccxt exchange id \(ccxt 4\.\S+ knows \d+; closest: kraken"
    ):
        make_ccxt_client("krakn")


def test_an_exchange_without_candles_in_ccxt_fails_naming_it():
    assert ccxt.bitbns().has["fetchOHLCV"] is False
    with pytest.raises(
        ExchangeFailure, match=r"^exchange 'bitbns' has no candles in ccxt \(has\['fetchOHLCV'\] is False\)"
    ):
        make_ccxt_client("bitbns")


def test_an_interval_the_exchange_does_not_list_fails_before_any_request(candles):
    with ReplayExchange(candles) as exchange:
        client = CandleClient(make_ccxt_client("kraken", exchange.base_url), NO_WAIT, RecordingLog())
        with pytest.raises(ExchangeFailure, match=r"^kraken has no '3m' candles; its intervals: 1m, 5m, 15m"):
            client.fetch_closed_candles("BTC/USD", "3m", candles["open_time"].iloc[0], 1000)
        assert sum(exchange.request_counts.values()) == 0


@pytest.mark.parametrize("exchange_id", ["binance", "kraken", "coinbase"])
def test_requests_are_spaced_by_the_exchanges_own_rate_limit(exchange_id):
    exchange = make_ccxt_client(exchange_id)
    assert exchange.enableRateLimit is True
    assert exchange.rateLimit == getattr(ccxt, exchange_id)().rateLimit


def test_binance_alone_gets_the_spot_only_options_and_the_binance_keys():
    binance = make_ccxt_client("binance", environ=BINANCE_KEYS)
    assert binance.options["fetchMarkets"] == {"types": ["spot"]} and binance.apiKey == "k-123"
    # coinbase's fetchMarkets option names the API version its markets come from.
    coinbase = make_ccxt_client("coinbase", environ=BINANCE_KEYS)
    assert coinbase.options["fetchMarkets"] == ccxt.coinbase().options["fetchMarkets"]
    assert not coinbase.apiKey and not coinbase.secret


def test_an_exchange_without_a_clock_in_ccxt_is_cut_at_this_machines_clock(candles):
    with ReplayExchange(candles) as exchange:
        client = binanceus(exchange.base_url)
        client.exchange.has = {**client.exchange.has, "fetchTime": False}
        before = pd.Timestamp.now(tz="UTC").floor("ms")
        assert before <= client.server_time() <= pd.Timestamp.now(tz="UTC")
        assert exchange.request_counts["/api/v3/time"] == 0


def test_the_resource_makes_a_client_for_another_id_with_its_connection_settings(candles):
    with ReplayExchange(candles) as exchange:
        resource = CandleExchangeResource(api_url=exchange.base_url, timeout_seconds=2, max_retries=1)
        client = resource.client(RecordingLog(), "binanceus")
        result = fetch_all(client, candles, limit=1000)
    assert (client.exchange.id, client.exchange.timeout, client.policy.max_retries) == ("binanceus", 2000, 1)
    pd.testing.assert_frame_equal(result.candles[OHLCV], candles[OHLCV])
    assert resource.client(RecordingLog()).exchange.id == "binance"
    assert resource.source == f"binance API at {resource.api_url}"


def test_binances_public_archives_are_offered_for_binance_alone():
    resource = CandleExchangeResource(archive_url="http://127.0.0.1:9")
    assert resource.archives() is not None and resource.archives("binance") is not None
    assert resource.archives("binanceus") is None
    assert CandleExchangeResource(exchange_id="kraken", archive_url="http://127.0.0.1:9").archives() is None
