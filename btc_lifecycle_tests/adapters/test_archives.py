"""Days of candles from Binance's archives and the exchange, into the store: what a checksum
mismatch, a missing archive, a cut download and a microsecond file do, and that a run mixing
archives and ccxt stores the same rows as a run through ccxt alone.

The archives come over HTTP from the replay exchange (or from a folder it wrote); the exchange's
candles through the real ccxt client.
"""

from __future__ import annotations

import json
import urllib.request

import duckdb
import pandas as pd
import pytest

from btc_lifecycle.adapters.archives import ArchiveSource, fetch_archived_days
from btc_lifecycle.adapters.candle_days import fetch_days, store_days
from btc_lifecycle.adapters.exchange import CandleClient, RetryPolicy, make_ccxt_client
from btc_lifecycle.adapters.feature_store import archive_sources_between, read_candles
from btc_lifecycle.domain.archives import ArchiveError
from btc_lifecycle.domain.candles import CANDLE_COLUMNS, CandleSeries
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle.replay_exchange.archives import write_archive_tree
from btc_lifecycle_tests.adapters.test_exchange import RecordingLog

SERIES = CandleSeries(table="candles", symbol="BTC/USDT", interval="1m")
FIRST_DAY = pd.Timestamp("2024-01-29", tz="UTC")
DAYS = 36  # 29 January .. 4 March: two days of January, all of February, four days of March
NO_WAIT = RetryPolicy(max_retries=2, initial_seconds=0, max_seconds=0)


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    # Half a day short of the last day: the replay clock stops mid-afternoon of 4 March.
    return synthetic_candles(DAYS * 1440 - 600, start=FIRST_DAY, seed=11)


@pytest.fixture
def exchange(candles):
    with ReplayExchange(candles) as served:
        yield served


def day(number: int) -> pd.Timestamp:
    return FIRST_DAY + pd.Timedelta(days=number)


def client(url: str) -> CandleClient:
    return CandleClient(make_ccxt_client(api_url=url, timeout_seconds=5), NO_WAIT, RecordingLog(), lambda _: None)


def archives(url: str) -> ArchiveSource:
    return ArchiveSource(url, timeout_seconds=5, policy=NO_WAIT, sleep=lambda _: None)


def fault(exchange: ReplayExchange, *specs: str) -> None:
    request = urllib.request.Request(
        f"{exchange.base_url}/replay/archives",
        data=json.dumps({"clear": True, "add": list(specs)}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def stored(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return read_candles(conn, SERIES.table, SERIES.symbol, SERIES.interval, None, None)


def ingest(exchange: ReplayExchange, conn, source: ArchiveSource | None, start=FIRST_DAY, end=None):
    end = end if end is not None else day(DAYS)
    fetched = fetch_days(client(exchange.base_url), SERIES, start, end, 1000, source, RecordingLog())
    return fetched, store_days(conn, SERIES, fetched, start, end)


def test_a_run_mixing_archives_and_ccxt_stores_what_ccxt_alone_stores_row_for_row(exchange, candles):
    with duckdb.connect() as through_ccxt, duckdb.connect() as mixed:
        pure, _ = ingest(exchange, through_ccxt, None)
        fetched, write = ingest(exchange, mixed, archives(exchange.base_url))
        # Days before yesterday (by the replay clock, 4 March) came from the archives: the two
        # January days, February's month archive and 1-2 March.
        assert sorted({source.archive.name for source in fetched.archived.sources.values()}) == [
            "BTCUSDT-1m-2024-01-29.zip",
            "BTCUSDT-1m-2024-01-30.zip",
            "BTCUSDT-1m-2024-01-31.zip",
            "BTCUSDT-1m-2024-02.zip",
            "BTCUSDT-1m-2024-03-01.zip",
            "BTCUSDT-1m-2024-03-02.zip",
        ]
        assert fetched.exchange.pages < pure.exchange.pages
        assert write.candles.rows == len(candles) and write.revised_archives == []
        pd.testing.assert_frame_equal(stored(mixed)[list(CANDLE_COLUMNS)], stored(through_ccxt)[list(CANDLE_COLUMNS)])


def test_each_archived_day_records_its_archive_and_checksum(exchange):
    with duckdb.connect() as conn:
        fetched, _ = ingest(exchange, conn, archives(exchange.base_url))
        records = archive_sources_between(conn, SERIES, FIRST_DAY, day(DAYS))
    assert len(records) == 34  # every day before yesterday
    february = records.loc[records["open_time"] == pd.Timestamp("2024-02-10", tz="UTC")].iloc[0]
    assert february["archive"] == "BTCUSDT-1m-2024-02.zip"
    with urllib.request.urlopen(
        f"{exchange.base_url}/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-02.zip.CHECKSUM"
    ) as answer:
        assert february["sha256"] == answer.read().decode().split()[0]


def test_a_revised_archive_replaces_its_days_and_is_reported(exchange):
    with duckdb.connect() as conn:
        ingest(exchange, conn, archives(exchange.base_url))
        before = stored(conn)
        fault(exchange, "revise@2024-02")
        _, write = ingest(exchange, conn, archives(exchange.base_url))
        after = stored(conn)
    assert write.revised_archives == ["BTCUSDT-1m-2024-02.zip"]
    in_february = (after["open_time"] >= day(3)) & (after["open_time"] < day(32))
    assert (after.loc[in_february, "volume"] != before.loc[in_february, "volume"]).all()
    pd.testing.assert_frame_equal(after.loc[~in_february], before.loc[~in_february])


def test_a_checksum_mismatch_is_a_named_error_and_the_store_keeps_what_it_had(exchange):
    with duckdb.connect() as conn:
        ingest(exchange, conn, archives(exchange.base_url))
        before = stored(conn)
        fault(exchange, "checksum@2024-02")
        with pytest.raises(ArchiveError, match=r"BTCUSDT-1m-2024-02\.zip: checksum mismatch"):
            ingest(exchange, conn, archives(exchange.base_url))
        pd.testing.assert_frame_equal(stored(conn), before)


def test_a_cut_download_is_retried_then_a_named_error(exchange):
    fault(exchange, "truncate@2024-01-30")
    source = archives(exchange.base_url)
    with pytest.raises(ArchiveError, match=r"BTCUSDT-1m-2024-01-30\.zip: .*still failing after 3 attempts"):
        fetch_archived_days(source, SERIES, day(1), day(2), RecordingLog())
    assert source.retries == 2


def test_a_month_not_published_comes_from_its_day_archives(exchange, candles):
    fault(exchange, "missing@2024-02")
    archived = fetch_archived_days(archives(exchange.base_url), SERIES, day(3), day(32), RecordingLog())
    assert {source.archive.name for source in archived.sources.values()} == {
        f"BTCUSDT-1m-2024-02-{number:02d}.zip" for number in range(1, 30)
    }
    assert archived.missing == [] and "BTCUSDT-1m-2024-02.zip is not published" in archived.notes[0]
    assert len(archived.candles) == 29 * 1440


def test_a_day_not_published_comes_from_the_exchange_and_says_so(exchange, candles):
    fault(exchange, "missing@2024-01-30")
    with duckdb.connect() as conn:
        fetched, write = ingest(exchange, conn, archives(exchange.base_url), end=day(3))
        assert fetched.archived.missing == [day(1)]
        assert "BTCUSDT-1m-2024-01-30.zip is not published" in fetched.archived.notes[0]
        assert fetched.exchange.pages >= 1 and write.candles.rows == 3 * 1440
        assert stored(conn)["open_time"].tolist() == candles["open_time"].iloc[: 3 * 1440].tolist()
        assert day(1) not in set(archive_sources_between(conn, SERIES, FIRST_DAY, day(3))["open_time"])


def test_one_fetch_cuts_every_exchange_window_at_one_reading_of_its_clock(exchange):
    class CountedClock(CandleClient):
        readings = 0

        def server_time(self) -> pd.Timestamp:
            self.readings += 1
            return super().server_time()

    # A day without an archive and the newest days: two windows through the exchange.
    fault(exchange, "missing@2024-01-30")
    counted = CountedClock(make_ccxt_client(api_url=exchange.base_url, timeout_seconds=5), NO_WAIT, RecordingLog())
    fetched = fetch_days(counted, SERIES, FIRST_DAY, day(DAYS), 1000, archives(exchange.base_url), RecordingLog())
    assert fetched.archived.missing == [day(1)] and fetched.exchange.pages >= 2
    assert counted.readings == 1


def test_a_microsecond_archive_stores_the_same_candles(exchange):
    with duckdb.connect() as in_ms, duckdb.connect() as in_us:
        ingest(exchange, in_ms, archives(exchange.base_url), end=day(3))
        fault(exchange, "micros@2024-01-30")
        ingest(exchange, in_us, archives(exchange.base_url), end=day(3))
        pd.testing.assert_frame_equal(stored(in_us), stored(in_ms))


def test_a_folder_in_binances_layout_serves_as_the_archive_source(tmp_path, candles):
    write_archive_tree(candles, tmp_path / "vision")
    archived = fetch_archived_days(archives(str(tmp_path / "vision")), SERIES, FIRST_DAY, day(34), RecordingLog())
    assert archived.missing == [] and len(archived.sources) == 34
    pd.testing.assert_frame_equal(
        archived.candles[["open_time", "open", "close", "volume"]],
        candles.iloc[: 34 * 1440][["open_time", "open", "close", "volume"]].reset_index(drop=True),
    )
