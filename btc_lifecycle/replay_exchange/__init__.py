"""A loopback Binance spot REST API served from candle files, for offline runs and tests.

Start it with ``python -m btc_lifecycle.replay_exchange --candles FILE`` (several markets:
``--candles BTC/USDT=a.csv --candles BTC/USD=b.csv``) or, in Python,
``with ReplayExchange(frame) as exchange: ...`` (``ReplayExchange({"BTC/USD": frame, ...})``);
point a real ccxt client at it with
``btc_lifecycle.adapters.exchange.point_ccxt_at(client, exchange.base_url)`` or build one with
``replay_binance_client``. It also serves Binance's kline archives (``archives.py``);
``write_archive_tree`` writes them into a folder instead.
"""

from __future__ import annotations

from btc_lifecycle.replay_exchange.archives import ArchiveFault, ArchiveTree, parse_archive_fault, write_archive_tree
from btc_lifecycle.replay_exchange.clock import ReplayClock
from btc_lifecycle.replay_exchange.faults import Fault, FaultPlan, parse_fault
from btc_lifecycle.replay_exchange.server import ReplayExchange

__all__ = [
    "ArchiveFault",
    "ArchiveTree",
    "Fault",
    "FaultPlan",
    "ReplayClock",
    "ReplayExchange",
    "parse_archive_fault",
    "parse_fault",
    "replay_binance_client",
    "write_archive_tree",
]


def replay_binance_client(base_url: str, **config):
    """A real ``ccxt.binance`` that loads spot markets only, pointed at a replay exchange."""
    # Imported here: the server side does not need ccxt, whose import costs over a second.
    import ccxt

    from btc_lifecycle.adapters.exchange import point_ccxt_at

    options = {"fetchMarkets": ["spot"], **config.pop("options", {})}
    return point_ccxt_at(ccxt.binance({"options": options, **config}), base_url)
