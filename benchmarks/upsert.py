"""Figure 2: ``upsert_candles`` of 1,000,000 candles into an empty and a full table.

Against a plain ``INSERT INTO t SELECT * FROM arrow_table`` into the same schema (primary key
included), the Arrow table prepared outside the timing: the floor for writing these rows.
Every run writes a fresh DuckDB file, so each empty-table run really starts empty.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa

from benchmarks.harness import Figure, Timing, peak_rss_mb, reset_peak_rss, time_runs
from btc_lifecycle.adapters.feature_store import (
    _CANDLE_SCHEMA,
    _to_store_frame,
    ensure_candle_table,
    upsert_candles,
)
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.synthetic import synthetic_candles

ROWS = 1_000_000
SERIES = CandleSeries(table="candles", symbol="BTC/USDT", interval="1m")


def run(options: argparse.Namespace) -> list[Figure]:
    candles = synthetic_candles(ROWS, start="2020-01-01T00:00:00Z")
    arrow = pa.Table.from_pandas(_to_store_frame(SERIES, candles), preserve_index=False)
    empty, full, plain, unkeyed = Timing(), Timing(), Timing(), Timing()
    reset_peak_rss()
    with tempfile.TemporaryDirectory(prefix="bench-upsert-") as folder:
        for run_number in range(options.runs):  # interleaved: a busy moment hits every side
            path = Path(folder) / f"upsert{run_number}.duckdb"
            with duckdb.connect(str(path)) as conn:
                inserted = {}
                time_runs(lambda: inserted.__setitem__("empty", upsert_candles(conn, SERIES, candles)), 1, timing=empty)
                time_runs(lambda: inserted.__setitem__("full", upsert_candles(conn, SERIES, candles)), 1, timing=full)
                assert inserted == {"empty": ROWS, "full": 0}, inserted
            with duckdb.connect(str(Path(folder) / f"plain{run_number}.duckdb")) as conn:
                ensure_candle_table(conn, SERIES.table)
                conn.register("arrow_rows", arrow)
                time_runs(lambda: conn.execute("INSERT INTO candles SELECT * FROM arrow_rows"), 1, timing=plain)
            with duckdb.connect(str(Path(folder) / f"unkeyed{run_number}.duckdb")) as conn:
                # The bound: the same insert without the primary key's index.
                conn.execute(f"CREATE TABLE candles ({_CANDLE_SCHEMA})")
                conn.register("arrow_rows", arrow)
                time_runs(lambda: conn.execute("INSERT INTO candles SELECT * FROM arrow_rows"), 1, timing=unkeyed)
    peak = peak_rss_mb()
    note = (
        f"plain INSERT from Arrow into the same keyed table: {plain.median:.2f} s ({ROWS / plain.median:,.0f} rows/s)"
    )
    return [
        Figure(
            key="2a",
            name=f"upsert_candles {ROWS:,} candles into an empty table",
            runs=empty.wall,
            cpu_seconds=empty.cpu,
            peak_rss_mb=peak,
            target="≥ 1,000,000 rows/s and ≤ 2× plain insert",
            met=ROWS / empty.median >= 1_000_000 and empty.median <= 2 * plain.median,
            throughput=f"{ROWS / empty.median:,.0f} rows/s",
            ratio=f"{empty.median / plain.median:.2f}× plain INSERT … SELECT from Arrow",
            notes=note,
        ),
        Figure(
            key="2b",
            name=f"upsert_candles {ROWS:,} candles into a full table (all duplicates)",
            runs=full.wall,
            cpu_seconds=full.cpu,
            peak_rss_mb=peak,
            target="≤ 2× plain insert",
            met=full.median <= 2 * plain.median,
            throughput=f"{ROWS / full.median:,.0f} rows/s",
            ratio=f"{full.median / plain.median:.2f}× plain INSERT … SELECT from Arrow",
            notes=note,
        ),
        Figure(
            key="2c",
            name=f"plain INSERT … SELECT of {ROWS:,} rows from Arrow (reference side)",
            runs=plain.wall,
            cpu_seconds=plain.cpu,
            peak_rss_mb=peak,
            target="-",
            met=None,
            throughput=f"{ROWS / plain.median:,.0f} rows/s",
        ),
        Figure(
            key="2d",
            name="the same plain INSERT into a table without the primary key (bound)",
            runs=unkeyed.wall,
            cpu_seconds=unkeyed.cpu,
            peak_rss_mb=peak,
            target="-",
            met=None,
            throughput=f"{ROWS / unkeyed.median:,.0f} rows/s",
            notes="what maintaining the (symbol, interval, open_time) key's ART index costs: "
            f"{plain.median - unkeyed.median:.2f} s of the keyed insert's {plain.median:.2f} s",
        ),
    ]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
