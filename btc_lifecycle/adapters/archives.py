"""Binance's kline archives from data.binance.vision, a mirror, or a folder in the same layout:
downloaded with retries, checked against their published checksum, read into candles.

Only ``fetch_archived_days`` decides anything: a month nobody published falls back to its day
archives, and a day nobody published is left for the exchange (``ArchivedDays.missing``). An
archive that is published but wrong (checksum, zip, rows) is an ``ArchiveError``: nothing is
fetched around it, so nothing is stored from it.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from btc_lifecycle.adapters.retry_policy import Log, RetryPolicy
from btc_lifecycle.domain.archives import (
    Archive,
    ArchiveError,
    ArchiveMissing,
    archives_for,
    published_checksum,
    read_archive,
    verified,
)
from btc_lifecycle.domain.candles import CandleSeries, empty_candle_frame

LIVE_ARCHIVES = "https://data.binance.vision"


class _Transient(Exception):
    """A download that may work when tried again: a cut body, a timeout, a 5xx or 429."""


@dataclass(frozen=True)
class FetchedArchive:
    archive: Archive
    sha256: str
    candles: pd.DataFrame


@dataclass(frozen=True)
class ArchivedDays:
    """What the archives hold of a window of whole days."""

    candles: pd.DataFrame
    sources: dict[pd.Timestamp, FetchedArchive]  # each archived day: the archive it came from
    missing: list[pd.Timestamp]  # days no archive is published for
    notes: list[str] = field(default_factory=list)  # fallbacks taken, for the log and metadata


class ArchiveSource:
    """Archives under ``base_url``: an http(s) host, a ``file://`` URL or a folder path."""

    def __init__(
        self,
        base_url: str,
        timeout_seconds: float = 30.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        scheme = urlsplit(self.base_url).scheme
        self.folder = (
            None if scheme in ("http", "https") else Path(urlsplit(self.base_url).path if scheme else base_url)
        )
        self.timeout_seconds = timeout_seconds
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.downloads = 0
        self.retries = 0

    def _read(self, path: str) -> bytes:
        if self.folder is not None:
            try:
                return (self.folder / path).read_bytes()
            except FileNotFoundError:
                raise ArchiveMissing(f"{self.folder / path}: no such file") from None
        url = f"{self.base_url}/{path}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_seconds) as response:  # noqa: S310 - http(s) only
                return response.read()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                raise ArchiveMissing(f"{url}: not published (HTTP 404)") from None
            if error.code == 429 or error.code >= 500:
                raise _Transient(f"{url}: HTTP {error.code}") from None
            raise ArchiveError(f"{url}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            # A refused connection, a timeout, a body cut before its Content-Length.
            raise _Transient(f"{url}: {type(error).__name__}: {error}") from None

    def get(self, path: str) -> bytes:
        """The bytes at ``path``, transient failures retried with the policy's backoff."""
        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.policy.max_retries + 1),
            wait=lambda state: self.policy.delay(state.attempt_number - 1, None),
            before_sleep=lambda _state: setattr(self, "retries", self.retries + 1),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            data = retrying(self._read, path)
        except _Transient as error:
            raise ArchiveError(f"{error} (still failing after {self.policy.max_retries + 1} attempts)") from None
        self.downloads += 1
        return data

    def fetch(self, archive: Archive) -> FetchedArchive:
        """One archive, verified against its ``.CHECKSUM`` before a row is read."""
        checksum = published_checksum(self.get(archive.checksum_path).decode("utf-8", "replace"), archive)
        data = self.get(archive.path)
        return FetchedArchive(archive, verified(data, checksum, archive), read_archive(data, archive))


def fetch_archived_days(
    source: ArchiveSource,
    series: CandleSeries,
    start: pd.Timestamp,
    end: pd.Timestamp,
    log: Log,
    progress: Callable[[Archive, int, int], None] | None = None,
) -> ArchivedDays:
    """The candles of the UTC days [start, end) from the archives: a month's archive where the
    whole month is wanted, day archives for the rest and for months not (yet) published."""
    market_id = series.symbol.replace("/", "")
    planned = archives_for(market_id, series.interval, start, end)
    frames, sources, missing, notes = [], {}, [], []
    for number, archive in enumerate(planned, 1):
        for part in _published_parts(source, archive, missing, notes, log):
            frames.append(part.candles)
            sources.update(dict.fromkeys(part.archive.days(), part))
        if progress is not None:
            progress(archive, number, len(planned))
    candles = pd.concat(frames, ignore_index=True) if frames else empty_candle_frame()
    return ArchivedDays(candles, sources, missing, notes)


def _published_parts(
    source: ArchiveSource, archive: Archive, missing: list, notes: list, log: Log
) -> list[FetchedArchive]:
    try:
        return [source.fetch(archive)]
    except ArchiveMissing as gone:
        if not archive.monthly:
            notes.append(f"{archive.name} is not published: {archive.period} comes from the exchange")
            log.warning(f"{gone}; fetching {archive.period} from the exchange instead")
            missing.extend(archive.days())
            return []
        notes.append(f"{archive.name} is not published: its days come from day archives")
        log.info(f"{gone}; reading {archive.period} from its day archives")
        return [part for day in archive.daily() for part in _published_parts(source, day, missing, notes, log)]
