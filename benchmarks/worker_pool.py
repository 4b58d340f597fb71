"""Figure 15: a 30-day backfill of the whole graph on the worker pool, with one worker and with two,
and without the pool.

For each: the production profile in a temporary folder on free loopback ports, with
``PROFILE_WORKERS`` Celery workers (``make up WORKERS=N``) or without a pool (``make up``), then
``make run`` on a 30-day random walk (the launcher: the days as one ranged run, then the
unpartitioned rest), then ``make down``. Only the run is timed. On the pool every step executes
on a worker and the run's own process only walks the plan; without it, the run's process executes
every step itself.

A ranged run is a chain (candles → labels → features → model → predictions → drift report) with
branches beside it (stats and their report, the checks, the backtest, Feast's export and online
store): a second worker takes the branches, not the chain. The ratio says how much of the graph
that is.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.backfill import write_candle_csv
from benchmarks.graph import DAYS
from benchmarks.harness import REPO_ROOT, Figure, say
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.production.processes import free_ports

POOL_SIZES = (0, 1, 2)  # 0: no pool, the run executes its steps in its own process


def profile_env(root: Path, workers: int) -> dict[str, str]:
    pg, mlflow, dagster, code, redis = free_ports(5)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DAGSTER_", "PROFILE_", "FEATURE_"))},
        "PROFILE_DIR": str(root / "profile"),
        "PROFILE_PG_PORT": str(pg),
        "PROFILE_MLFLOW_PORT": str(mlflow),
        "PROFILE_DAGSTER_PORT": str(dagster),
        "PROFILE_CODE_SERVER_PORT": str(code),
        "PROFILE_REDIS_PORT": str(redis),
        **({"PROFILE_WORKERS": str(workers)} if workers else {}),
        "PROFILE_MLFLOW_WORKERS": "1",
        "FEATURE_DB_PATH": str(root / "store" / "feature_store" / "bitcoin.duckdb"),
        "BTC_REPORT_DIR": str(root / "store" / "reports"),
        "BTC_LOG_DIR": str(root / "logs"),
    }


def production(env: dict[str, str], verb: str) -> None:
    command = [sys.executable, "-m", "btc_lifecycle.production", verb]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"`production {verb}` failed: {result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def backfill_seconds(folder: Path, candles: Path, workers: int, number: int) -> float:
    """One timed ``make run`` of the 30 days on a fresh pool of ``workers``."""
    from btc_lifecycle.production.layout import ProfileLayout

    root = folder / f"pool{workers}_run{number}"
    root.mkdir(mode=0o711)  # PostgreSQL runs as its own user and must reach its folder
    (root / "profile").mkdir(mode=0o711)
    env = profile_env(root, workers)
    production(env, "up")
    try:
        client = {**env, **ProfileLayout.from_env(env).client_environment()}
        launcher = [sys.executable, "-m", "btc_lifecycle.launch", "--progress", "--history", "--candles", str(candles)]
        materialize = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize"]
        command = [*launcher, "--", *materialize, "-m", "btc_lifecycle.definitions", "--select", "*"]
        began = time.monotonic()
        result = subprocess.run(command, cwd=REPO_ROOT, env=client, capture_output=True, text=True, timeout=1800)
        seconds = time.monotonic() - began
        if result.returncode != 0:
            raise SystemExit(f"the backfill on {workers} worker(s) failed: {result.stderr[-2000:]}")
    finally:
        production(env, "down")
    return seconds


def run(options: argparse.Namespace) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as name:
        folder = Path(name)
        folder.chmod(0o711)
        candles = write_candle_csv(
            synthetic_candles(DAYS * 1440, start="2024-01-01T00:00:00Z", seed=11), folder / "candles_30d.csv"
        )
        walls: dict[int, list[float]] = {size: [] for size in POOL_SIZES}
        for number in range(options.runs):
            for size in POOL_SIZES:  # interleaved: a load change touches both sizes alike
                walls[size].append(backfill_seconds(folder, candles, size, number))
                say(f"  {size or 'no'} worker(s) run {number + 1}: {walls[size][-1]:.1f} s")
    one = statistics.median(walls[1])
    return [
        Figure(
            key=f"15{'abc'[POOL_SIZES.index(size)]}",
            name=f"{DAYS}-day backfill of the whole graph "
            + (f"on a pool of {size} Celery worker(s)" if size else "under the profile without a pool"),
            runs=runs,
            target="—",
            met=None,
            ratio=f"{one / statistics.median(runs):.2f}× the speed of one worker",
            notes="make up [WORKERS=N] on loopback; the run only (the profile's start and stop are not timed)",
        )
        for size, runs in walls.items()
    ]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
