"""Figure 0: process start-up costs that every command pays (each in a fresh interpreter).

``import ccxt`` (it imports every exchange class), loading the code location
(``import btc_lifecycle.definitions``) and ``btc_lifecycle.launch`` (the wrapper ``make run``
starts first, before the replay exchange).

The code location is measured against ``import dagster`` (at most 2× it): fresh
interpreters for the two alternate, at least five of each, and the ratio is of their medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from benchmarks.harness import REPO_ROOT, Figure

IMPORTS = {
    "0a": ("ccxt", None),
    "0c": ("btc_lifecycle.launch", "< 0.5 s"),
}
CODE_LOCATION, DAGSTER = "btc_lifecycle.definitions", "dagster"
MAX_RATIO = 2.0


def time_import(module: str) -> float:
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=REPO_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


def time_import_inside(module: str) -> tuple[float, float]:
    """(the import statement's own seconds, measured in the child; the child's whole wall time)."""
    code = f"import time; began = time.perf_counter(); import {module}; print(time.perf_counter() - began)"
    began = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, capture_output=True, text=True)
    return float(completed.stdout.strip().splitlines()[-1]), time.perf_counter() - began


def code_location_figures(runs: int, baseline: float) -> list[Figure]:
    """``import btc_lifecycle.definitions`` against ``import dagster``: fresh interpreters,
    alternating, the import statement timed inside each (start-up and exit excluded)."""
    ours, theirs = [], []
    for _ in range(max(runs, 5)):
        theirs.append(time_import_inside(DAGSTER))
        ours.append(time_import_inside(CODE_LOCATION))
    median = statistics.median
    ratio = median(run[0] for run in ours) / median(run[0] for run in theirs)
    whole = median(run[1] for run in ours) / median(run[1] for run in theirs)
    note = (
        f"the import statement alone, timed in the child, alternated with import dagster; whole "
        f"processes (start, import, exit): {median(run[1] for run in ours):.2f} s vs "
        f"{median(run[1] for run in theirs):.2f} s ({whole:.2f}×); bare interpreter {baseline:.2f} s"
    )
    return [
        Figure(
            key="0b",
            name=f"fresh interpreter: import {CODE_LOCATION}",
            runs=[run[0] for run in ours],
            peak_rss_mb=None,
            target=f"≤ {MAX_RATIO}× import dagster",
            met=ratio <= MAX_RATIO,
            ratio=f"{ratio:.2f}× import dagster ({median(run[0] for run in theirs) * 1000:,.0f} ms)",
            notes=note,
        ),
        Figure(
            key="0d",
            name=f"fresh interpreter: import {DAGSTER} (reference side of 0b)",
            runs=[run[0] for run in theirs],
            peak_rss_mb=None,
            target="-",
            met=None,
            notes=note,
        ),
    ]


def run(options: argparse.Namespace) -> list[Figure]:
    figures = []
    baseline = [time_import("sys") for _ in range(options.runs)]
    figures += code_location_figures(options.runs, statistics.median(baseline))
    for key, (module, target) in IMPORTS.items():
        runs = [time_import(module) for _ in range(options.runs)]
        figures.append(
            Figure(
                key=key,
                name=f"fresh interpreter: import {module}",
                runs=runs,
                peak_rss_mb=None,
                target=target or "-",
                met=None if target is None else statistics.median(runs) < 0.5,
                notes=f"bare interpreter start {statistics.median(baseline):.2f} s included",
            )
        )
    return sorted(figures, key=lambda figure: figure.key)


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
