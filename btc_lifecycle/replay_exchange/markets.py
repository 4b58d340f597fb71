"""The markets a replay exchange serves: which candle file is which symbol.

A market is named as ccxt names it, ``BASE/QUOTE`` (``BTC/USD``); Binance's REST API names it by
its id, the two assets run together (``BTCUSD``). ``--candles`` takes ``SYMBOL=FILE`` (repeatable,
one file per market) or a bare ``FILE``, the market of ``--symbol``. A value with ``=`` in it is a
pair unless it names an existing file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from btc_lifecycle.domain.candles import SYMBOL_PATTERN
from btc_lifecycle.replay_exchange.binance_shapes import split_symbol

DEFAULT_SYMBOL = "BTC/USDT"
SYMBOL = re.compile(SYMBOL_PATTERN)  # the rule of config's ingest.symbol


@dataclass(frozen=True)
class Pair:
    """A market's two assets, and its two names (``Market`` in ``domain.candles`` is a configured
    market: exchange, symbol, interval and table)."""

    base: str
    quote: str

    @property
    def symbol(self) -> str:
        """ccxt's name: ``BTC/USD``."""
        return f"{self.base}/{self.quote}"

    @property
    def id(self) -> str:
        """Binance's name: ``BTCUSD``."""
        return self.base + self.quote


def pair(symbol: str) -> Pair:
    """The pair of ``BTC/USD`` (any base and quote asset) or of a Binance id such as ``BTCUSDT``
    (split at a quote asset Binance lists, see ``split_symbol``)."""
    if "/" in symbol:
        if not SYMBOL.match(symbol):
            raise ValueError(f"symbol {symbol!r} is not BASE/QUOTE in capitals, e.g. BTC/USDT")
        base, quote = symbol.split("/")
        return Pair(base, quote)
    return Pair(*split_symbol(symbol))


def markets_by_id(symbols: list[str]) -> dict[str, Pair]:
    """``{Binance id: Pair}`` for ``symbols``, in their order; two names of one market are refused."""
    found: dict[str, Pair] = {}
    names: dict[str, str] = {}
    for name in symbols:
        each = pair(name)
        if each.id in found:
            raise ValueError(f"{names[each.id]} and {name} are both Binance's {each.id}: give each market once")
        found[each.id], names[each.id] = each, name
    return found


def candle_sources(
    values: list[str], default_symbol: str = DEFAULT_SYMBOL, option: str = "--candles"
) -> dict[str, Path]:
    """``{symbol: file}`` from ``option``'s values (``SYMBOL=FILE`` or a bare ``FILE``, the market
    of ``default_symbol``), in their order. Files are not read here. A ``ValueError`` names the
    option and the value: a symbol that is not ``BASE/QUOTE``, or a market given twice."""
    sources: dict[str, Path] = {}
    given: dict[str, str] = {}
    for value in values:
        symbol, path = _source(value, default_symbol, option)
        id_ = pair(symbol).id
        if id_ in given:
            raise ValueError(f"{option} {value}: the market {symbol} is given twice (also by {given[id_]})")
        sources[symbol], given[id_] = path, value
    if not sources:
        raise ValueError(f"{option}: give at least one candle file")
    return sources


def _source(value: str, default_symbol: str, option: str) -> tuple[str, Path]:
    if not value:
        raise ValueError(f"{option}: an empty value; give SYMBOL=FILE or FILE")
    symbol, equals, path = value.partition("=")
    if not equals or Path(value).is_file():
        return pair(default_symbol).symbol, Path(value)
    if not SYMBOL.match(symbol):
        raise ValueError(
            f"{option} {value}: {symbol!r} is not a symbol BASE/QUOTE in capitals (e.g. BTC/USDT=FILE), "
            f"and no file {value} exists"
        )
    if not path:
        raise ValueError(f"{option} {value}: no file after '='")
    return symbol, Path(path)
