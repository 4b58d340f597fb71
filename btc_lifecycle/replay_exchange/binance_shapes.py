"""Binance spot REST shapes, built from candle frames: pure functions, no HTTP.

Shapes follow https://developers.binance.com/docs/binance-spot-api-docs/rest-api as of 2025:
exchangeInfo, klines rows, ``{"code": .., "msg": ..}`` errors, the klines parameter rules and the
tickers (price, average price, 24 hours, book).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candles import interval_ms

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
# Every interval Binance accepts: a valid one the file cannot serve is still "Invalid interval."
BINANCE_INTERVALS = (
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
)
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "EUR", "TRY", "BTC", "ETH", "BNB")
_INTEGER = re.compile(r"^[0-9]{1,20}$")


class BinanceError(Exception):
    """A request Binance would refuse: HTTP 400 with ``{"code": code, "msg": msg}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code, self.msg, self.status = code, msg, status

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


def split_symbol(symbol: str) -> tuple[str, str]:
    """``BTCUSDT`` -> (``BTC``, ``USDT``), by the longest known quote asset at the end."""
    for quote in sorted(QUOTE_ASSETS, key=len, reverse=True):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot tell base and quote asset of {symbol!r}; end it with one of {', '.join(QUOTE_ASSETS)}")


def symbol_info(symbol: str, base: str | None = None, quote: str | None = None) -> dict:
    """One spot entry of exchangeInfo's ``symbols``, shaped like BTCUSDT's on Binance: the same
    fields, filters and permissions for every market, only the names differ. Without ``base`` and
    ``quote`` they are read from ``symbol`` (``split_symbol``)."""
    if base is None or quote is None:
        base, quote = split_symbol(symbol)
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01000000",
                "maxPrice": "1000000.00000000",
                "tickSize": "0.01000000",
            },
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "100.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def exchange_info(symbols: list[tuple[str, str, str]], server_time_ms: int) -> dict:
    """exchangeInfo of the markets ``symbols``, each ``(id, base asset, quote asset)``."""
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ],
        "exchangeFilters": [],
        "symbols": [symbol_info(symbol, base, quote) for symbol, base, quote in symbols],
    }


def mandatory(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def optional_integer(params: dict[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not _INTEGER.match(value):
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
    return int(value)


@dataclass(frozen=True)
class KlinesQuery:
    symbol: str
    interval: str
    start_ms: int | None
    end_ms: int | None
    limit: int


def klines_query(params: dict[str, str], symbols: set[str], intervals: set[str]) -> KlinesQuery:
    """Check the klines parameters in Binance's order: mandatory, format, then values."""
    symbol = mandatory(params, "symbol")
    interval = mandatory(params, "interval")
    start_ms = optional_integer(params, "startTime")
    end_ms = optional_integer(params, "endTime")
    limit = optional_integer(params, "limit")
    if symbol not in symbols:
        raise BinanceError(-1121, "Invalid symbol.")
    if interval not in BINANCE_INTERVALS or interval not in intervals:
        raise BinanceError(-1120, "Invalid interval.")
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
    limit = DEFAULT_LIMIT if limit is None else limit
    return KlinesQuery(symbol, interval, start_ms, end_ms, limit)


def _decimal(value: float) -> str:
    # Binance prints 8 decimals; BTC/USDT prices and volumes never need more.
    return f"{value:.8f}"


def format_rows(open_ms: np.ndarray, close_ms: np.ndarray, block: np.ndarray) -> list[list]:
    """Kline rows as Binance prints them from open times, close times and a block of values
    (open, high, low, close, volume, quote volume, trades, taker base, taker quote)."""
    text = np.char.mod("%.8f", block).tolist()  # the same digits as _decimal
    trades = block[:, 6].astype("int64").tolist()
    return [
        [opened, t[0], t[1], t[2], t[3], t[4], closed, t[5], count, t[7], t[8], "0"]
        for opened, closed, t, count in zip(open_ms.tolist(), close_ms.tolist(), text, trades, strict=True)
    ]


def kline_rows(
    open_ms: np.ndarray, visible: int, start_ms: int | None, end_ms: int | None, limit: int
) -> tuple[int, int]:
    """The rows [low, high) a klines request gets, as Binance picks them: open times within the
    inclusive [start_ms, end_ms] among the first ``visible`` rows, at most ``limit`` from the start,
    or the latest ``limit`` when no start is given."""
    high = visible if end_ms is None else min(visible, int(np.searchsorted(open_ms, end_ms, side="right")))
    if start_ms is None:
        return max(0, high - limit), high
    low = int(np.searchsorted(open_ms, start_ms, side="left"))
    return low, min(high, low + limit)


class KlineSeries:
    """One symbol's candles as Binance kline rows, sliced by the replay clock."""

    def __init__(self, candles: pd.DataFrame, interval: str) -> None:
        self.interval = interval
        self.step_ms = interval_ms(interval)
        self.open_ms = candles["open_time"].astype("int64").to_numpy() // 1_000_000
        volume, close = candles["volume"].to_numpy(), candles["close"].to_numpy()
        # Files without Binance's extras get plausible stand-ins rather than nulls, so clients
        # parse them as they would real rows: quote volume = volume * close, no trades, no taker
        # volume. Clients must not treat these as data.
        self.values = np.column_stack(
            [
                candles["open"].to_numpy(),
                candles["high"].to_numpy(),
                candles["low"].to_numpy(),
                close,
                volume,
                np.where(candles["quote_volume"].isna(), volume * close, candles["quote_volume"]),
                np.nan_to_num(candles["trades"].to_numpy(dtype="float64")),
                np.nan_to_num(candles["taker_buy_base_volume"].to_numpy(dtype="float64")),
                np.nan_to_num(candles["taker_buy_quote_volume"].to_numpy(dtype="float64")),
            ]
        )

    def _row(self, index: int, values: np.ndarray) -> list:
        o, h, l, c, v, qv, trades, taker_base, taker_quote = values
        open_ms = int(self.open_ms[index])
        return [
            open_ms,
            _decimal(o),
            _decimal(h),
            _decimal(l),
            _decimal(c),
            _decimal(v),
            open_ms + self.step_ms - 1,
            _decimal(qv),
            int(trades),
            _decimal(taker_base),
            _decimal(taker_quote),
            "0",
        ]

    def _rows_between(self, low: int, high: int) -> list[list]:
        """Rows ``low`` to ``high`` as Binance prints them, formatted per page on request: a
        year of rows kept formatted would hold half a gigabyte of Python strings."""
        opens = self.open_ms[low:high]
        return format_rows(opens, opens + (self.step_ms - 1), self.values[low:high])

    def forming_values(self, index: int, now_ms: int) -> np.ndarray:
        """The values of the candle at ``index`` as seen ``now_ms`` into it: part of the way to
        its final values.

        Nobody knows a minute's high and low before it ends, so the partial candle moves linearly
        from the open toward the final close and carries the elapsed share of the volumes.
        """
        fraction = (now_ms - int(self.open_ms[index])) / self.step_ms
        o, _, _, c, *amounts = self.values[index]
        close = o + fraction * (c - o)
        v, qv, trades, taker_base, taker_quote = (fraction * amount for amount in amounts)
        return np.array([o, max(o, close), min(o, close), close, v, qv, int(trades), taker_base, taker_quote])

    def forming_row(self, index: int, now_ms: int) -> list:
        """The candle at ``index`` as seen ``now_ms`` into it (``forming_values``). Its close time
        stays in the future, as on Binance, which is how clients spot it."""
        return self._row(index, self.forming_values(index, now_ms))

    def klines(self, now_ms: int, start_ms: int | None, end_ms: int | None, limit: int) -> list:
        """Binance semantics: inclusive bounds on open time; no start -> the latest ``limit``."""
        visible = int(np.searchsorted(self.open_ms, now_ms, side="right"))
        low, high = kline_rows(self.open_ms, visible, start_ms, end_ms, limit)
        if low >= high:
            return []
        rows = self._rows_between(low, high)
        last = high - 1
        if now_ms < self.open_ms[last] + self.step_ms:  # the last one is still forming
            rows[-1] = self.forming_row(last, now_ms)
        return rows

    def earlier_start(self, start_ms: int, candles: int) -> int:
        """A start time ``candles`` candles before ``start_ms`` (the ``overlap`` fault)."""
        return max(0, start_ms - candles * self.step_ms)

    def visible(self, now_ms: int) -> int:
        """How many candles have opened by ``now_ms``."""
        return int(np.searchsorted(self.open_ms, now_ms, side="right"))

    def seen_since(self, since_ms: int, now_ms: int) -> tuple[int, np.ndarray]:
        """The candles that overlap ``[since_ms, now_ms]`` as seen at ``now_ms``: the position of
        the first and their values, the forming one partial. Windows are whole candles, so a
        window may start up to one candle before ``since_ms`` (Binance's rolling windows start on
        a minute, too)."""
        visible = self.visible(now_ms)
        low = min(visible, int(np.searchsorted(self.open_ms, since_ms - self.step_ms, side="right")))
        block = self.values[low:visible]
        if visible > low and now_ms < self.open_ms[visible - 1] + self.step_ms:
            block = block.copy()
            block[-1] = self.forming_values(visible - 1, now_ms)
        return low, block

    def last_price(self, now_ms: int) -> float | None:
        """The close of the last candle opened by ``now_ms`` (partial while it forms), the price
        the klines show now; None before the first candle."""
        visible = self.visible(now_ms)
        if visible == 0:
            return None
        index = visible - 1
        if now_ms < self.open_ms[index] + self.step_ms:
            return float(self.forming_values(index, now_ms)[3])
        return float(self.values[index][3])

    def last_trade_ms(self, now_ms: int) -> int | None:
        """When the market last traded by ``now_ms``: the end of the last candle, or now while it
        forms (the time ``recent_trades`` gives); None before the first candle."""
        visible = self.visible(now_ms)
        if visible == 0:
            return None
        return min(int(self.open_ms[visible - 1]) + self.step_ms - 1, now_ms)

    def recent_trades(self, now_ms: int) -> list[dict]:
        """``/api/v3/trades``: the market's last trade by ``now_ms``, or ``[]`` before the first.

        The file has candles, not trades: the last visible candle stands for one trade at its
        close price, at the end of its minute (or now, while it is forming). One trade is enough
        for what clients ask it: when did this market last trade?
        """
        visible = int(np.searchsorted(self.open_ms, now_ms, side="right"))
        if visible == 0:
            return []
        index = visible - 1
        open_ms = int(self.open_ms[index])
        close, volume = self.values[index][3], self.values[index][4]
        return [
            {
                "id": index,
                "price": _decimal(close),
                "qty": _decimal(volume),
                "quoteQty": _decimal(close * volume),
                "time": min(open_ms + self.step_ms - 1, now_ms),
                "isBuyerMaker": False,
                "isBestMatch": True,
            }
        ]

    def span(self) -> tuple[int, int]:
        """First open time and last close time + 1 ms, in epoch milliseconds."""
        return int(self.open_ms[0]), int(self.open_ms[-1]) + self.step_ms


# --- tickers: the market as the replay clock sees it ---------------------------------------

AVG_PRICE_MINS = 5  # exchangeInfo's NOTIONAL filter says avgPriceMins 5, as on Binance
TICKER_TYPES = ("FULL", "MINI")
MINI_FIELDS = (
    "symbol",
    "openPrice",
    "highPrice",
    "lowPrice",
    "lastPrice",
    "volume",
    "quoteVolume",
    "openTime",
    "closeTime",
    "firstId",
    "lastId",
    "count",
)
# What a candle file cannot know: its book and the size of single trades. Binance prints an
# empty book side as price and quantity 0, so the tickers say "no book known" that way.
NOTHING = _decimal(0.0)


def ticker_symbols(params: dict[str, str], symbols: list[str]) -> str | list[str]:
    """The market(s) a ticker asks for: ``symbol`` (one, answered as an object), ``symbols``
    (a JSON list, answered as a list in its order) or neither (every market, a list)."""
    if "symbol" in params and "symbols" in params:
        raise BinanceError(-1101, "Too many parameters; expected 'symbol' or 'symbols' and received both.")
    if "symbol" in params:
        if params["symbol"] not in symbols:
            raise BinanceError(-1121, "Invalid symbol.")
        return params["symbol"]
    if "symbols" not in params:
        return list(symbols)
    try:
        asked = json.loads(params["symbols"])
    except ValueError:
        asked = None
    if not isinstance(asked, list) or not asked or not all(isinstance(name, str) for name in asked):
        raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'; legal range is '[\"SYMBOL\",...]'.")
    if len(set(asked)) != len(asked):
        raise BinanceError(-1151, "Symbol is present multiple times in the list.")
    if any(name not in symbols for name in asked):
        raise BinanceError(-1121, "Invalid symbol.")
    return asked


def ticker_type(params: dict[str, str]) -> str:
    kind = params.get("type", "FULL")
    if kind not in TICKER_TYPES:
        raise BinanceError(-1139, "Invalid ticker type.")
    return kind


def ticker_price(symbol: str, series: KlineSeries, now_ms: int) -> dict:
    """``/api/v3/ticker/price``: the close the klines show now (0 before the first candle, the
    price Binance shows for a market that has not traded)."""
    price = series.last_price(now_ms)
    return {"symbol": symbol, "price": _decimal(price or 0.0)}


def avg_price(series: KlineSeries, now_ms: int) -> dict:
    """``/api/v3/avgPrice``: Binance's average price, sum(price * qty) / sum(qty) over the trades
    of the last ``AVG_PRICE_MINS`` minutes; with no trade in them, the last trade's price.

    From candles: quote volume over volume of the candles overlapping the last five minutes,
    the forming one partial. ``closeTime`` is the last trade's time (0 and price 0 before the
    first candle: no trade, no average).
    """
    _, block = series.seen_since(now_ms - AVG_PRICE_MINS * 60_000, now_ms)
    volume = float(block[:, 4].sum())
    price = float(block[:, 5].sum()) / volume if volume > 0 else series.last_price(now_ms)
    return {"mins": AVG_PRICE_MINS, "price": _decimal(price or 0.0), "closeTime": series.last_trade_ms(now_ms) or 0}


def ticker_24hr(symbol: str, series: KlineSeries, now_ms: int, kind: str = "FULL") -> dict:
    """``/api/v3/ticker/24hr``: the rolling 24 hours up to ``now_ms`` (``openTime`` to
    ``closeTime``), from the candles that overlap them, the forming one partial.

    ``prevClosePrice`` is the last price before the window. Trade ids follow ``/api/v3/trades``,
    where each candle stands for one trade whose id is the candle's position in the file:
    ``firstId`` and ``lastId`` are the first and last candle of the window, -1 and -1 when it has
    none (Binance's answer for a window without trades). ``count`` is the file's trade count,
    the sum the klines carry (0 for files without one). A candle file has no order book and no
    trade sizes: ``bidPrice``, ``bidQty``, ``askPrice``, ``askQty`` and ``lastQty`` are 0, as
    Binance prints an empty book.
    """
    open_ms = now_ms - 86_400_000
    first, block = series.seen_since(open_ms, now_ms)
    last = series.last_price(now_ms) or 0.0
    prev_close = float(series.values[first - 1][3]) if first > 0 else 0.0
    if len(block):
        opening, high, low = float(block[0, 0]), float(block[:, 1].max()), float(block[:, 2].min())
        first_id, last_id = first, first + len(block) - 1
    else:  # no candle in the window: the market stands at its last price, untraded
        opening = high = low = last
        first_id = last_id = -1
    volume, quote_volume, trades = (float(x) for x in block[:, 4:7].sum(axis=0))
    change = last - opening
    stats = {
        "symbol": symbol,
        "priceChange": _decimal(change),
        "priceChangePercent": f"{100 * change / opening if opening else 0.0:.3f}",
        "weightedAvgPrice": _decimal(quote_volume / volume if volume > 0 else 0.0),
        "prevClosePrice": _decimal(prev_close),
        "lastPrice": _decimal(last),
        "lastQty": NOTHING,
        "bidPrice": NOTHING,
        "bidQty": NOTHING,
        "askPrice": NOTHING,
        "askQty": NOTHING,
        "openPrice": _decimal(opening),
        "highPrice": _decimal(high),
        "lowPrice": _decimal(low),
        "volume": _decimal(volume),
        "quoteVolume": _decimal(quote_volume),
        "openTime": open_ms,
        "closeTime": now_ms,
        "firstId": first_id,
        "lastId": last_id,
        "count": int(trades),
    }
    if kind == "MINI":
        return {name: stats[name] for name in MINI_FIELDS}
    return stats


def book_ticker(symbol: str) -> dict:
    """``/api/v3/ticker/bookTicker``: a candle file has no order book; Binance prints an empty
    book as zeros."""
    return {"symbol": symbol, "bidPrice": NOTHING, "bidQty": NOTHING, "askPrice": NOTHING, "askQty": NOTHING}
