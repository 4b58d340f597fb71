"""Days of candles into the store: the work of the raw_candles asset without Dagster around it
(the asset, ``make history``, the benchmarks and the tests call these).

Days before yesterday (by the exchange's clock) come from Binance's archives when an archive
source is given; yesterday, today, and any day no archive is published for come from the
exchange through ccxt. Both land in the store through the same window write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from btc_lifecycle.adapters.archives import ArchivedDays, ArchiveSource, fetch_archived_days
from btc_lifecycle.adapters.feature_store import (
    WindowWrite,
    archive_sources_between,
    replace_archive_sources_between,
    replace_candles_between,
)
from btc_lifecycle.domain.candles import empty_candle_frame, sort_and_deduplicate

if TYPE_CHECKING:
    import duckdb

    from btc_lifecycle.adapters.exchange import CandleClient, FetchResult, Log
    from btc_lifecycle.domain.archives import Archive
    from btc_lifecycle.domain.candles import CandleSeries

DAY = pd.Timedelta(days=1)


class DaysNotStarted(ValueError):
    """The days asked for begin after the exchange's clock: nothing has traded there yet."""


@dataclass(frozen=True)
class DaysFetched:
    """Every closed candle of a window of days, and where they came from."""

    candles: pd.DataFrame
    exchange: FetchResult  # what ccxt brought: the newest days and days without an archive
    archived: ArchivedDays | None = None  # what the archives brought, when they were asked

    @property
    def server_time(self) -> pd.Timestamp:
        return self.exchange.server_time


@dataclass(frozen=True)
class DaysWrite:
    """What storing a window of days did."""

    candles: WindowWrite
    revised_archives: list[str] = field(default_factory=list)  # archives whose checksum changed


def fetch_days(
    client: CandleClient,
    series: CandleSeries,
    start: pd.Timestamp,
    end: pd.Timestamp,
    limit: int,
    archives: ArchiveSource | None = None,
    log: Log | None = None,
    progress: Callable[[Archive, int, int], None] | None = None,
) -> DaysFetched:
    """Every closed candle of [start, end): archived days from ``archives``, the rest page by
    page from the exchange, up to its now."""
    now = client.server_time()
    if start >= now:
        raise DaysNotStarted(
            f"the day(s) from {start.date()} start after the exchange's clock "
            f"({now.isoformat()}): nothing has traded there yet"
        )
    recent = max(start, now.floor("D") - DAY) if archives is not None else start
    archived = None
    exchange_windows = [(recent, end)] if recent < end else []
    if archives is not None and start < min(end, recent):
        archived = fetch_archived_days(archives, series, start, min(end, recent), log or client.log, progress)
        exchange_windows = _day_runs(archived.missing) + exchange_windows
    results = [
        client.fetch_closed_candles(series.symbol, series.interval, first, limit, until=last, now=now)
        for first, last in exchange_windows
    ]
    exchange = _combined(results, now)
    frames = [frame for frame in (archived.candles if archived else None, exchange.candles) if frame is not None]
    candles, _ = sort_and_deduplicate(pd.concat(frames, ignore_index=True), f"{series.symbol} days")
    return DaysFetched(candles, exchange, archived)


def store_days(
    conn: duckdb.DuckDBPyConnection, series: CandleSeries, fetched: DaysFetched, start: pd.Timestamp, end: pd.Timestamp
) -> DaysWrite:
    """Make the store hold exactly the fetched candles for the days they cover, and record which
    archive each archived day came from.

    An exchange that stopped answering mid-window (``stopped_at``) replaces only what it covered:
    the stored candles after that point stay, and the next materialization resumes. A day whose
    archive's checksum differs from the one recorded was republished: it is replaced like any
    other and named in ``revised_archives``.
    """
    stopped_at = fetched.exchange.stopped_at
    covered_end = min(end, stopped_at) if stopped_at is not None else end
    before = archive_sources_between(conn, series, start, covered_end)
    candles = fetched.candles.loc[fetched.candles["open_time"] < covered_end]
    write = replace_candles_between(conn, series, candles, start, covered_end)
    sources = _source_rows(fetched.archived, covered_end)
    replace_archive_sources_between(conn, series, sources, start, covered_end)
    revised = before.merge(sources, on=["open_time", "archive"], suffixes=("_before", ""))
    changed = revised.loc[revised["sha256_before"] != revised["sha256"], "archive"]
    return DaysWrite(write, sorted(set(changed)))


def _source_rows(archived: ArchivedDays | None, end: pd.Timestamp) -> pd.DataFrame:
    days = sorted(day for day in (archived.sources if archived else {}) if day < end)
    return pd.DataFrame(
        {
            "open_time": pd.DatetimeIndex(days, tz="UTC") if days else pd.DatetimeIndex([], tz="UTC"),
            "archive": pd.Series([archived.sources[day].archive.name for day in days], dtype="object"),
            "sha256": pd.Series([archived.sources[day].sha256 for day in days], dtype="object"),
        }
    )


def _day_runs(days: list[pd.Timestamp]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Consecutive days as [first, last + 1 day) windows."""
    runs: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for day in sorted(days):
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + DAY)
        else:
            runs.append((day, day + DAY))
    return runs


def _combined(results: list[FetchResult], now: pd.Timestamp) -> FetchResult:
    """Several exchange fetches as one: their candles together, their counts summed."""
    from btc_lifecycle.adapters.exchange import FetchResult  # imports ccxt: only where candles are fetched

    if not results:
        return FetchResult(empty_candle_frame(), now, 0, 0, 0, 0)
    last = results[-1]  # the client counts retries across its fetches
    return FetchResult(
        candles=pd.concat([result.candles for result in results], ignore_index=True),
        server_time=last.server_time,
        pages=sum(result.pages for result in results),
        retries=last.retries,
        duplicates_dropped=sum(result.duplicates_dropped for result in results),
        forming_dropped=sum(result.forming_dropped for result in results),
        retry_reasons=last.retry_reasons,
        stopped_at=next((result.stopped_at for result in results if result.stopped_at is not None), None),
    )
