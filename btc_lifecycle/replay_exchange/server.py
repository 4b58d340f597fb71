"""The replay exchange: Binance's spot REST API on loopback, served from candle frames.

It serves one market per frame, named ``BASE/QUOTE`` (``BTC/USD``, which Binance's API calls
``BTCUSD``) or by its Binance id; every endpoint below answers each of them, and a symbol it does
not serve is Binance's -1121 "Invalid symbol.". One replay clock runs for all of them.

Binance endpoints (GET): ``/api/v3/ping``, ``/api/v3/time``, ``/api/v3/exchangeInfo``,
``/api/v3/klines`` and ``/api/v3/uiKlines`` (the same rows) at the file's interval and every
coarser Binance interval made of its candles (``intervals.py``), ``/api/v3/trades`` (the last
trade only), and the tickers at the replay clock: ``/api/v3/ticker/price``, ``/api/v3/avgPrice``,
``/api/v3/ticker/24hr`` and ``/api/v3/ticker/bookTicker`` (an empty book: a file has none). Bad
parameters get Binance's HTTP 400 ``{"code", "msg"}`` errors. Any other path (futures markets
included) is a 404 with a Binance-shaped JSON body, code -1020 ("This operation is not
supported"), so clients fail loudly and readably; Binance's own gateway answers an HTML page
there, which no client can parse. Klines are in UTC only: a ``timeZone`` other than 0 is refused
for the intervals it would change.

Binance's kline archives (GET, as data.binance.vision serves them, see ``archives.py``):
``/data/spot/{monthly,daily}/klines/SYMBOL/INTERVAL/SYMBOL-INTERVAL-PERIOD.zip`` (200
``application/zip``) and the same path plus ``.CHECKSUM`` (200 ``text/plain``), once the replay
clock has passed the end of the period; an archive not (yet) published is a 404 HTML page. The
endpoint faults below do not touch archive paths; archives have faults of their own.

Control endpoints for tests and simulations (never faulted):

- ``GET /replay/clock`` -> ``{"now", "now_iso", "speed", "interval", "symbols": {ID: {"symbol",
  "first_open", "last_close", "candles"}}}``, one entry per market (``ID`` is Binance's, e.g.
  ``BTCUSD``; ``"symbol"`` its ``BASE/QUOTE``)
- ``POST /replay/clock`` with any of ``{"now": ms or ISO string, "advance_ms": n, "speed": x}``
  (applied in that order) -> the new clock state
- ``GET /replay/faults`` -> the fault plan and how many requests a ``hold`` fault holds now
  (``"held"``); ``POST /replay/faults`` with ``{"clear": true}``, ``{"add": ["klines:429:2",
  ...]}`` (syntax in ``faults.py``) and/or ``{"release": true}`` (the held requests go on).
- ``GET /replay/archives`` -> ``{"faults": ["missing@2023-03", ...]}``, the archive faults;
  ``POST /replay/archives`` with ``{"clear": true}`` and/or ``{"add": ["checksum@2023-03-05",
  ...]}`` (applied in that order; ``KIND@PERIOD``, kinds in ``archives.py``) -> the new state. An
  archive fault holds for that period's archive of every market.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

import pandas as pd

from btc_lifecycle.loopback_http import BackgroundHTTPServer
from btc_lifecycle.replay_exchange.archives import ArchiveFault, ArchiveFile, ArchiveTree
from btc_lifecycle.replay_exchange.binance_shapes import (
    BinanceError,
    KlineSeries,
    avg_price,
    book_ticker,
    exchange_info,
    klines_query,
    mandatory,
    ticker_24hr,
    ticker_price,
    ticker_symbols,
    ticker_type,
)
from btc_lifecycle.replay_exchange.clock import ReplayClock, default_start_ms, epoch_ms
from btc_lifecycle.replay_exchange.faults import Fault, FaultPlan, parse_fault, spoil_klines
from btc_lifecycle.replay_exchange.intervals import IntervalSeries, servable_intervals
from btc_lifecycle.replay_exchange.markets import DEFAULT_SYMBOL, markets_by_id

API = "/api/v3"
KLINES = (f"{API}/klines", f"{API}/uiKlines")
ARCHIVES = "/data/"
NOT_FOUND_PAGE = "<html><body><h1>404 Not Found</h1></body></html>"
_UTC = re.compile(r"^[+-]?0{1,2}(?::00)?$")  # the spellings of timeZone 0 that Binance accepts


class ReplayExchange(BackgroundHTTPServer):
    """A Binance-shaped HTTP server over candle frames, on a background thread.

    ``candles`` is one candle frame (served as ``symbol``) or a dict ``{symbol: frame}``, one
    market each; a symbol is ``BASE/QUOTE`` (``BTC/USD``) or a Binance id (``BTCUSDT``, whose
    quote asset is one ``split_symbol`` knows). Without a ``clock``, replay time starts at
    ``start`` (or just after the latest last candle of all frames closes) and runs at ``speed``.
    ``archive_faults`` are ``ArchiveFault``s or ``KIND@PERIOD`` specs; they hold for the period's
    archive of every market.
    """

    def __init__(
        self,
        candles: pd.DataFrame | dict[str, pd.DataFrame],
        symbol: str = DEFAULT_SYMBOL,
        interval: str = "1m",
        clock: ReplayClock | None = None,
        start: str | pd.Timestamp | int | None = None,
        speed: float = 1.0,
        faults: list[Fault] | tuple[Fault, ...] = (),
        archive_faults: list[ArchiveFault | str] | tuple[ArchiveFault | str, ...] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        log_requests: bool = False,
    ) -> None:
        named = candles if isinstance(candles, dict) else {symbol: candles}
        if not named or any(frame.empty for frame in named.values()):
            raise ValueError("the replay exchange needs at least one candle for every symbol")
        # Keyed by Binance id, as requests name the market; a bad symbol fails here, not at the
        # first request.
        self.markets = markets_by_id(list(named))
        frames = {market.id: frame for market, frame in zip(self.markets.values(), named.values(), strict=True)}
        for name, frame in frames.items():
            times = frame["open_time"]
            if not times.is_monotonic_increasing or times.duplicated().any():
                raise ValueError(f"{self.markets[name].symbol}: candles must be sorted by open time, without repeats")
        self.interval = interval
        self.series = {name: KlineSeries(frame, interval) for name, frame in frames.items()}
        self.intervals = servable_intervals(interval)
        # Coarser intervals are aggregated on first request, once per symbol and interval.
        self._interval_series: dict[tuple[str, str], IntervalSeries] = {}
        self._aggregating = threading.Lock()
        if clock is None:
            # One clock for every market, by default at the end of the file that ends last. A
            # market whose file ends earlier is then a halted market: its klines stop at its last
            # candle, its tickers and last trade stay there, its rolling 24 hours hold no candle
            # once they have passed its end, and its later archives are never published. One
            # whose file starts later has no klines, and a price of 0, before its first candle.
            end_of_file = max(default_start_ms(frame, self.series[name].step_ms) for name, frame in frames.items())
            start_ms = (
                end_of_file if start is None else (int(start) if isinstance(start, (int, float)) else epoch_ms(start))
            )
            clock = ReplayClock(start_ms, speed)
        self.clock = clock
        self.faults = FaultPlan(faults)
        self.archives = ArchiveTree(self.series, interval, self.clock.now_ms, archive_faults)
        self.request_counts: Counter[str] = Counter()
        self.log_requests = log_requests
        self.stopping = threading.Event()
        self._releases = threading.Condition()
        self._released = 0  # how many releases so far: a held request waits for the next one
        self.held = 0
        super().__init__(host, port)

    thread_name = "replay-exchange"

    @property
    def base_url(self) -> str:
        return self.url

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def start(self) -> str:
        self.stopping.clear()
        return super().start()

    def stop(self) -> None:
        self.stopping.set()  # wakes requests sleeping in a delay fault
        self.release()  # and those held
        super().stop()

    def hold(self) -> bool:
        """Wait until the next release (``hold`` fault); False when the exchange stops meanwhile."""
        with self._releases:
            releases = self._released
            self.held += 1
            try:
                self._releases.wait_for(lambda: self._released != releases)
            finally:
                self.held -= 1
        return not self.stopping.is_set()

    def release(self) -> None:
        """Let every held request go on."""
        with self._releases:
            self._released += 1
            self._releases.notify_all()

    def fault_state(self) -> dict:
        with self._releases:
            held = self.held
        return {"faults": self.faults.describe(), "held": held}

    def count_request(self, path: str) -> None:
        with self._lock:
            self.request_counts[path] += 1

    def clock_state(self) -> dict:
        symbols = {}
        for name, series in self.series.items():
            first_open, last_close = series.span()
            symbols[name] = {
                "symbol": self.markets[name].symbol,
                "first_open": first_open,
                "last_close": last_close,
                "candles": len(series.open_ms),
            }
        return {**self.clock.state(), "interval": self.interval, "symbols": symbols}

    def klines_of(self, symbol: str, interval: str) -> KlineSeries | IntervalSeries:
        """``symbol``'s klines at ``interval``: the file's own, or aggregated from them."""
        if interval == self.interval:
            return self.series[symbol]
        with self._aggregating:
            key = (symbol, interval)
            if key not in self._interval_series:
                self._interval_series[key] = IntervalSeries(self.series[symbol], interval)
            return self._interval_series[key]

    def binance_response(self, path: str, params: dict[str, str]) -> dict | list:
        """The JSON Binance answers for a GET; raises ``BinanceError`` or ``LookupError``."""
        if path == f"{API}/ping":
            return {}
        if path == f"{API}/time":
            return {"serverTime": self.clock.now_ms()}
        if path == f"{API}/exchangeInfo":
            symbols = list(self.series)
            if "symbol" in params:
                if params["symbol"] not in self.series:
                    raise BinanceError(-1121, "Invalid symbol.")
                symbols = [params["symbol"]]
            markets = [(name, self.markets[name].base, self.markets[name].quote) for name in symbols]
            return exchange_info(markets, self.clock.now_ms())
        if path in KLINES:
            query = klines_query(params, set(self.series), set(self.intervals))
            if query.interval != self.interval and not _UTC.match(params.get("timeZone", "0")):
                raise BinanceError(-1130, "Data sent for parameter 'timeZone' is not valid.")
            klines = self.klines_of(query.symbol, query.interval)
            return klines.klines(self.clock.now_ms(), query.start_ms, query.end_ms, query.limit)
        if path == f"{API}/trades":
            if mandatory(params, "symbol") not in self.series:
                raise BinanceError(-1121, "Invalid symbol.")
            return self.series[params["symbol"]].recent_trades(self.clock.now_ms())
        if path == f"{API}/avgPrice":
            if mandatory(params, "symbol") not in self.series:
                raise BinanceError(-1121, "Invalid symbol.")
            return avg_price(self.series[params["symbol"]], self.clock.now_ms())
        tickers = {
            f"{API}/ticker/price": lambda symbol, now: ticker_price(symbol, self.series[symbol], now),
            f"{API}/ticker/24hr": lambda symbol, now: ticker_24hr(symbol, self.series[symbol], now, kind),
            f"{API}/ticker/bookTicker": lambda symbol, now: book_ticker(symbol),
        }
        if path in tickers:
            kind = ticker_type(params) if path == f"{API}/ticker/24hr" else "FULL"
            asked, now = ticker_symbols(params, list(self.series)), self.clock.now_ms()
            if isinstance(asked, str):
                return tickers[path](asked, now)
            return [tickers[path](symbol, now) for symbol in asked]
        raise LookupError(path)

    def control(self, path: str, request: dict) -> dict:
        """Apply a POST to ``/replay/clock`` or ``/replay/faults``; returns the new state."""
        if path == "/replay/clock":
            if "now" in request:
                now = request["now"]
                self.clock.set_now(int(now) if isinstance(now, (int, float)) else epoch_ms(now))
            if "advance_ms" in request:
                self.clock.advance(int(request["advance_ms"]))
            if "speed" in request:
                self.clock.set_speed(float(request["speed"]))
            return self.clock_state()
        if path == "/replay/faults":
            if request.get("clear"):
                self.faults.clear()
            for spec in request.get("add", []):
                self.faults.add(parse_fault(spec))
            if request.get("release"):
                self.release()
            return self.fault_state()
        if path == "/replay/archives":
            if request.get("clear"):
                self.archives.clear_faults()
            for spec in request.get("add", []):
                self.archives.add_fault(spec)
            return self.archives.fault_state()
        raise LookupError(path)


def _handler_for(exchange: ReplayExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(_ReplayHandler):
        pass

    Handler.exchange = exchange
    return Handler


class _ReplayHandler(BaseHTTPRequestHandler):
    exchange: ReplayExchange
    protocol_version = "HTTP/1.1"  # keep-alive: ccxt reuses its connection
    server_version = "replay-exchange"

    def setup(self) -> None:
        super().setup()
        self.exchange.track_connection(self.connection, True)

    def finish(self) -> None:
        self.exchange.track_connection(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args) -> None:
        if self.exchange.log_requests:
            sys.stderr.write(f"replay exchange: {format % args}\n")

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.exchange.count_request(url.path)
        if url.path == "/replay/clock":
            return self._send_json(200, self.exchange.clock_state())
        if url.path == "/replay/faults":
            return self._send_json(200, self.exchange.fault_state())
        if url.path == "/replay/archives":
            return self._send_json(200, self.exchange.archives.fault_state())
        if url.path.startswith(ARCHIVES):
            return self._send_archive(self.exchange.archives.file(url.path))
        faults = self.exchange.faults.faults_for(url.path)
        for fault in faults:
            if fault.delay_s and self.exchange.stopping.wait(fault.delay_s):
                return None
            if fault.holds and not self.exchange.hold():
                return None
        failing = next((f for f in faults if f.status is not None), None)
        if failing is not None:
            return self._send_failure(failing)
        params = dict(parse_qsl(url.query))
        overlap = max((f.overlap for f in faults), default=0)
        if overlap and params.get("startTime", "").isdigit():
            # An overlapping page: it starts ``overlap`` candles before the asked start.
            symbol, interval = params.get("symbol"), params.get("interval", self.exchange.interval)
            if symbol not in self.exchange.series or interval not in self.exchange.intervals:
                symbol, interval = next(iter(self.exchange.series)), self.exchange.interval
            klines = self.exchange.klines_of(symbol, interval)
            params["startTime"] = str(klines.earlier_start(int(params["startTime"]), overlap))
        try:
            body = self.exchange.binance_response(url.path, params)
        except BinanceError as error:
            return self._send_json(error.status, error.body())
        except LookupError:
            return self._send_not_found("GET", url.path)
        if url.path in KLINES:
            body = spoil_klines(body, faults)
        truncate = any(f.kind == "truncate" for f in faults)
        return self._send_json(200, body, truncate=truncate)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        self.exchange.count_request(url.path)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
            return self._send_json(200, self.exchange.control(url.path, request))
        except LookupError:
            return self._send_not_found("POST", url.path)
        except (ValueError, TypeError, AttributeError) as error:
            return self._send_json(400, {"code": -1, "msg": f"bad control request: {error}"})

    def _send_failure(self, fault: Fault) -> None:
        status = fault.status
        if status in (418, 429):
            # Binance's own words for these; clients should honour Retry-After.
            words = "Way too many requests; IP banned." if status == 418 else "Too many requests."
            body = json.dumps(
                {"code": -1003, "msg": f"{words} Please use the websocket for live updates to avoid bans."}
            ).encode()
            headers = {"Retry-After": str(fault.retry_after_s), "Content-Type": "application/json"}
            return self._send(status, body, headers)
        # Gateways answer 5xx with HTML, not Binance JSON; ccxt then maps by HTTP status.
        page = f"<html><body><h1>{status} {self.responses[status][0]}</h1></body></html>"
        return self._send_text(status, "text/html", page)

    def _send_not_found(self, method: str, path: str) -> None:
        """Binance's error shape for a path the replay exchange does not serve: JSON a client can
        read (code -1020, "This operation is not supported"), naming what was asked."""
        error = BinanceError(-1020, f"This operation is not supported: {method} {path} is not served here.", 404)
        return self._send_json(error.status, error.body())

    def _send_archive(self, answer: ArchiveFile | None) -> None:
        if answer is None:
            return self._send_text(404, "text/html", NOT_FOUND_PAGE)
        if not answer.truncated:
            return self._send(200, answer.body, {"Content-Type": answer.content_type})
        # A download cut short: the full length announced, half the bytes sent, the connection
        # closed, so the client's read ends early (an incomplete read, not a short file).
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body[: len(answer.body) // 2])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send_json(self, status: int, payload, truncate: bool = False) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        if truncate:
            body = body[: len(body) // 2]
        self._send(status, body, {"Content-Type": "application/json;charset=UTF-8"})

    def _send_text(self, status: int, content_type: str, text: str) -> None:
        self._send(status, text.encode(), {"Content-Type": content_type})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout, or it was killed): nothing to answer, no traceback.
            self.close_connection = True
