"""Binance's public kline archives (data.binance.vision), made from the replay exchange's candles.

A day's archive is published once the replay clock has passed the end of that day, a month's once
the month has ended, and only when the file has a candle in the period (before a listing Binance
has no archive either). Each zip holds one csv of 12 columns without header, every field the very
text ``/api/v3/klines`` answers for the same candle, so a client reading the archive stores the
same values as one paging klines. Times are in milliseconds before 2025, in microseconds from
2025-01-01 on, as Binance spot writes them.

Archive faults hold for one period (a month or a day) until cleared, written ``KIND@PERIOD``:

- ``checksum@2023-03``: the ``.CHECKSUM`` states another digest than the zip's;
- ``missing@2023-03``: the zip and its ``.CHECKSUM`` are 404;
- ``truncate@2023-03``: the zip is announced in full (Content-Length) but only half of it is sent
  before the connection closes;
- ``micros@2023-03``: the times are in microseconds although the period is before 2025;
- ``revise@2023-03``: the archive is republished: every volume and quote volume times 1.01, with
  a ``.CHECKSUM`` of the new bytes.

``write_archive_tree`` writes the published archives into a folder in Binance's layout, a local
archive source for benchmarks.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from btc_lifecycle.domain.archives import Archive, checksum_line
from btc_lifecycle.domain.candles import interval_ms
from btc_lifecycle.replay_exchange.binance_shapes import KlineSeries
from btc_lifecycle.replay_exchange.clock import default_start_ms
from btc_lifecycle.replay_exchange.markets import markets_by_id

ARCHIVE_FAULT_KINDS = ("checksum", "missing", "truncate", "micros", "revise")
MICROSECONDS_FROM = pd.Timestamp("2025-01-01", tz="UTC")  # Binance spot archives switch unit here
REVISED_VOLUME = 1.01
DAY_MS = 86_400_000
# Speed over size: level 1 deflates a year of minutes several times faster than the default and
# every zip reader reads it the same.
COMPRESS_LEVEL = 1
_PERIOD = re.compile(r"^\d{4}-\d\d(?:-\d\d)?$")
# "0000" to "9999" as one 4-byte cell each: _digits looks four digits up at once.
_QUADS = np.frombuffer("".join(f"{n:04d}" for n in range(10_000)).encode(), np.uint32)


@dataclass(frozen=True)
class ArchiveFault:
    """A fault of the archive of one period: ``kind`` is one of ``ARCHIVE_FAULT_KINDS``."""

    kind: str
    period: str  # 2023-03 (the month's archive) or 2023-03-05 (the day's)

    def __str__(self) -> str:
        return f"{self.kind}@{self.period}"


def parse_archive_fault(spec: str) -> ArchiveFault:
    """An ``ArchiveFault`` from ``KIND@PERIOD``, e.g. ``missing@2023-03`` or ``checksum@2023-03-05``."""
    kind, _, period = spec.partition("@")
    if kind in ARCHIVE_FAULT_KINDS and _PERIOD.match(period) and _is_date(period):
        return ArchiveFault(kind, period)
    raise ValueError(
        f"archive fault {spec!r}: expected KIND@PERIOD with KIND one of {', '.join(ARCHIVE_FAULT_KINDS)} "
        "and PERIOD a month (2023-03) or a day (2023-03-05)"
    )


def _is_date(period: str) -> bool:
    try:
        return Archive("BTCUSDT", "1m", period).start is not None
    except ValueError:  # 2023-02-30, 2023-13
        return False


@dataclass(frozen=True)
class ArchiveFile:
    """What the archive host answers for a path: the body, its type, and whether to cut it."""

    body: bytes
    content_type: str
    truncated: bool = False


class ArchiveTree:
    """The archives of ``series`` (``{symbol: KlineSeries}``) as published by ``now_ms()``."""

    def __init__(
        self,
        series: dict[str, KlineSeries],
        interval: str,
        now_ms: Callable[[], int],
        faults: list[ArchiveFault | str] | tuple[ArchiveFault | str, ...] = (),
    ) -> None:
        self.series, self.interval, self.now_ms = series, interval, now_ms
        self._faults: list[ArchiveFault] = []
        self._built: dict[tuple[Archive, bool, bool], tuple[bytes, str]] = {}
        # The csv of the month formatted last, and where its rows end: its days are cut from it.
        self._month: tuple[tuple[Archive, bool, bool] | None, bytes, np.ndarray] = (None, b"", np.zeros(1, "int64"))
        self._lock = threading.Lock()
        for fault in faults:
            self.add_fault(fault)

    def add_fault(self, fault: ArchiveFault | str) -> None:
        fault = fault if isinstance(fault, ArchiveFault) else parse_archive_fault(str(fault))
        with self._lock:
            if fault not in self._faults:
                self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def fault_state(self) -> dict:
        with self._lock:
            return {"faults": [str(fault) for fault in self._faults]}

    def faults_for(self, archive: Archive) -> set[str]:
        with self._lock:
            return {fault.kind for fault in self._faults if fault.period == archive.period}

    def rows(self, archive: Archive) -> tuple[int, int]:
        """The series' rows ``[low, high)`` that open inside the archive's period."""
        series = self.series[archive.symbol]
        bounds = [_epoch_ms(archive.start), _epoch_ms(archive.end)]
        low, high = np.searchsorted(series.open_ms, bounds, side="left")
        return int(low), int(high)

    def published(self, archive: Archive, now_ms: int | None = None) -> bool:
        """Whether the archive exists: a known series, a period that has ended, candles in it."""
        if archive.symbol not in self.series or archive.interval != self.interval or not _is_date(archive.period):
            return False
        now_ms = self.now_ms() if now_ms is None else now_ms
        low, high = self.rows(archive)
        return now_ms >= _epoch_ms(archive.end) and high > low

    def archives(self, now_ms: int | None = None) -> list[Archive]:
        """Every published archive, monthly and daily (Binance publishes both), in path order."""
        now_ms = self.now_ms() if now_ms is None else now_ms
        found = set()
        for symbol, series in self.series.items():
            days = pd.to_datetime(np.unique(series.open_ms // DAY_MS) * DAY_MS, unit="ms", utc=True)
            for period in {*days.strftime("%Y-%m"), *days.strftime("%Y-%m-%d")}:
                found.add(Archive(symbol, self.interval, period))
        return sorted(archive for archive in found if self.published(archive, now_ms))

    def zip_and_digest(self, archive: Archive) -> tuple[bytes, str]:
        """The zip as published (``micros`` and ``revise`` faults applied) and its SHA-256; built
        once per archive and fault state."""
        kinds = self.faults_for(archive)
        key = (archive, "micros" in kinds or archive.start >= MICROSECONDS_FROM, "revise" in kinds)
        with self._lock:
            built = self._built.get(key)
        if built is None:
            data = kline_zip(archive, self._csv(*key))
            built = data, hashlib.sha256(data).hexdigest()
            with self._lock:
                self._built[key] = built
        return built

    def _csv(self, archive: Archive, micros: bool, revise: bool) -> bytes:
        """The archive's csv, cut from its month's: a month and its days format each row once."""
        month = Archive(archive.symbol, archive.interval, archive.period[:7])
        first, _ = self.rows(month)
        with self._lock:
            key, text, ends = self._month
        if key != (month, micros, revise):
            text, ends = kline_csv(self.series[archive.symbol], *self.rows(month), micros, revise)
            ends = np.concatenate([[0], ends])
            with self._lock:
                self._month = (month, micros, revise), text, ends
        low, high = self.rows(archive)
        return text[ends[low - first] : ends[high - first]]

    def checksum_text(self, archive: Archive) -> str:
        data, _ = self.zip_and_digest(archive)
        if "checksum" in self.faults_for(archive):
            return checksum_line(data + b"\0", archive.name)  # the digest of other bytes
        return checksum_line(data, archive.name)

    def file(self, path: str) -> ArchiveFile | None:
        """The answer for ``path`` (``data/spot/...``, a leading slash allowed); None is a 404."""
        path = path.lstrip("/")
        zip_path = path.removesuffix(".CHECKSUM")
        archive = Archive.from_name(zip_path.rsplit("/", 1)[-1])
        if archive is None or archive.path != zip_path or not self.published(archive):
            return None
        kinds = self.faults_for(archive)
        if "missing" in kinds:
            return None
        if path != zip_path:
            return ArchiveFile(self.checksum_text(archive).encode(), "text/plain")
        data, _ = self.zip_and_digest(archive)
        return ArchiveFile(data, "application/zip", truncated="truncate" in kinds)


def write_archive_tree(
    candles: pd.DataFrame | dict[str, pd.DataFrame],
    folder: Path,
    symbol: str = "BTCUSDT",
    interval: str = "1m",
    now_ms: int | None = None,
) -> list[Archive]:
    """Write every archive published by ``now_ms`` (default: the close of the last candle of the
    file that ends last, the replay exchange's default start) and its ``.CHECKSUM`` under
    ``folder`` in Binance's layout; returns the archives written. ``candles`` is one frame (the
    market ``symbol``) or ``{symbol: frame}``, each market under its Binance id (``BTC/USD`` ->
    ``.../klines/BTCUSD/...``)."""
    named = candles if isinstance(candles, dict) else {symbol: candles}
    markets = markets_by_id(list(named))
    series = {
        market.id: KlineSeries(frame, interval) for market, frame in zip(markets.values(), named.values(), strict=True)
    }
    if now_ms is None:
        now_ms = max(default_start_ms(frame, interval_ms(interval)) for frame in named.values())
    tree = ArchiveTree(series, interval, lambda: now_ms)
    archives = tree.archives()
    for archive in archives:
        target = Path(folder) / archive.path
        target.parent.mkdir(parents=True, exist_ok=True)
        data, _ = tree.zip_and_digest(archive)
        target.write_bytes(data)
        (Path(folder) / archive.checksum_path).write_text(tree.checksum_text(archive))
    return archives


def kline_zip(archive: Archive, csv: bytes) -> bytes:
    """The archive's zip: its one csv, deflated, the same bytes every time."""
    # A fixed member time (the period's end, when Binance would write it) keeps the checksum
    # stable across rebuilds.
    member = zipfile.ZipInfo(archive.name.removesuffix(".zip") + ".csv", archive.end.timetuple()[:6])
    member.compress_type = zipfile.ZIP_DEFLATED
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr(member, csv, compresslevel=COMPRESS_LEVEL)
    return buffer.getvalue()


def kline_csv(
    series: KlineSeries, low: int, high: int, micros: bool = False, revise: bool = False
) -> tuple[bytes, np.ndarray]:
    """Rows ``[low, high)`` as Binance's archive csv, the klines endpoint's fields comma-joined,
    and where each row ends in it.

    Vectorised: every field becomes a block of ASCII columns, one row per candle, with NUL bytes
    where a number is shorter than its column; the blocks side by side, NULs dropped, are the csv.
    """
    values = series.values[low:high].copy()
    if revise:
        values[:, 4:6] *= REVISED_VOLUME  # volume and quote volume
    opened = series.open_ms[low:high].astype("int64")
    step = series.step_ms
    if micros:
        opened, step = opened * 1000, step * 1000
    o, h, l, c, v, qv, trades, taker_base, taker_quote = values.T
    fields = [
        [_digits(opened)],
        *(_fixed8(number) for number in (o, h, l, c, v)),
        [_digits(opened + step - 1)],
        _fixed8(qv),
        [_digits(trades.astype("int64"))],
        _fixed8(taker_base),
        _fixed8(taker_quote),
        [_text("0\n", len(opened))],
    ]
    comma = _text(",", len(opened))
    table = np.hstack([block for field in fields for block in (*field, comma)][:-1])
    text = table.ravel()
    return text[text != 0].tobytes(), np.cumsum(np.count_nonzero(table, axis=1))


def _text(constant: str, rows: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(constant.encode(), np.uint8), (rows, len(constant)))


def _digits(numbers: np.ndarray, width: int | None = None) -> np.ndarray:
    """Non-negative integers as ASCII digits, one row each: with ``width`` zero-padded to it, else
    as ``str`` prints them, the leading zeros NUL. Four digits at a time, from a table."""
    padded = width is not None
    if width is None:
        width = len(str(int(numbers.max()))) if len(numbers) else 1
    quads = -(-width // 4)
    text = np.empty((len(numbers), quads), np.uint32)
    rest = numbers
    for k in range(quads - 1, -1, -1):
        rest, quad = np.divmod(rest, 10_000)
        text[:, k] = _QUADS[quad]
    text = text.view(np.uint8)[:, 4 * quads - width :]
    if not padded:  # zero itself is "0": the last digit always stays
        text[:, :-1][numbers[:, None] < 10 ** np.arange(width - 1, 0, -1, dtype="int64")] = 0
    return text


def _fixed8(numbers: np.ndarray) -> list[np.ndarray]:
    """``"%.8f" % x`` for every finite x (the klines endpoint's digits), as blocks of ASCII rows.

    ``x - floor(x)`` is exact; times 1e8 it is off by under 1e-8, so rounding it gives the
    correctly rounded eight decimals unless it lies next to a half: those few, Python formats.
    """
    magnitude = np.abs(numbers)
    whole = np.floor(magnitude)
    scaled = (magnitude - whole) * 1e8
    decimals = np.rint(scaled)
    whole = whole.astype("int64") + (decimals == 1e8)  # 0.999999999 rounds up to 1.00000000
    decimals = decimals.astype("int64") % 100_000_000
    for at in np.flatnonzero(np.abs(scaled % 1 - 0.5) < 1e-6):
        integer, fraction = f"{magnitude[at]:.8f}".split(".")
        whole[at], decimals[at] = int(integer), int(fraction)
    blocks = [_digits(whole), _text(".", len(numbers)), _digits(decimals, 8)]
    if np.signbit(numbers).any():
        blocks.insert(0, np.where(np.signbit(numbers), ord("-"), 0).astype(np.uint8)[:, None])
    return blocks


def _epoch_ms(moment: pd.Timestamp) -> int:
    return int(moment.value // 1_000_000)
