"""Two day-backfills at once against one run doing both days, on each feature-store backend.

Each day is written the way the daily assets write it, without Dagster around it, so the figure
isolates the store: raw candles (``replace_candles_between``), then the day's labels
(``replace_labeled_between``), then its features (``replace_features_between``), every step on
its own connection of the project's ``FeatureStoreResource`` (as each asset opens one).

- ``sequential``: one process writes day A, then day B.
- ``parallel``: two processes, one per day, released at the same instant (a barrier, after their
  imports), so process start-up is outside both timings.
- ``lock``: with the DuckDB file open for writing in one process, how another process's
  ``duckdb.connect`` fares (read-write and read-only).

The days are two apart, so neither day's labels or features read the other's candles: the
parallel result must equal the sequential one, which the run checks row for row.

    python benchmarks/parallel_days.py [--backend duckdb|parquet|both] [--days-per-run N] [--runs R]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the project root first on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FIRST_DAY = "2023-03-07"
GAP_DAYS = 2  # the second run's first day: FIRST_DAY + days_per_run + this gap (no shared context)
MAX_FILL_MINUTES = 0
TABLES = ("candles", "candles_labeled", "candles_features")


def _series():
    from btc_lifecycle.domain.candles import CandleSeries

    return CandleSeries(table="candles", symbol="BTC/USDT", interval="1m")


def store_resource(backend: str, folder: Path):
    """The project's resource, as the code location builds it for ``backend``."""
    from btc_lifecycle.resources import FeatureStoreResource

    database = str(folder / "bitcoin.duckdb")
    if backend == "duckdb":
        return FeatureStoreResource(database=database)
    return FeatureStoreResource(database=database, backend="parquet", parquet_dir=str(folder / "parquet"))


def day_windows(first_day: str, days: int):
    import pandas as pd

    start = pd.Timestamp(first_day, tz="UTC")
    return [(start + pd.Timedelta(days=i), start + pd.Timedelta(days=i + 1)) for i in range(days)]


def all_candles(days_per_run: int):
    """Synthetic minutes covering both runs' days, with a day of context before and after."""
    import pandas as pd

    from btc_lifecycle.domain.synthetic import synthetic_candles

    first = pd.Timestamp(FIRST_DAY, tz="UTC") - pd.Timedelta(days=1)
    total_days = 2 * days_per_run + GAP_DAYS + 2
    return synthetic_candles(total_days * 1440, start=first, seed=11)


def write_day(store, series, candles, start, end, held: list[tuple[float, float]]) -> dict[str, float]:
    """raw → labels → features for [start, end), each step on its own connection; seconds per step.

    ``held`` receives the (wall-clock) intervals during which this process held a connection."""
    import pandas as pd

    from btc_lifecycle.adapters.feature_store import (
        read_candles,
        replace_candles_between,
        replace_features_between,
        replace_labeled_between,
    )
    from btc_lifecycle.defs.modelling.assets import feature_inputs
    from btc_lifecycle.domain.labels import label_candles
    from btc_lifecycle.modelling.features import compute_features

    seconds = {"waiting": 0.0}

    @contextmanager
    def connection():
        asked = time.perf_counter()
        with store.get_connection() as conn:
            seconds["waiting"] += time.perf_counter() - asked  # DuckDB: the other run's lock
            opened = time.time()
            yield conn
        held.append((opened, time.time()))

    began = time.perf_counter()
    day = candles.loc[(candles["open_time"] >= start) & (candles["open_time"] < end)].reset_index(drop=True)
    with connection() as conn:
        replace_candles_between(conn, series, day, start, end)
    seconds["raw"] = time.perf_counter() - began
    began = time.perf_counter()
    with connection() as conn:
        stored = read_candles(conn, series.table, series.symbol, series.interval, start - pd.Timedelta(minutes=1), end)
        labeled = label_candles(stored, series.interval)
        labeled = labeled.loc[labeled["open_time"] >= start].reset_index(drop=True)
        replace_labeled_between(conn, series, labeled, start, end)
    seconds["labels"] = time.perf_counter() - began
    began = time.perf_counter()
    with connection() as conn:
        inputs = feature_inputs(conn, series, start, end, MAX_FILL_MINUTES, with_next_candle=True)
        computed = compute_features(inputs, series.interval, max_fill_minutes=MAX_FILL_MINUTES)
        frame = computed.loc[(computed["open_time"] >= start) & (computed["open_time"] < end)].reset_index(drop=True)
        replace_features_between(conn, series, frame, start, end)
    seconds["features"] = time.perf_counter() - began
    return seconds


def _worker(backend, folder, days, days_per_run, barrier, results) -> None:
    """One run: imports and data first, then the barrier, then only the timed writes."""
    warnings.filterwarnings("ignore")  # Dagster's beta warnings on importing the assets
    # Every import the writes need, before the timing (lazy modules would import on first use).
    import duckdb  # noqa: F401
    import pyarrow  # noqa: F401

    import btc_lifecycle.adapters.parquet_store  # noqa: F401
    import btc_lifecycle.defs.modelling.assets  # noqa: F401
    import btc_lifecycle.domain.labels  # noqa: F401
    import btc_lifecycle.modelling.features  # noqa: F401

    series = _series()
    store = store_resource(backend, Path(folder))
    candles = all_candles(days_per_run)
    windows = [window for first in days for window in day_windows(first, days_per_run)]
    barrier.wait()
    began = time.perf_counter()
    steps: dict[str, float] = {}
    held: list[tuple[float, float]] = []
    for start, end in windows:
        for step, seconds in write_day(store, series, candles, start, end, held).items():
            steps[step] = steps.get(step, 0.0) + seconds
    results.put(
        {"days": days, "seconds": time.perf_counter() - began, "steps": steps, "ended": time.time(), "held": held}
    )


def overlap(first: list[tuple[float, float]], second: list[tuple[float, float]]) -> float:
    """Seconds during which both processes held a connection to the store at once."""
    return sum(
        max(0.0, min(a_end, b_end) - max(a_start, b_start)) for a_start, a_end in first for b_start, b_end in second
    )


def run_days(backend: str, folder: Path, runs: list[list[str]], days_per_run: int) -> tuple[float, list[dict]]:
    """Start one process per entry of ``runs``, release them together; the wall time of all."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(runs) + 1)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(backend, str(folder), days, days_per_run, barrier, results))
        for days in runs
    ]
    for process in processes:
        process.start()
    barrier.wait()
    began = time.time()
    outcome = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a {backend} run failed (exit code {process.exitcode})")
    return max(entry["ended"] for entry in outcome) - began, outcome


def snapshot(backend: str, folder: Path):
    """Every table's rows, sorted, for the equality check."""
    from btc_lifecycle.adapters.feature_store import read_table

    store = store_resource(backend, folder)
    with store.get_connection() as conn:
        return {
            table: read_table(conn, table).sort_values(["symbol", "interval", "open_time"]).reset_index(drop=True)
            for table in TABLES
        }


def second_day(days_per_run: int) -> str:
    import pandas as pd

    return (pd.Timestamp(FIRST_DAY) + pd.Timedelta(days=days_per_run + GAP_DAYS)).date().isoformat()


def measure(backend: str, days_per_run: int, runs: int) -> dict[str, object]:
    day_a, day_b = FIRST_DAY, second_day(days_per_run)
    sequential, parallel, equal = [], [], True
    waits, waiting, together = [], [], []
    for _ in range(runs):  # interleaved: a busy moment of the shared machine hits both sides
        with tempfile.TemporaryDirectory(prefix=f"bench-days-{backend}-") as one, tempfile.TemporaryDirectory() as two:
            seconds, _ = run_days(backend, Path(one), [[day_a, day_b]], days_per_run)
            sequential.append(seconds)
            seconds, outcome = run_days(backend, Path(two), [[day_a], [day_b]], days_per_run)
            parallel.append(seconds)
            waits.append(sorted(entry["seconds"] for entry in outcome))
            waiting.append(sum(entry["steps"]["waiting"] for entry in outcome))
            together.append(overlap(outcome[0]["held"], outcome[1]["held"]))
            first, second = snapshot(backend, Path(one)), snapshot(backend, Path(two))
            for table in TABLES:
                if not first[table].equals(second[table]):
                    equal = False
    return {
        "backend": backend,
        "days_per_run": days_per_run,
        "sequential_s": statistics.median(sequential),
        "parallel_s": statistics.median(parallel),
        "parallel_runs_s": [round(statistics.median(w[i] for w in waits), 2) for i in range(2)],
        "equal": equal,
        "waiting_s": statistics.median(waiting),
        "together_s": statistics.median(together),
        "all_sequential": sequential,
        "all_parallel": parallel,
    }


def _hold_open(path: str, opened, release) -> None:
    import duckdb

    conn = duckdb.connect(path)
    opened.set()
    release.wait(60)
    conn.close()


def duckdb_lock() -> list[str]:
    """What a second process gets from DuckDB while the first holds the file open for writing."""
    import duckdb

    lines = []
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="bench-lock-") as folder:
        path = str(Path(folder) / "bitcoin.duckdb")
        duckdb.connect(path).close()
        opened, release = context.Event(), context.Event()
        holder = context.Process(target=_hold_open, args=(path, opened, release))
        holder.start()
        opened.wait(60)
        for read_only in (False, True):
            began = time.perf_counter()
            try:
                duckdb.connect(path, read_only=read_only).close()
                outcome = "opened"
            except duckdb.IOException as error:
                outcome = f"{type(error).__name__}: {str(error).splitlines()[0][:110]}"
            waited = 1000 * (time.perf_counter() - began)
            lines.append(f"  second process, read_only={read_only}: after {waited:.1f} ms, {outcome}")
        release.set()
        holder.join()
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["duckdb", "parquet", "both"], default="both")
    parser.add_argument("--days-per-run", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args(argv)
    backends = ["duckdb", "parquet"] if options.backend == "both" else [options.backend]
    print(f"two runs of {options.days_per_run} UTC day(s) each, raw → labels → features, median of {options.runs}")
    for backend in backends:
        figure = measure(backend, options.days_per_run, options.runs)
        ratio = figure["parallel_s"] / figure["sequential_s"]
        print(
            f"{backend:8s} one process, both runs: {figure['sequential_s']:.2f} s | two processes at once: "
            f"{figure['parallel_s']:.2f} s (each run {figure['parallel_runs_s'][0]:.2f} s and "
            f"{figure['parallel_runs_s'][1]:.2f} s) | parallel/sequential {ratio:.2f} | "
            f"opening the store (lock waits included): {figure['waiting_s']:.2f} s | "
            f"both runs inside the store at once: {figure['together_s']:.2f} s | same rows: {figure['equal']}"
        )
        print(
            f"         all sequential {[round(s, 2) for s in figure['all_sequential']]}, "
            f"all parallel {[round(s, 2) for s in figure['all_parallel']]}"
        )
    if "duckdb" in backends:
        print("the DuckDB file held open for writing by one process:")
        print("\n".join(duckdb_lock()))


def run(options: argparse.Namespace) -> list:
    """Figures 11a/11b for ``python -m benchmarks``: one day per run, both backends."""
    from benchmarks.harness import Figure

    figures = []
    for key, backend in (("11a", "duckdb"), ("11b", "parquet")):
        result = measure(backend, 1, options.runs)
        ratio = result["parallel_s"] / result["sequential_s"]
        figures.append(
            Figure(
                key=key,
                name=f"two day-backfills at once (raw, labels, features; one day each) on the {backend} store",
                runs=result["all_parallel"],
                target="-" if backend == "duckdb" else "< 1× one run of both days",
                met=None if backend == "duckdb" else ratio < 1.0 and bool(result["equal"]),
                ratio=f"{ratio:.2f}× one run of both days ({result['sequential_s']:.2f} s); "
                f"both runs inside the store at once {result['together_s']:.2f} s; same rows: {result['equal']}",
                notes="FEATURE_STORE_BACKEND="
                + backend
                + ": each day written as the daily assets write it, without Dagster (docs/operations.md)",
            )
        )
    return figures


if __name__ == "__main__":
    if "--json" in sys.argv:  # as a figure module of `python -m benchmarks`
        from benchmarks.harness import figure_main

        figure_main(run)
    else:
        main()
