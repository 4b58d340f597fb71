"""Figure 8: wall time and peak memory of the whole-graph run on one year of candles (525,600).

The same command as figure 7 (see ``benchmarks.graph``), on synthetic candles ending on 30 Dec
2024. Memory is the peak of the summed PSS of the launcher and all its descendants (replay
exchange, the Dagster processes, kaleido's Chromium), sampled every 0.2 s; the largest single
process's RSS is noted too. ``whole_graph_figure`` measures any number of days
(``benchmarks.graph_years``: three years).

Figure 8c is the floor under figure 8 that Dagster itself sets: as many daily assets as the
project has, doing no work, materialized over the same year in one ranged run through the same
command and instance configuration. Dagster records a planned and a materialized event for every
asset and day, each in a transaction of its own (two SQLite databases per event in the default
storage), so the floor grows with assets × days whatever the assets do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.backfill import write_candle_csv
from benchmarks.graph import materialize_runs, phase_notes
from benchmarks.harness import REPO_ROOT, Figure, say
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


# A code location with ``count`` chained daily assets that do nothing, partitioned like the
# project's daily assets.
NO_WORK_ASSETS = """
import dagster as dg

days = dg.DailyPartitionsDefinition(start_date="{first}", end_date="{end}")


def no_work(name, upstream):
    @dg.asset(name=name, partitions_def=days, deps=upstream, backfill_policy=dg.BackfillPolicy.single_run())
    def _asset() -> None:
        return None

    return _asset


assets = [no_work("day_asset_0", [])]
assets += [no_work(f"day_asset_{{n}}", [f"day_asset_{{n - 1}}"]) for n in range(1, {count})]
defs = dg.Definitions(assets=assets, executor=dg.in_process_executor)
"""


def daily_asset_count() -> int:
    from btc_lifecycle.definitions import defs

    graph = defs.resolve_asset_graph()
    return sum(graph.get(key).partitions_def is not None for key in graph.get_all_asset_keys())


def bookkeeping_figure(days: int, runs: int) -> Figure:
    """Figure 8c: the project's number of daily assets, doing no work, over ``days`` days."""
    count = daily_asset_count()
    first = LAST_DAY + pd.Timedelta(days=1) - pd.Timedelta(days=days)
    dagster = Path(sys.executable).parent / "dagster"
    walls, cpus, starts = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-bookkeeping-") as folder:
        code = Path(folder) / "no_work.py"
        end = LAST_DAY + pd.Timedelta(days=1)
        code.write_text(NO_WORK_ASSETS.format(first=f"{first:%Y-%m-%d}", end=f"{end:%Y-%m-%d}", count=count))
        for number in range(runs):
            home = Path(folder) / f"dagster_home_{number}"
            home.mkdir()
            shutil.copy(REPO_ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
            env = {**os.environ, "DAGSTER_HOME": str(home)}
            subprocess.run([str(dagster), "instance", "migrate"], env=env, check=True, capture_output=True)
            command = [str(dagster), "asset", "materialize", "-f", str(code), "--select", "*"]
            command += ["--partition-range", f"{first:%Y-%m-%d}...{LAST_DAY:%Y-%m-%d}"]
            began, before = time.perf_counter(), os.times()
            process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            started = None
            for line in process.stdout:
                if started is None and " - RUN_START - " in line:
                    started = time.perf_counter() - began
            if process.wait() != 0:
                raise RuntimeError(f"the no-work run failed ({process.returncode})")
            after = os.times()
            walls.append(time.perf_counter() - began)
            cpus.append((after.children_user + after.children_system) - (before.children_user + before.children_system))
            starts.append(started or 0.0)
            say(f"  no-work run {number + 1}: {walls[-1]:.1f} s ({cpus[-1]:.1f} CPU s), RUN_START {starts[-1]:.1f} s")
    events = 2 * count * days
    wall = statistics.median(walls)
    return Figure(
        key="8c",
        name=f"Dagster's own bookkeeping: {count} daily assets that do no work, over {days} days in one ranged run",
        runs=walls,
        cpu_seconds=cpus,
        target=f"printed (a floor under figure 8's ≤ {LIMIT_SECONDS} s)",
        met=None,
        ratio=f"{wall / LIMIT_SECONDS:.2f}× figure 8's target; {wall / events * 1000:.1f} ms per event",
        notes=f"{events:,} events (a planned and a materialized one per asset and day); RUN_START at "
        f"{statistics.median(starts):.1f} s: the planned events are written before the run starts.",
    )


def run(options: argparse.Namespace) -> list[Figure]:
    return [
        whole_graph_figure("8", DAYS, "1 year", options.runs, LIMIT_MB, LIMIT_SECONDS),
        bookkeeping_figure(DAYS, options.runs),
    ]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
