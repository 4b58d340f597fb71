"""Binance's public kline archives (data.binance.vision): which files hold which days, how their
checksums read, and the candles inside them. Pure: names and bytes in, candles out.

Binance publishes every spot kline series as one zip a month and one a day::

    data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03.zip
    data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03-05.zip

each beside a ``.zip.CHECKSUM`` in ``sha256sum`` format (``<hex>  <file name>``). A zip holds one
csv of 12 columns without header; spot open times are in microseconds from 2025 on, in
milliseconds before. Archives are sometimes replaced: the checksum then changes.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
import zlib
from dataclasses import dataclass

import pandas as pd

from btc_lifecycle.domain.candle_files import CandleFileError, read_candle_text

DAY = pd.Timedelta(days=1)
MARKET_PATH = "data/spot"
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<interval>\w+)-(?P<period>\d{4}-\d\d(?:-\d\d)?)\.zip$")
_CHECKSUM_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64}) [ *](?P<name>\S+)$")


class ArchiveError(CandleFileError):
    """An archive that cannot be trusted or read; the message names the archive and what is wrong."""


class ArchiveMissing(ArchiveError):
    """The archive is not published (HTTP 404, or no such file in a local tree)."""


@dataclass(frozen=True, order=True)
class Archive:
    """One published zip: a month (``period`` 2024-03) or a day (2024-03-05) of one series."""

    symbol: str  # the market id, as in the path: BTCUSDT
    interval: str
    period: str

    @classmethod
    def from_name(cls, name: str) -> Archive | None:
        """The archive a file name such as ``BTCUSDT-1m-2024-03.zip`` stands for, else None."""
        match = _NAME.match(name)
        return cls(match["symbol"], match["interval"], match["period"]) if match else None

    @property
    def monthly(self) -> bool:
        return len(self.period) == len("2024-03")

    @property
    def name(self) -> str:
        return f"{self.symbol}-{self.interval}-{self.period}.zip"

    @property
    def path(self) -> str:
        """The path under the archive host's base URL."""
        cadence = "monthly" if self.monthly else "daily"
        return f"{MARKET_PATH}/{cadence}/klines/{self.symbol}/{self.interval}/{self.name}"

    @property
    def checksum_path(self) -> str:
        return f"{self.path}.CHECKSUM"

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.period + ("-01" if self.monthly else ""), tz="UTC")

    @property
    def end(self) -> pd.Timestamp:
        """The first moment after the archive's period."""
        return self.start + (pd.offsets.MonthBegin(1) if self.monthly else DAY)

    def days(self) -> list[pd.Timestamp]:
        return list(pd.date_range(self.start, self.end - DAY, freq="D"))

    def daily(self) -> list[Archive]:
        """The day archives that hold the same candles as this one."""
        return [Archive(self.symbol, self.interval, day.strftime("%Y-%m-%d")) for day in self.days()]


def archives_for(symbol: str, interval: str, start: pd.Timestamp, end: pd.Timestamp) -> list[Archive]:
    """The archives that hold the UTC days of [start, end): a month's archive where the whole
    month is wanted, day archives for the rest. ``start`` and ``end`` are midnights."""
    archives = []
    day = start
    while day < end:
        month_end = day + pd.offsets.MonthBegin(1)
        if day.day == 1 and month_end <= end:
            archives.append(Archive(symbol, interval, day.strftime("%Y-%m")))
            day = month_end
        else:
            archives.append(Archive(symbol, interval, day.strftime("%Y-%m-%d")))
            day += DAY
    return archives


def checksum_line(data: bytes, name: str) -> str:
    """A ``.CHECKSUM`` file's text for ``data``, as ``sha256sum`` writes it."""
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n"


def published_checksum(text: str, archive: Archive) -> str:
    """The SHA-256 (lower-case hex) a ``.CHECKSUM`` file states for ``archive``."""
    for line in text.splitlines():
        match = _CHECKSUM_LINE.match(line.strip())
        if match and match["name"] == archive.name:
            return match["digest"].lower()
    shown = text.strip()[:120] or "an empty file"
    raise ArchiveError(f"{archive.checksum_path}: no sha256sum line for {archive.name}; it holds {shown!r}")


def verified(data: bytes, checksum: str, archive: Archive) -> str:
    """``data``'s SHA-256 when it is the published ``checksum``; a mismatch is an ``ArchiveError``."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != checksum:
        raise ArchiveError(
            f"{archive.path}: checksum mismatch: the {len(data):,} bytes hash to {digest[:16]}…, "
            f"the published .CHECKSUM says {checksum[:16]}… (a cut download, or a replaced archive)"
        )
    return digest


def read_archive(data: bytes, archive: Archive) -> pd.DataFrame:
    """The candles of a verified archive: one csv in the zip, 12 columns without header, every
    open time inside the archive's period and on the interval's grid."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            members = [name for name in bundle.namelist() if not name.endswith("/")]
            if len(members) != 1:
                raise ArchiveError(f"{archive.path}: holds {len(members)} files, not one csv")
            text = bundle.read(members[0]).decode("utf-8-sig")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        raise ArchiveError(f"{archive.path}: truncated or corrupt zip ({error})") from None
    except UnicodeDecodeError:
        raise ArchiveError(f"{archive.path}: the csv is not UTF-8 text") from None
    source = f"{archive.path} ({members[0]})"
    if not text.strip():
        raise ArchiveError(f"{source}: empty csv")
    try:
        return read_candle_text(source, text, archive.interval, period=(archive.start, archive.end), vision=True)
    except CandleFileError as error:
        raise ArchiveError(str(error)) from None
