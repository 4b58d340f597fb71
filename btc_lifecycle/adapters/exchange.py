"""Any ccxt exchange through the real ccxt client: closed candles since a point in time, with
retries, paged by ``since`` and ``limit`` as the exchange allows and spaced by its rate limit.

The same code talks to live Binance and to the replay exchange; only the API host differs.
"""

from __future__ import annotations

import difflib
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ccxt
import pandas as pd
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from btc_lifecycle.adapters.retry_policy import Log, RetryPolicy
from btc_lifecycle.domain.candles import (
    candle_frame_from_rows,
    closed_candles,
    empty_candle_frame,
    interval_ms,
    sort_and_deduplicate,
    validate_candles,
)

T = TypeVar("T")

PROGRESS_EVERY_PAGES = 10
API_KEY_VARIABLES = ("BINANCE_API_KEY", "BINANCE_API_SECRET")  # read from the environment only
BINANCE = "binance"  # the one id that gets the Binance keys and the spot-only options


class IncompleteResponse(Exception):
    """A 200 whose body is not complete JSON: a connection cut mid-body, a network fault."""


class EmptyPage(Exception):
    """No candles from a start time although the exchange's clock says some have closed."""


# What is worth another try: rate limits (429/418), 5xx, timeouts and refused connections all
# arrive as NetworkError subclasses; a 500 carrying a JSON error code arrives as OperationFailed.
# ccxt hands a body it cannot parse back as text instead of raising: IncompleteResponse.
TRANSIENT_ERRORS = (ccxt.NetworkError, ccxt.OperationFailed, IncompleteResponse, EmptyPage)


class ExchangeFailure(RuntimeError):
    """The exchange could not deliver candles; the message says why and what to do."""


@dataclass(frozen=True)
class FetchResult:
    candles: pd.DataFrame
    server_time: pd.Timestamp
    pages: int
    retries: int
    duplicates_dropped: int
    forming_dropped: int
    retry_reasons: dict[str, int] = field(default_factory=dict)
    stopped_at: pd.Timestamp | None = None  # set when the exchange ran dry before its own now

    @property
    def complete(self) -> bool:
        return self.stopped_at is None


def point_ccxt_at(exchange: ccxt.Exchange, base_url: str) -> ccxt.Exchange:
    """Send every API family of ``exchange`` to ``base_url`` (scheme and host, maybe a port).

    ccxt builds a request as ``urls['api'][family] + '/' + path``, so only the host changes.
    """
    base = base_url.rstrip("/")
    exchange.urls["api"] = {name: re.sub(r"^https?://[^/]+", base, url) for name, url in exchange.urls["api"].items()}
    return exchange


def make_ccxt_client(
    exchange_id: str = BINANCE,
    api_url: str | None = None,
    timeout_seconds: float = 10.0,
    environ: Mapping[str, str] | None = None,
) -> ccxt.Exchange:
    """A ccxt client for ``exchange_id`` that spaces its requests by the exchange's own rate limit;
    binance's is limited to spot markets, so loading markets costs one request.

    API keys come only from ``BINANCE_API_KEY`` / ``BINANCE_API_SECRET`` in the environment,
    never from config files or resource config (which Dagster shows in its UI), and go to
    binance only.
    """
    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=3)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise ExchangeFailure(
            f"exchange {exchange_id!r} is not a ccxt exchange id "
            f"(ccxt {ccxt.__version__} knows {len(ccxt.exchanges)}{hint})"
        )
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_seconds * 1000)}
    if exchange_id == BINANCE:
        env = os.environ if environ is None else environ
        # ccxt option names mean different things per exchange (coinbase's ``fetchMarkets`` picks
        # an API version), so these go to binance alone; binanceus loads spot markets by default.
        config["options"] = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}
        config.update(
            (name, env[variable])
            for name, variable in zip(("apiKey", "secret"), API_KEY_VARIABLES, strict=True)
            if env.get(variable)
        )
    exchange = getattr(ccxt, exchange_id)(config)
    served = exchange.has.get("fetchOHLCV")
    if not served:
        raise ExchangeFailure(f"exchange {exchange_id!r} has no candles in ccxt (has['fetchOHLCV'] is {served})")
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
    """Fetches closed candles through ccxt, retrying transient failures with bounded backoff.

    Binance's spot markets are read through Binance's own klines endpoint, whose rows carry the
    four fields the store keeps beyond OHLCV (quote volume, trades, taker buys); every other
    market through ccxt's ``fetch_ohlcv``. ``binance_klines=False`` takes ``fetch_ohlcv`` always.
    """

    def __init__(
        self,
        exchange: ccxt.Exchange,
        policy: RetryPolicy,
        log: Log,
        sleep: Callable[[float], None] = time.sleep,
        *,
        binance_klines: bool = True,
    ) -> None:
        self.exchange = exchange
        self.policy = policy
        self.log = log
        self.sleep = sleep
        self.binance_klines = binance_klines
        self.retries = 0
        self.retry_reasons: Counter[str] = Counter()

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """``request()``, retried by tenacity on transient errors with the policy's backoff (or
        the exchange's Retry-After, when longer); every failure ends as an ``ExchangeFailure``."""

        def wait(state: RetryCallState) -> float:
            return self.policy.delay(state.attempt_number - 1, retry_after_seconds(self.exchange))

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception()
            retry_after = retry_after_seconds(self.exchange)
            if retry_after is not None and retry_after > self.policy.max_seconds:
                raise ExchangeFailure(
                    f"{self.exchange.id}: {what} was refused with Retry-After {retry_after:g} s, "
                    f"longer than retry_max_seconds ({self.policy.max_seconds:g} s); try later"
                ) from error
            self.retries += 1
            self.retry_reasons[type(error).__name__] += 1
            self.log.warning(
                f"{what}: {type(error).__name__} ({_short(error)}); retry {state.attempt_number} of "
                f"{self.policy.max_retries} in {state.next_action.sleep:.2f} s"
                + (f" (Retry-After {retry_after:g} s)" if retry_after is not None else "")
            )

        retrying = Retrying(
            retry=retry_if_exception_type(TRANSIENT_ERRORS),
            stop=stop_after_attempt(self.policy.max_retries + 1),
            wait=wait,
            before_sleep=before_sleep,
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(request)
        except TRANSIENT_ERRORS as error:
            raise ExchangeFailure(
                f"{self.exchange.id}: {what} still failing after {self.policy.max_retries + 1} attempts: "
                f"{type(error).__name__}: {_short(error)}{_offline_hint(error)}"
            ) from error
        except ccxt.BadSymbol as error:
            raise ExchangeFailure(f"{self.exchange.id} does not list this symbol: {_short(error)}") from error
        except ccxt.BaseError as error:
            raise ExchangeFailure(
                f"{self.exchange.id}: {what} failed: {type(error).__name__}: {_short(error)}"
            ) from error

    def server_time(self) -> pd.Timestamp:
        """The exchange's clock, or this machine's for an exchange whose clock ccxt cannot read."""
        if not self.exchange.has.get("fetchTime"):
            return pd.Timestamp(self.exchange.milliseconds(), unit="ms", tz="UTC")
        millis = self._call("fetching the server time", self.exchange.fetch_time)
        return pd.Timestamp(int(millis), unit="ms", tz="UTC")

    def market(self, symbol: str) -> dict[str, Any]:
        self._call("loading markets", self.exchange.load_markets)
        if symbol not in self.exchange.markets:
            raise ExchangeFailure(f"{self.exchange.id} does not list the symbol {symbol!r}")
        return self.exchange.market(symbol)

    def page_limit(self, limit: int) -> int:
        """``limit``, capped at the most candles the exchange sends for one spot request."""
        spot = (self.exchange.features or {}).get("spot") or {}
        most = (spot.get("fetchOHLCV") or {}).get("limit")
        return min(limit, int(most)) if most else limit

    def check_interval(self, interval: str) -> None:
        offered = self.exchange.timeframes or {}
        if interval not in offered:
            raise ExchangeFailure(
                f"{self.exchange.id} has no {interval!r} candles; its intervals: {', '.join(offered) or 'none'}"
            )

    def _reads_binance_klines(self, market: dict[str, Any]) -> bool:
        return self.binance_klines and isinstance(self.exchange, ccxt.binance) and bool(market.get("spot"))

    def fetch_page(
        self, market: dict[str, Any], interval: str, start_ms: int, limit: int, expect_rows: bool = False
    ) -> list[list[Any]]:
        """One page of candles; a cut body (and, with ``expect_rows``, an empty page) is retried.

        An empty page is accepted only when the market's last trade is older than ``start_ms``:
        a thin market that has not traded since writes no candle, and that is no fault.
        """
        read = self._klines_page if self._reads_binance_klines(market) else self._ohlcv_page

        def request() -> Any:
            rows = read(market, interval, start_ms, limit)
            if expect_rows and rows == [] and not self.quiet_since(market, start_ms):
                raise EmptyPage("the page is empty although candles from its start have closed")
            return rows

        rows = self._call(f"klines page from {_iso(start_ms)}", request)
        if not isinstance(rows, list) or any(not isinstance(row, list) or len(row) < 6 for row in rows):
            raise ExchangeFailure(
                f"{self.exchange.id}: klines page from {_iso(start_ms)} is not a list of candle rows: "
                f"{str(rows)[:200]!r}"
            )
        return rows

    def _klines_page(self, market: dict[str, Any], interval: str, start_ms: int, limit: int) -> Any:
        params = {"symbol": market["id"], "interval": interval, "startTime": start_ms, "limit": limit}
        rows = self.exchange.publicGetKlines(params)
        if isinstance(rows, str):  # ccxt hands back a body it cannot parse as text
            raise IncompleteResponse(f"the body is not complete JSON ({len(rows)} characters)")
        return rows

    def _ohlcv_page(self, market: dict[str, Any], interval: str, start_ms: int, limit: int) -> Any:
        rows = self.exchange.fetch_ohlcv(market["symbol"], interval, start_ms, limit)
        # ccxt's parsers read a body they could not parse as no rows: the body itself tells.
        body = self.exchange.last_http_response
        if isinstance(body, str) and body and self.exchange.parse_json(body) is None:
            raise IncompleteResponse(f"the body is not complete JSON ({len(body)} characters)")
        return rows

    def quiet_since(self, market: dict[str, Any], start_ms: int) -> bool:
        """True when the exchange says the market's last trade came before ``start_ms``.

        Any doubt (an error, an odd answer) is False: the empty page is then treated as a fault.
        """
        try:
            if self._reads_binance_klines(market):
                trades = self.exchange.publicGetTrades({"symbol": market["id"], "limit": 1})
                return int(trades[-1]["time"]) < start_ms
            trades = self.exchange.fetch_trades(market["symbol"], limit=1)
            return max(int(trade["timestamp"]) for trade in trades) < start_ms
        except (ccxt.BaseError, TypeError, KeyError, IndexError, ValueError):
            return False

    def fetch_closed_candles(
        self,
        symbol: str,
        interval: str,
        since: pd.Timestamp,
        limit: int,
        until: pd.Timestamp | None = None,
        now: pd.Timestamp | None = None,
    ) -> FetchResult:
        """Every closed candle from ``since`` to the exchange's now (or opening before ``until``),
        page by page. ``now`` is the exchange's clock when the caller has already asked for it,
        so that every window of one fetch is cut at the same moment. A page asks for ``limit``
        candles, or fewer where the exchange sends fewer."""
        self.check_interval(interval)
        step = interval_ms(interval)
        limit = self.page_limit(limit)
        market = self.market(symbol)
        now = self.server_time() if now is None else now
        cursor = int(since.timestamp() * 1000)
        now_ms = int(now.timestamp() * 1000)
        until_ms = now_ms if until is None else min(now_ms, int(until.timestamp() * 1000) + step - 1)
        pages: list[pd.DataFrame] = []
        count = 0
        stopped_at = None
        # While the candle at the cursor has closed by the exchange's clock, a page must hold
        # candles: an empty one is retried, and if it stays empty the fetch ends there, logged.
        # Binance answers a start time inside a stretch without candles with the candles after
        # it, so an honest empty page means nothing from the cursor to now: a thin market that
        # has not traded since (its last trade says so) ends the fetch, complete.
        while cursor + step <= until_ms:
            try:
                rows = self.fetch_page(market, interval, cursor, limit, expect_rows=True)
            except ExchangeFailure as failure:
                if not isinstance(failure.__cause__, EmptyPage):
                    raise
                stopped_at = pd.Timestamp(cursor, unit="ms", tz="UTC")
                self.log.warning(
                    f"{self.exchange.id} has no candles from {stopped_at.isoformat()} although its "
                    f"clock says {now.isoformat()}: keeping what came; the next ingest resumes there"
                )
                break
            if not rows:
                self.log.info(
                    f"{self.exchange.id}: no trade since {_iso(cursor)} (exchange time "
                    f"{now.isoformat()}): every candle up to now is stored"
                )
                break
            page = candle_frame_from_rows(rows, interval)
            validate_candles(page, f"{self.exchange.id} klines page from {_iso(cursor)}")
            pages.append(page)
            count += len(page)
            cursor = int(page["open_time"].max().timestamp() * 1000) + step
            if len(pages) % PROGRESS_EVERY_PAGES == 0:
                self.log.info(
                    f"backfill: {len(pages)} pages, {count:,} candles so far, "
                    f"{pages[0]['open_time'].min().isoformat()} .. {page['open_time'].max().isoformat()}"
                )
        fetched = pd.concat(pages, ignore_index=True) if pages else empty_candle_frame()
        fetched, duplicates = sort_and_deduplicate(fetched, f"{self.exchange.id} klines")
        fetched = fetched.loc[fetched["open_time"] >= since]
        if until is not None:  # the last page runs on past the window
            fetched = fetched.loc[fetched["open_time"] < until]
        closed = closed_candles(fetched, now)
        return FetchResult(
            candles=closed,
            server_time=now,
            pages=len(pages),
            retries=self.retries,
            duplicates_dropped=duplicates,
            forming_dropped=len(fetched) - len(closed),
            retry_reasons=dict(self.retry_reasons),
            stopped_at=stopped_at,
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
