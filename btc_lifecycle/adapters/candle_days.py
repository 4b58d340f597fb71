"""Days of candles from the exchange into the store: the work of the raw_candles asset without
Dagster around it (the asset, the benchmark and the tests call these)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from btc_lifecycle.adapters.feature_store import WindowWrite, replace_candles_between

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from btc_lifecycle.adapters.exchange import CandleClient, FetchResult
    from btc_lifecycle.domain.candles import CandleSeries


class DaysNotStarted(ValueError):
    """The days asked for begin after the exchange's clock: nothing has traded there yet."""


def fetch_days(
    client: CandleClient, series: CandleSeries, start: pd.Timestamp, end: pd.Timestamp, limit: int
) -> FetchResult:
    """Every closed candle of [start, end), page by page, up to the exchange's now."""
    fetched = client.fetch_closed_candles(series.symbol, series.interval, start, limit, until=end)
    if start >= fetched.server_time:
        raise DaysNotStarted(
            f"the day(s) from {start.date()} start after the exchange's clock "
            f"({fetched.server_time.isoformat()}): nothing has traded there yet"
        )
    return fetched


def store_days(
    conn: duckdb.DuckDBPyConnection, series: CandleSeries, fetched: FetchResult, start: pd.Timestamp, end: pd.Timestamp
) -> WindowWrite:
    """Make the store hold exactly the fetched candles for the days they cover, in one transaction.

    An exchange that stopped answering mid-window (``stopped_at``) replaces only what it covered:
    the stored candles after that point stay, and the next materialization resumes.
    """
    covered_end = min(end, fetched.stopped_at) if fetched.stopped_at is not None else end
    return replace_candles_between(conn, series, fetched.candles, start, covered_end)
