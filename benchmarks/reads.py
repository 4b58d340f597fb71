"""Figure 3: ``load_candles_from_duckdb`` of 1,000,000 candles, and ``count_candles`` on 10,000,000.

The loading side is compared with fetching the same rows as plain tuples (``fetchall`` of the
same SELECT on a fresh read-only connection). The 10-million-row table is filled by SQL, so
building it stays cheap; both stores have the project's schema and primary key.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import duckdb

from benchmarks.harness import Figure, Timing, peak_rss_mb, reset_peak_rss, say, time_runs
from btc_lifecycle.adapters.feature_store import ensure_labeled_table, replace_labeled_candles
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.feature_engineering import count_candles, load_candles_from_duckdb

LOADED = 1_000_000
COUNTED = 10_000_000
SERIES = CandleSeries(table="candles", symbol="BTC/USDT", interval="1m")
SELECT = (
    "SELECT symbol, interval, open_time, open, high, low, close, volume, close_time, "
    "price_increase_label FROM candles_labeled WHERE symbol = ? AND interval = ? ORDER BY open_time"
)


def fetch_tuples(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(SELECT, [SERIES.symbol, SERIES.interval]).fetchall()


def fill_counted_store(path: Path, rows: int) -> None:
    with duckdb.connect(str(path)) as conn:
        ensure_labeled_table(conn, SERIES.labeled_table)
        conn.execute(
            "INSERT INTO candles_labeled SELECT ?, ?, t, 1, 1, 1, 1, 1, "
            "t + INTERVAL 59999 MILLISECOND, NULL, NULL, NULL, NULL, (i % 2)::TINYINT "
            "FROM (SELECT i, TIMESTAMP '2000-01-01' + to_minutes(i) AS t FROM range(?) r(i))",
            [SERIES.symbol, SERIES.interval, rows],
        )


def run(options: argparse.Namespace) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as folder:
        loaded = Path(folder) / "loaded.duckdb"
        with duckdb.connect(str(loaded)) as conn:
            replace_labeled_candles(conn, SERIES, label_candles(synthetic_candles(LOADED), "1m"))
        ours, tuples = Timing(), Timing()
        counts = {}
        reset_peak_rss()
        for _ in range(options.runs):
            time_runs(
                lambda: counts.__setitem__(
                    "ours", len(load_candles_from_duckdb(loaded, SERIES.table, SERIES.symbol, SERIES.interval))
                ),
                1,
                timing=ours,
            )
            time_runs(lambda: counts.__setitem__("tuples", len(fetch_tuples(loaded))), 1, timing=tuples)
        load_peak = peak_rss_mb()
        assert counts == {"ours": LOADED, "tuples": LOADED}, counts

        counted = Path(folder) / "counted.duckdb"
        say(f"  filling {COUNTED:,} rows for count_candles (untimed)")
        fill_counted_store(counted, COUNTED)
        reset_peak_rss()
        count = Timing()
        for _ in range(max(options.runs, 5)):
            time_runs(
                lambda: counts.__setitem__(
                    "count", count_candles(counted, SERIES.table, SERIES.symbol, SERIES.interval)
                ),
                1,
                timing=count,
            )
        assert counts["count"] == COUNTED, counts
        count_peak = peak_rss_mb()
    return [
        Figure(
            key="3a",
            name=f"load_candles_from_duckdb {LOADED:,} candles → BitcoinCandle",
            runs=ours.wall,
            cpu_seconds=ours.cpu,
            peak_rss_mb=load_peak,
            target="< 2 s",
            met=ours.median < 2,
            throughput=f"{LOADED / ours.median:,.0f} candles/s",
            ratio=f"{ours.median / tuples.median:.2f}× fetchall of plain tuples ({tuples.median:.2f} s)",
        ),
        Figure(
            key="3b",
            name=f"count_candles on {COUNTED:,} rows",
            runs=count.wall,
            cpu_seconds=count.cpu,
            peak_rss_mb=count_peak,
            target="< 50 ms",
            met=count.median < 0.05,
            notes="includes opening the DuckDB file read-only",
        ),
    ]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
