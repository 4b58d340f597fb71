"""Figure 7: ``make run`` on 30 days of candles: the whole asset graph through the replay exchange.

Runs ``python -m btc_lifecycle.launch --history --candles FILE -- dagster asset materialize
-m btc_lifecycle.definitions --select '*'`` (``make run``) in a fresh workspace each time (own DAGSTER_HOME,
migrated before the clock starts as `make run`'s Makefile rule does, feature store, reports and
MLflow SQLite store), and splits the wall time into phases read from
the output as it arrives: until the replay exchange is up, until Dagster's first RUN_START (process
start, imports, code location load), the steps' own work (the sum of STEP_SUCCESS durations),
between the runs (the launcher runs the daily assets over the days, then the rest: the second
process's start, imports and code location load), and the rest. CPU seconds are those of the whole
process tree (user + system).

Target: at most 1.25× the 20.6 s this figure measured on 27 Nov 2026 (two cores), before the
start-up machinery (warm helper process, lazy imports, fast exit, MLflow schema seeding) was
removed for the plain imports of today.

Figure 7 runs the processes as this environment starts them; figure 7b with Python's bytecode
cache on (``PYTHONPYCACHEPREFIX`` in a directory fresh for the figure, the first run filling
it): with ``PYTHONDONTWRITEBYTECODE=1`` and a venv installed without ``.pyc`` files (uv's
default), every process compiles every module it imports from source.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.backfill import write_candle_csv
from benchmarks.harness import REPO_ROOT, Figure, TreeMemorySampler, children_peak_rss_mb, say
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.launch import candles_arguments

DAYS = 30
TARGET_SECONDS = 1.25 * 20.6
# Dagster prints a step's duration as 0.83ms, 533ms, 5.6s, 4m52s or 1h4m.
STEP_DONE = re.compile(r'Finished execution of step "(\w+)" in ((?:[0-9.]+(?:ms|h|m|s))+)\.')
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


@dataclass
class GraphRun:
    wall: float
    cpu: float
    replay_ready: float
    run_starts: list[float]  # each Dagster run's RUN_START, in seconds from the launch
    run_ends: list[float]  # each Dagster run's RUN_SUCCESS or RUN_FAILURE
    steps: dict[str, float] = field(default_factory=dict)
    peak_tree_mb: float = 0.0
    peak_single_mb: float = 0.0

    @property
    def steps_total(self) -> float:
        return sum(self.steps.values())

    @property
    def run_start(self) -> float:
        return self.run_starts[0] if self.run_starts else 0.0

    @property
    def run_end(self) -> float:
        return self.run_ends[-1] if self.run_ends else self.wall

    @property
    def between_runs(self) -> float:
        """From each run's end to the next one's RUN_START."""
        return sum(start - end for end, start in zip(self.run_ends, self.run_starts[1:], strict=False))


def step_seconds(duration: str) -> float:
    return sum(float(amount) * DURATION_UNITS[unit] for amount, unit in re.findall(r"([0-9.]+)(ms|h|m|s)", duration))


def materialize(
    candles: Path | dict[str, Path], root: Path, cache: Path, bytecode: bool = False, config: Path | None = None
) -> GraphRun:
    """One whole-graph run in the workspace ``root`` on ``candles`` (one file, or ``{symbol: file}``
    with ``config`` naming those markets); raises with the output if it fails."""
    home = root / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FEATURE_DB_PATH": str(root / "feature_store" / "bitcoin.duckdb"),
        "BTC_REPORT_DIR": str(root / "reports"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        **({"INGEST_CONFIG": str(config)} if config else {}),
    }
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(cache / "pycache")
    dagster = Path(sys.executable).parent / "dagster"
    # `make run` creates the instance's schema once, in a Makefile rule before the run (processes
    # that open a fresh instance at the same moment race on creating it): so does the bench.
    subprocess.run([str(dagster), "instance", "migrate"], env=env, check=True, capture_output=True)
    command = [
        sys.executable,
        "-m",
        "btc_lifecycle.launch",
        "--history",  # the file's days as one --partition-range run, as `make run` does
        *candles_arguments(candles),
        "--",
        str(dagster),
        "asset",
        "materialize",
        "-m",
        "btc_lifecycle.definitions",
        "--select",
        "*",
    ]
    began, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    sampler = TreeMemorySampler(process.pid)
    sampler.start()
    marks: dict[str, float] = {}
    run_starts: list[float] = []
    run_ends: list[float] = []
    steps: dict[str, float] = {}
    tail: list[str] = []
    for line in process.stdout:
        now = time.perf_counter() - began
        tail = (tail + [line])[-60:]
        if "replay exchange serving" in line:
            marks.setdefault("replay_ready", now)
        elif " - RUN_START - " in line:
            run_starts.append(now)
        elif " - RUN_SUCCESS - " in line or " - RUN_FAILURE - " in line:
            run_ends.append(now)
        if match := STEP_DONE.search(line):
            steps[match.group(1)] = step_seconds(match.group(2))
    process.wait()
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"materialize failed ({process.returncode}):\n{''.join(tail)}")
    return GraphRun(
        wall=wall,
        cpu=cpu,
        replay_ready=marks.get("replay_ready", 0.0),
        run_starts=run_starts,
        run_ends=run_ends,
        steps=steps,
        peak_tree_mb=sampler.peak_sum_kb / 1024,
        peak_single_mb=sampler.peak_single_kb / 1024,
    )


def materialize_runs(candles: Path, runs: int, label: str, bytecode: bool = False) -> list[GraphRun]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-graph-") as folder:
        for number in range(runs):
            result = materialize(candles, Path(folder) / f"run{number}", Path(folder) / "cache", bytecode)
            say(
                f"  {label} run {number + 1}: {result.wall:.1f} s ({result.cpu:.1f} CPU s), steps "
                f"{result.steps_total:.1f} s, RUN_START at {result.run_start:.1f} s, {len(result.run_starts)} "
                f"run(s), {result.between_runs:.1f} s between them, after the last RUN_SUCCESS "
                f"{result.wall - result.run_end:.1f} s, peak {result.peak_tree_mb:,.0f} MB; "
                + ", ".join(f"{name} {seconds:.1f}" for name, seconds in result.steps.items())
            )
            results.append(result)
    return results


def phase_notes(results: list[GraphRun]) -> str:
    def median(values) -> float:
        return statistics.median(list(values))

    steps = {name: median(run.steps.get(name, 0.0) for run in results) for name in results[0].steps}
    slowest = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(steps.items(), key=lambda item: -item[1]))
    return (
        f"phases (medians): replay exchange up {median(r.replay_ready for r in results):.1f} s; "
        f"RUN_START at {median(r.run_start for r in results):.1f} s (process start, imports, code "
        f"location load); {len(results[0].run_starts)} run(s) {median(r.run_end - r.run_start for r in results):.1f} s "
        f"of which steps {median(r.steps_total for r in results):.1f} s and between the runs "
        f"{median(r.between_runs for r in results):.1f} s; after the last RUN_SUCCESS "
        f"{median(r.wall - r.run_end for r in results):.1f} s. Steps: {slowest}"
    )


def graph_figure(key: str, name: str, results: list[GraphRun]) -> Figure:
    walls = [result.wall for result in results]
    outside = statistics.median((r.wall - r.steps_total) / r.wall for r in results)
    cores = len(os.sched_getaffinity(0))
    # The least wall time any schedule of the same work could take: its CPU seconds spread evenly
    # over every core, no step ever waiting for another.
    floor = statistics.median(r.cpu for r in results) / cores
    first = results[0]
    return Figure(
        key=key,
        name=name,
        runs=walls,
        cpu_seconds=[result.cpu for result in results],
        peak_rss_mb=max(r.peak_tree_mb for r in results),
        target=f"≤ {TARGET_SECONDS:.1f} s",
        met=statistics.median(walls) <= TARGET_SECONDS,
        ratio=f"{outside:.0%} of wall outside the assets' own work; CPU floor {floor:.1f} s",
        notes=f"CPU floor: the process tree's CPU seconds over {cores} cores, {floor:.1f} s, is the least "
        f"wall time any schedule of the same work could take. "
        + phase_notes(results)
        + f". First run{' (cold bytecode cache)' if 'bytecode' in name else ''} {first.wall:.1f} s, model step "
        f"{first.steps.get('model', 0.0):.1f} s. Largest single process {children_peak_rss_mb():,.0f} MB.",
    )


def run(options: argparse.Namespace) -> list[Figure]:
    cells = f"on {DAYS * 1440:,} candles"
    with tempfile.TemporaryDirectory(prefix="bench-graph-data-") as folder:
        candles = write_candle_csv(
            synthetic_candles(DAYS * 1440, start="2024-01-01T00:00:00Z"), Path(folder) / "candles_30d.csv"
        )
        plain = materialize_runs(candles, options.runs, "30 days")
        cached = materialize_runs(candles, options.runs, "30 days, bytecode cached", bytecode=True)
    return [
        graph_figure("7", f"whole graph (dagster asset materialize --select '*') {cells}", plain),
        graph_figure("7b", f"whole graph {cells}, Python bytecode cached", cached),
    ]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
