"""Binance through the real ccxt client: closed candles since a point in time, with retries.

The same code talks to live Binance and to the replay exchange; only the API host differs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import ccxt
import pandas as pd

from btc_lifecycle.domain.candles import (
    candle_frame_from_rows,
    closed_candles,
    empty_candle_frame,
    interval_ms,
    sort_and_deduplicate,
    validate_candles,
)

T = TypeVar("T")

# What is worth another try: rate limits (429/418), 5xx, timeouts and refused connections all
# arrive as NetworkError subclasses; a 500 carrying a JSON error code arrives as OperationFailed.
TRANSIENT_ERRORS = (ccxt.NetworkError, ccxt.OperationFailed)
PROGRESS_EVERY_PAGES = 10


class Log(Protocol):
    def info(self, msg: str) -> None: ...
    def warning(self, msg: str) -> None: ...


class ExchangeFailure(RuntimeError):
    """The exchange could not deliver candles; the message says why and what to do."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    initial_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.max_seconds, self.initial_seconds * 2**attempt)
        return backoff if retry_after is None else max(backoff, retry_after)


@dataclass(frozen=True)
class FetchResult:
    candles: pd.DataFrame
    server_time: pd.Timestamp
    pages: int
    retries: int
    duplicates_dropped: int
    forming_dropped: int


def point_ccxt_at(exchange: ccxt.Exchange, base_url: str) -> ccxt.Exchange:
    """Send every API family of ``exchange`` to ``base_url`` (scheme and host, maybe a port).

    ccxt builds a request as ``urls['api'][family] + '/' + path``, so only the host changes.
    """
    base = base_url.rstrip("/")
    exchange.urls["api"] = {
        name: re.sub(r"^https?://[^/]+", base, url) for name, url in exchange.urls["api"].items()
    }
    return exchange


def make_ccxt_client(
    exchange_id: str = "binance", api_url: str | None = None, timeout_seconds: float = 10.0
) -> ccxt.Exchange:
    """A ccxt client limited to spot markets, so loading markets costs one request."""
    exchange = getattr(ccxt, exchange_id)({
        "enableRateLimit": True,
        "timeout": int(timeout_seconds * 1000),
        "options": {"fetchMarkets": ["spot"], "fetchCurrencies": False, "fetchMargins": False},
    })
    if api_url:
        point_ccxt_at(exchange, api_url)
    return exchange


def retry_after_seconds(exchange: ccxt.Exchange) -> float | None:
    headers = exchange.last_response_headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class CandleClient:
    """Fetches closed candles through ccxt, retrying transient failures with bounded backoff."""

    def __init__(
        self,
        exchange: ccxt.Exchange,
        policy: RetryPolicy,
        log: Log,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.exchange = exchange
        self.policy = policy
        self.log = log
        self.sleep = sleep
        self.retries = 0

    def _call(self, what: str, request: Callable[[], T]) -> T:
        for attempt in range(self.policy.max_retries + 1):
            try:
                return request()
            except TRANSIENT_ERRORS as error:
                retry_after = retry_after_seconds(self.exchange)
                if attempt == self.policy.max_retries:
                    raise ExchangeFailure(
                        f"{self.exchange.id}: {what} still failing after {attempt + 1} attempts: "
                        f"{type(error).__name__}: {_short(error)}{_offline_hint(error)}"
                    ) from error
                delay = self.policy.delay(attempt, retry_after)
                if retry_after is not None and retry_after > self.policy.max_seconds:
                    raise ExchangeFailure(
                        f"{self.exchange.id}: {what} was refused with Retry-After {retry_after:g} s, "
                        f"longer than retry_max_seconds ({self.policy.max_seconds:g} s); try later"
                    ) from error
                self.retries += 1
                self.log.warning(
                    f"{what}: {type(error).__name__} ({_short(error)}); retry {attempt + 1} of "
                    f"{self.policy.max_retries} in {delay:.2f} s"
                    + (f" (Retry-After {retry_after:g} s)" if retry_after is not None else "")
                )
                self.sleep(delay)
            except ccxt.BadSymbol as error:
                raise ExchangeFailure(f"{self.exchange.id} does not list this symbol: {_short(error)}") from error
            except ccxt.BaseError as error:
                raise ExchangeFailure(
                    f"{self.exchange.id}: {what} failed: {type(error).__name__}: {_short(error)}"
                ) from error
        raise AssertionError("unreachable")

    def server_time(self) -> pd.Timestamp:
        millis = self._call("fetching the server time", self.exchange.fetch_time)
        return pd.Timestamp(int(millis), unit="ms", tz="UTC")

    def market_id(self, symbol: str) -> str:
        self._call("loading markets", self.exchange.load_markets)
        if symbol not in self.exchange.markets:
            raise ExchangeFailure(f"{self.exchange.id} does not list the symbol {symbol!r}")
        return self.exchange.market(symbol)["id"]

    def fetch_page(self, market_id: str, interval: str, start_ms: int, limit: int) -> list[list[Any]]:
        params = {"symbol": market_id, "interval": interval, "startTime": start_ms, "limit": limit}
        rows = self._call(
            f"klines page from {_iso(start_ms)}", lambda: self.exchange.publicGetKlines(params)
        )
        if not isinstance(rows, list) or any(not isinstance(row, list) or len(row) < 6 for row in rows):
            raise ExchangeFailure(
                f"{self.exchange.id}: klines page from {_iso(start_ms)} is not a list of candle rows: "
                f"{str(rows)[:200]!r}"
            )
        return rows

    def fetch_closed_candles(
        self, symbol: str, interval: str, since: pd.Timestamp, limit: int
    ) -> FetchResult:
        """Every closed candle from ``since`` to the exchange's now, page by page."""
        step = interval_ms(interval)
        market_id = self.market_id(symbol)
        now = self.server_time()
        cursor = int(since.timestamp() * 1000)
        now_ms = int(now.timestamp() * 1000)
        pages: list[pd.DataFrame] = []
        count = 0
        while cursor + step <= now_ms:
            rows = self.fetch_page(market_id, interval, cursor, limit)
            if not rows:
                break
            page = candle_frame_from_rows(rows, interval)
            validate_candles(page, f"{self.exchange.id} klines page from {_iso(cursor)}")
            pages.append(page)
            count += len(page)
            cursor = int(page["open_time"].max().timestamp() * 1000) + step
            if len(pages) % PROGRESS_EVERY_PAGES == 0:
                self.log.info(
                    f"backfill: {len(pages)} pages, {count:,} candles so far, "
                    f"{pages[0]['open_time'].iloc[0].isoformat()} .. {page['open_time'].iloc[-1].isoformat()}"
                )
        fetched = pd.concat(pages, ignore_index=True) if pages else empty_candle_frame()
        fetched, duplicates = sort_and_deduplicate(fetched, f"{self.exchange.id} klines")
        fetched = fetched.loc[fetched["open_time"] >= since]
        closed = closed_candles(fetched, now)
        return FetchResult(
            candles=closed,
            server_time=now,
            pages=len(pages),
            retries=self.retries,
            duplicates_dropped=duplicates,
            forming_dropped=len(fetched) - len(closed),
        )


def _iso(millis: int) -> str:
    return pd.Timestamp(millis, unit="ms", tz="UTC").isoformat()


def _short(error: Exception) -> str:
    return str(error)[:300]


def _offline_hint(error: Exception) -> str:
    if isinstance(error, (ccxt.RequestTimeout, ccxt.ExchangeNotAvailable)) or type(error) is ccxt.NetworkError:
        return (
            ". The exchange is unreachable from here: check the network, or replay a candle file "
            "with `make run CANDLES=path/to/candles.csv`"
        )
    return ""
