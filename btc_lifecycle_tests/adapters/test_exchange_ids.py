"""The ccxt client for any ccxt exchange id: ids ccxt does not know or that have no candles, the
exchange's own rate limit, and what goes to binance alone."""

from __future__ import annotations

import ccxt
import pytest

from btc_lifecycle.adapters.exchange import ExchangeFailure, make_ccxt_client

BINANCE_KEYS = {"BINANCE_API_KEY": "k-123", "BINANCE_API_SECRET": "s-456"}


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
