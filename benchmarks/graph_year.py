"""Figure 8: wall time and peak memory of the whole-graph run on one year of candles (525,600).

The same command as figure 7 (see ``benchmarks.graph``), on synthetic candles ending on 30 Dec
2024. Memory is the peak of the summed PSS of the launcher and all its descendants (replay
exchange, the Dagster processes, kaleido's Chromium), sampled every 0.2 s; the largest single
process's RSS is noted too. ``whole_graph_figure`` measures any number of days
(``benchmarks.graph_years``: three years).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks.backfill import write_candle_csv
from benchmarks.graph import materialize_runs, phase_notes
from benchmarks.harness import Figure
from btc_lifecycle.domain.synthetic import synthetic_candles

DAYS = 365
LIMIT_MB = 2048
LIMIT_SECONDS = 45
# Every figure's candles end on this day: a past day whatever the span, as Dagster's daily
# partitions end at today.
LAST_DAY = pd.Timestamp("2024-12-30", tz="UTC")


def whole_graph_figure(
    key: str, days: int, label: str, runs: int, limit_mb: float | None = None, limit_seconds: float | None = None
) -> Figure:
    """The whole graph on ``days`` days of synthetic candles: wall time, CPU seconds and peak
    memory, against ``limit_seconds`` and ``limit_mb`` when given, else printed."""
    start = LAST_DAY + pd.Timedelta(days=1) - pd.Timedelta(days=days)
    with tempfile.TemporaryDirectory(prefix="bench-graph-year-") as folder:
        candles = write_candle_csv(synthetic_candles(days * 1440, start=start), Path(folder) / f"candles_{days}d.csv")
        results = materialize_runs(candles, runs, label)
    peak = max(result.peak_tree_mb for result in results)
    wall = statistics.median(result.wall for result in results)
    targets = [f"≤ {limit_seconds:g} s"] if limit_seconds else []
    targets += [f"peak < {limit_mb / 1024:g} GB"] if limit_mb else []
    return Figure(
        key=key,
        name=f"whole graph on {days * 1440:,} candles ({label}): wall time and peak memory",
        runs=[result.wall for result in results],
        cpu_seconds=[result.cpu for result in results],
        peak_rss_mb=peak,
        target=", ".join(targets) or "printed",
        met=(wall <= (limit_seconds or wall) and peak < (limit_mb or peak + 1)) if targets else None,
        ratio=f"{statistics.median((r.wall - r.steps_total) / r.wall for r in results):.0%} of wall "
        f"outside the assets' own work",
        notes=f"peak = summed PSS of the process tree (largest single process "
        f"{max(r.peak_single_mb for r in results):,.0f} MB RSS). " + phase_notes(results),
    )


def run(options: argparse.Namespace) -> list[Figure]:
    return [whole_graph_figure("8", DAYS, "1 year", options.runs, LIMIT_MB, LIMIT_SECONDS)]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
