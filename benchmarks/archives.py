"""Figure 13: a year of candles from Binance's archives in a local folder into an empty store.

The work of raw_candles over a year-long range, without Dagster's run around it
(``fetch_days`` + ``store_days``): the year's archives (eleven months and the last month's days
but the final two) read from a folder in data.binance.vision's layout, each checked against its
``.CHECKSUM``, and the final two days paged from the replay exchange through ccxt; then the days
written to an empty DuckDB file with their archive records. The folder is written before the
clock starts (``write_archive_tree``). Target: ≤ 10 s.

13b beside it: the same year paged through the klines endpoint alone, what every ingest did
before the archives.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

from benchmarks.backfill import _Quiet, write_candle_csv
from benchmarks.harness import Figure, Timing, say, time_runs
from btc_lifecycle.adapters.archives import ArchiveSource
from btc_lifecycle.adapters.candle_days import fetch_days, store_days
from btc_lifecycle.adapters.exchange import CandleClient, RetryPolicy, make_ccxt_client
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.launch import replay_exchange
from btc_lifecycle.replay_exchange.archives import write_archive_tree

DAYS = 365
TARGET_SECONDS = 10.0
SERIES = CandleSeries(table="candles", symbol="BTC/USDT", interval="1m")


def ingest_year(url: str, archives: Path | None, database: Path, first: pd.Timestamp, end: pd.Timestamp) -> int:
    client = CandleClient(make_ccxt_client(api_url=url), RetryPolicy(), _Quiet())
    source = ArchiveSource(str(archives)) if archives is not None else None
    fetched = fetch_days(client, SERIES, first, end, 1000, source, _Quiet())
    with duckdb.connect(str(database)) as conn:
        return store_days(conn, SERIES, fetched, first, end).candles.rows


def run(options: argparse.Namespace) -> list[Figure]:
    candles = synthetic_candles(DAYS * 1440, start="2024-01-01T00:00:00Z")
    first = candles["open_time"].iloc[0]
    end = first + pd.Timedelta(days=DAYS)
    archived, paged = Timing(), Timing()
    with tempfile.TemporaryDirectory(prefix="bench-archives-") as name:
        folder = Path(name)
        path = write_candle_csv(candles, folder / "candles_1y.csv")
        archives = folder / "vision"
        written = write_archive_tree(candles, archives)
        say(f"archives: {len(written)} files written under {archives}")
        rows = []
        with replay_exchange(path, ["--speed", "0"], announce=None) as url:
            for number in range(options.runs):  # interleaved: a busy moment hits both sides alike
                database = folder / f"archived{number}.duckdb"
                time_runs(lambda: rows.append(ingest_year(url, archives, database, first, end)), 1, timing=archived)
                database.unlink()
                if not options.quick:
                    database = folder / f"paged{number}.duckdb"
                    time_runs(lambda: ingest_year(url, None, database, first, end), 1, timing=paged)
                    database.unlink()
        shutil.rmtree(archives)
    assert rows[-1] == len(candles), f"stored {rows[-1]} of {len(candles)} candles"
    paged_note = f"; paged through klines alone {paged.median:.2f} s ({paged.median / archived.median:.1f}×)"
    return [
        Figure(
            key="13",
            name=f"a year ({len(candles):,} candles) from local archives into an empty store: "
            "checksums, reading, the last two days through ccxt, the write",
            runs=archived.wall,
            cpu_seconds=archived.cpu,
            target=f"≤ {TARGET_SECONDS:g} s",
            met=archived.median <= TARGET_SECONDS,
            throughput=f"{len(candles) / archived.median:,.0f} candles/s",
            ratio=paged_note.removeprefix("; ") if paged.wall else "",
            notes=f"{len(written)} archives (months and days, as Binance publishes both); the plan reads "
            "11 month archives and 29 day archives, the final 2 days through the replay exchange",
        )
    ]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
