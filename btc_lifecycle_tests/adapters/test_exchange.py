"""The ccxt candle client against the replay exchange: pagination, the forming candle, retries.

The real ccxt client talks HTTP to a loopback replay exchange; nothing in ccxt is mocked.
"""

from __future__ import annotations

import socket

import pandas as pd
import pytest

from btc_lifecycle.adapters.exchange import CandleClient, ExchangeFailure, RetryPolicy, make_ccxt_client
from btc_lifecycle.replay_exchange import Fault, ReplayExchange


class RecordingLog:
    def __init__(self):
        self.infos: list[str] = []
        self.warnings: list[str] = []

    def info(self, msg: str) -> None:
        self.infos.append(msg)

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)


class Client:
    """A candle client whose backoff waits are recorded instead of slept."""

    def __init__(self, url: str, max_retries: int = 3):
        self.log = RecordingLog()
        self.waits: list[float] = []
        policy = RetryPolicy(max_retries=max_retries, initial_seconds=0.25, max_seconds=5)
        self.client = CandleClient(
            make_ccxt_client(api_url=url, timeout_seconds=2), policy, self.log, self.waits.append
        )


@pytest.fixture
def candles(generated_candles):
    return generated_candles.iloc[:1050].reset_index(drop=True)


def fetch_all(client: CandleClient, candles: pd.DataFrame, limit: int = 100):
    return client.fetch_closed_candles("BTC/USDT", "1m", candles["open_time"].iloc[0], limit)


def test_pages_are_joined_across_boundaries_without_loss_or_repeats(candles):
    with ReplayExchange(candles) as exchange:
        result = fetch_all(Client(exchange.base_url).client, candles, limit=100)
        assert exchange.request_counts["/api/v3/klines"] == 11
    assert result.pages == 11
    pd.testing.assert_frame_equal(
        result.candles[["open_time", "open", "close", "volume"]], candles[["open_time", "open", "close", "volume"]]
    )


def test_the_still_forming_candle_is_never_returned(candles):
    forming = candles["open_time"].iloc[700] + pd.Timedelta(seconds=30)
    with ReplayExchange(candles, start=forming, speed=0) as exchange:
        # pages of 128 do not end at candle 700, so the last page carries the forming candle
        result = fetch_all(Client(exchange.base_url).client, candles, limit=128)
    assert result.candles["open_time"].iloc[-1] == candles["open_time"].iloc[699]
    assert result.forming_dropped == 1
    assert len(result.candles) == 700


def test_only_spot_markets_are_loaded(candles):
    with ReplayExchange(candles) as exchange:
        fetch_all(Client(exchange.base_url).client, candles)
        paths = set(exchange.request_counts)
    assert "/api/v3/exchangeInfo" in paths
    assert not any(path.startswith(("/fapi", "/dapi", "/sapi")) for path in paths)


def test_a_429_is_retried_after_the_retry_after_header(candles):
    faults = [Fault("klines", "status:429", count=2, retry_after_s=3)]
    with ReplayExchange(candles, faults=faults) as exchange:
        client = Client(exchange.base_url)
        result = fetch_all(client.client, candles)
    assert len(result.candles) == len(candles)
    assert result.retries == 2
    assert client.waits == [3.0, 3.0]  # Retry-After beats the shorter backoff
    assert all("429" in w and "Retry-After 3 s" in w for w in client.log.warnings)


@pytest.mark.parametrize("status", [418, 500, 502, 503, 504])
def test_server_errors_and_bans_are_retried_with_growing_backoff(candles, status):
    with ReplayExchange(candles, faults=[Fault("klines", f"status:{status}", count=3, after=2)]) as exchange:
        client = Client(exchange.base_url)
        result = fetch_all(client.client, candles)
    assert len(result.candles) == len(candles)
    assert result.retries == 3
    if status != 418:  # a ban carries Retry-After (1 s here), which overrides the backoff
        assert client.waits == [0.25, 0.5, 1.0]


def test_a_failure_that_outlasts_the_retries_fails_with_a_clear_message(candles):
    with ReplayExchange(candles, faults=[Fault("klines", "status:503", count=10)]) as exchange:
        client = Client(exchange.base_url, max_retries=2)
        with pytest.raises(ExchangeFailure, match=r"still failing after 3 attempts: ExchangeNotAvailable"):
            fetch_all(client.client, candles)


def test_a_retry_after_longer_than_allowed_fails_instead_of_stalling(candles):
    with ReplayExchange(candles, faults=[Fault("klines", "status:429", retry_after_s=120)]) as exchange:
        with pytest.raises(ExchangeFailure, match="Retry-After 120 s, longer than retry_max_seconds"):
            fetch_all(Client(exchange.base_url).client, candles)


def test_an_unknown_symbol_fails_without_retrying(candles):
    with ReplayExchange(candles) as exchange:
        client = Client(exchange.base_url)
        with pytest.raises(ExchangeFailure, match="does not list the symbol 'ETH/USDT'"):
            client.client.fetch_closed_candles("ETH/USDT", "1m", candles["open_time"].iloc[0], 100)
    assert client.waits == []


def test_a_refused_connection_is_retried_then_explained():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", max_retries=2)
    with pytest.raises(ExchangeFailure, match="unreachable.*make run CANDLES="):
        client.client.server_time()
    assert len(client.waits) == 2
