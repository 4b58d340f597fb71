"""Figure 0: process start-up costs that every command pays (each in a fresh interpreter).

``import ccxt`` (it imports every exchange class), loading the code location
(``import btc_lifecycle.definitions``) and ``btc_lifecycle.launch`` (the wrapper ``make run``
starts first, before the replay exchange).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import statistics

from benchmarks.harness import REPO_ROOT, Figure

IMPORTS = {
    "0a": ("ccxt", None),
    "0b": ("btc_lifecycle.definitions", None),
    "0c": ("btc_lifecycle.launch", "< 0.5 s"),
}


def time_import(module: str) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO_ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def run(options: argparse.Namespace) -> list[Figure]:
    figures = []
    baseline = [time_import("sys") for _ in range(options.runs)]
    for key, (module, target) in IMPORTS.items():
        runs = [time_import(module) for _ in range(options.runs)]
        figures.append(Figure(
            key=key, name=f"fresh interpreter: import {module}", runs=runs,
            peak_rss_mb=None, target=target or "-",
            met=None if target is None else statistics.median(runs) < 0.5,
            notes=f"bare interpreter start {statistics.median(baseline):.2f} s included",
        ))
    return figures


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
