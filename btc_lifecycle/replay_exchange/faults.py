"""Fault plans: make the first N matching requests fail the way Binance and its CDN fail.

A fault names an endpoint (``klines``, ``/api/v3/klines`` or ``*``), a kind and how many
matching requests it hits, optionally after letting ``after`` of them through:

- ``status:429`` / ``status:418``: Binance's rate-limit / ban answer, JSON code -1003 and a
  ``Retry-After`` header (``retry_after_s``);
- ``status:5xx`` (500, 502, 503, 504): an HTML error page, as a gateway returns it, so clients
  map it by HTTP status (ccxt: ExchangeNotAvailable, RequestTimeout for 504);
- ``delay:SECONDS``: answer normally, that much later (a slow exchange; client timeouts);
- ``hold``: answer normally once released (``POST /replay/faults`` with ``{"release": true}``):
  an exchange that stops answering until a test has done something meanwhile;
- ``truncate``: answer 200 with the JSON body cut in half.

Bad data, for klines (other endpoints answer normally):

- ``empty``: an empty page ``[]``, although candles exist from ``startTime`` on;
- ``overlap:N``: the page starts N candles before ``startTime`` (overlaps the previous page);
- ``duplicate``: every row of the page twice;
- ``shuffle``: the page's rows in reverse time order;
- ``corrupt``: the first row's high below its low;
- ``conflict``: the first row again, with another close (two different candles, one minute).

CLI syntax, one ``--fault`` per fault: ``ENDPOINT:KIND[:COUNT[:AFTER]]`` where KIND is
``429``, ``429=RETRY_AFTER_S``, ``418``, ``500``, ``502``, ``503``, ``504``, ``delay=SECONDS``,
``hold``, ``truncate``, ``empty``, ``overlap=N``, ``duplicate``, ``shuffle``, ``corrupt`` or ``conflict``.
Examples: ``klines:429:2`` (first two klines requests get 429, Retry-After 1),
``klines:429=30``, ``*:503:1:5`` (the sixth request of any endpoint gets 503),
``klines:delay=2.5:3``.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

STATUSES = (418, 429, 500, 502, 503, 504)
DATA_FAULTS = ("empty", "duplicate", "shuffle", "corrupt", "conflict")


@dataclass(frozen=True)
class Fault:
    endpoint: str
    kind: str  # "status:429", "delay:2.5", "truncate"
    count: int = 1
    after: int = 0
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        name, _, argument = self.kind.partition(":")
        if name == "status" and argument.isdigit() and int(argument) in STATUSES:
            pass
        elif name == "delay" and _is_seconds(argument):
            pass
        elif name == "overlap" and argument.isdigit() and int(argument) >= 1:
            pass
        elif self.kind not in ("truncate", "hold") and self.kind not in DATA_FAULTS:
            raise ValueError(
                f"fault kind {self.kind!r} is not one of "
                f"status:{{{','.join(map(str, STATUSES))}}}, delay:SECONDS, hold, truncate, "
                f"overlap:N, {', '.join(DATA_FAULTS)}"
            )
        if self.count < 1 or self.after < 0 or self.retry_after_s < 0:
            raise ValueError(f"fault {self}: count must be >= 1, after and retry_after_s >= 0")

    @property
    def status(self) -> int | None:
        return int(self.kind.split(":")[1]) if self.kind.startswith("status:") else None

    @property
    def delay_s(self) -> float:
        return float(self.kind.split(":")[1]) if self.kind.startswith("delay:") else 0.0

    @property
    def holds(self) -> bool:
        return self.kind == "hold"

    @property
    def overlap(self) -> int:
        return int(self.kind.split(":")[1]) if self.kind.startswith("overlap:") else 0

    def matches(self, path: str) -> bool:
        endpoint = self.endpoint
        return endpoint == "*" or path == endpoint or path.endswith("/" + endpoint.lstrip("/"))


def _is_seconds(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


def parse_fault(spec: str) -> Fault:
    """A ``Fault`` from the CLI syntax ``ENDPOINT:KIND[:COUNT[:AFTER]]`` (see module doc)."""
    parts = spec.split(":")
    if not 2 <= len(parts) <= 4 or not parts[0]:
        raise ValueError(f"fault {spec!r}: expected ENDPOINT:KIND[:COUNT[:AFTER]]")
    endpoint, kind = parts[0], parts[1]
    try:
        count = int(parts[2]) if len(parts) > 2 else 1
        after = int(parts[3]) if len(parts) > 3 else 0
        name, _, value = kind.partition("=")
        if name == "delay":
            return Fault(endpoint, f"delay:{value}", count, after)
        if name == "overlap":
            return Fault(endpoint, f"overlap:{int(value)}", count, after)
        if name in ("truncate", "hold", *DATA_FAULTS) and not value:
            return Fault(endpoint, name, count, after)
        retry_after_s = int(value) if value else 1
        return Fault(endpoint, f"status:{int(name)}", count, after, retry_after_s)
    except ValueError as error:
        raise ValueError(f"fault {spec!r}: {error}") from None


def spoil_klines(rows: list, faults: list[Fault]) -> list:
    """Klines ``rows`` as the data faults among ``faults`` spoil them (a new list)."""
    kinds = {fault.kind for fault in faults}
    rows = list(rows)
    if "empty" in kinds:
        return []
    if "duplicate" in kinds:
        rows = [row for row in rows for _ in range(2)]
    if "shuffle" in kinds:
        rows.reverse()
    if rows and "corrupt" in kinds:
        first = list(rows[0])
        first[2], first[3] = first[3], f"{float(first[2]) + 1:.8f}"  # high now below low
        rows[0] = first
    if rows and "conflict" in kinds:
        other = list(rows[0])
        other[4] = f"{float(other[4]) + 1:.8f}"
        rows.insert(1, other)
    return rows


class FaultPlan:
    """Which faults hit the next request of a path; counts matching requests per fault."""

    def __init__(self, faults: list[Fault] | tuple[Fault, ...] = ()) -> None:
        self._faults = list(faults)
        self._seen: Counter[int] = Counter()
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._seen.clear()

    def faults_for(self, path: str) -> list[Fault]:
        """The faults this request suffers; each matching fault counts it once."""
        hits = []
        with self._lock:
            for position, fault in enumerate(self._faults):
                if not fault.matches(path):
                    continue
                self._seen[position] += 1
                if fault.after < self._seen[position] <= fault.after + fault.count:
                    hits.append(fault)
        return hits

    def describe(self) -> list[dict]:
        with self._lock:
            return [
                {
                    "endpoint": f.endpoint,
                    "kind": f.kind,
                    "count": f.count,
                    "after": f.after,
                    "retry_after_s": f.retry_after_s,
                    "seen": self._seen[i],
                }
                for i, f in enumerate(self._faults)
            ]
