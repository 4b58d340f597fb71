"""The HTTP layer: ``http.server``'s ThreadingHTTPServer on loopback, JSON in and out.

Routes (docs/operations.md): ``GET /health``, ``GET /predict?symbol=...``, ``POST /predict`` with a
JSON object, ``POST /reload``. Every error is JSON ``{"error": message, "status": code}``.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from btc_lifecycle.loopback_http import BackgroundHTTPServer
from btc_lifecycle.serving.service import ScoringService, ServingError

MAX_BODY_BYTES = 64 * 1024
ROUTES = {"/health": ("GET",), "/predict": ("GET", "POST"), "/reload": ("POST",)}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServingServer(BackgroundHTTPServer):
    """The scoring service over HTTP on a daemon thread; refuses a non-loopback host unless
    ``allow_remote`` (the service has no authentication)."""

    thread_name = "serving"

    def __init__(
        self,
        service: ScoringService,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        log_requests: bool = False,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"host {host!r} is not a loopback address: the service has no authentication; "
                "set serving.allow_remote to true in the config to bind it anyway"
            )
        super().__init__(host, port)
        self.service = service
        self.log_requests = log_requests

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)


def _handler_for(server: ServingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.serving = server
    return Handler


class _Handler(BaseHTTPRequestHandler):
    serving: ServingServer
    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
    # Headers and body are two writes: with Nagle's algorithm on, the client's delayed ACK holds
    # every kept-alive answer by tens of milliseconds.
    disable_nagle_algorithm = True
    server_version = "btc-lifecycle-serving"

    def setup(self) -> None:
        super().setup()
        self.serving.track_connection(self.connection, True)

    def finish(self) -> None:
        self.serving.track_connection(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args) -> None:
        if self.serving.log_requests:
            sys.stderr.write(f"serving: {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            body = self._read_body() if method in ("POST", "PUT") else b""
            allowed = ROUTES.get(url.path)
            if allowed is None:
                raise ServingError(404, f"unknown path {url.path!r} (known: {', '.join(ROUTES)})")
            if method not in allowed:
                raise ServingError(405, f"{method} is not allowed on {url.path} (use {' or '.join(allowed)})")
            service = self.serving.service
            if url.path == "/health":
                return self._send(*service.health())
            if url.path == "/reload":
                return self._send(*service.reload())
            parameters = _query_parameters(url.query) if method == "GET" else _json_object(body)
            return self._send(200, service.predict(parameters))
        except ServingError as error:
            headers = {"Allow": ", ".join(ROUTES[url.path])} if error.status == 405 else {}
            return self._send(error.status, {"error": error.message, "status": error.status}, headers)
        except Exception as error:  # a bug must still answer, in JSON, and keep the server up
            message = f"internal error: {type(error).__name__}: {error}"
            return self._send(500, {"error": message, "status": 500})

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.isdigit():
            self.close_connection = True
            raise ServingError(400, f"malformed Content-Length {length!r}")
        if int(length) > MAX_BODY_BYTES:
            if int(length) <= 16 * MAX_BODY_BYTES:
                self.rfile.read(int(length))  # read off: closing on unread data would reset the answer
            else:
                self.close_connection = True
            raise ServingError(413, f"request body of {length} bytes is over the limit of {MAX_BODY_BYTES}")
        return self.rfile.read(int(length))

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        # allow_nan=False: JSON has no NaN; every float the service returns is finite.
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left: nothing to answer


def _query_parameters(query: str) -> dict[str, str]:
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ServingError(400, f"malformed query string {query!r}: expected name=value pairs joined by '&'") from None
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise ServingError(400, f"parameter {repeated[0]!r} is given more than once")
    return {name: values[0] for name, values in parsed.items()}


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise ServingError(400, 'empty request body: POST /predict takes a JSON object such as {"symbol": "BTC/USDT"}')
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ServingError(400, f"request body is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise ServingError(400, f"request body must be a JSON object, got {type(parsed).__name__}")
    return parsed
