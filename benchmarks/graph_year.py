"""Figure 8: peak memory of the whole-graph run on one year of candles (525,600).

The same command as figure 7 (see ``benchmarks.graph``). Memory is the peak of the summed PSS
of the launcher and all its descendants (replay exchange, the Dagster process, kaleido's
Chromium), sampled every 0.2 s; the largest single process's RSS is noted too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from benchmarks.backfill import write_candle_csv
from benchmarks.graph import materialize_runs, phase_notes
from benchmarks.harness import Figure
from btc_lifecycle.domain.synthetic import synthetic_candles

DAYS = 365
LIMIT_MB = 2048


def run(options: argparse.Namespace) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-graph-year-") as folder:
        candles = write_candle_csv(
            synthetic_candles(DAYS * 1440, start="2024-01-01T00:00:00Z"), Path(folder) / "candles_1y.csv"
        )
        results = materialize_runs(candles, options.runs, "1 year")
    peak = max(result.peak_tree_mb for result in results)
    return [
        Figure(
            key="8",
            name=f"whole graph on {DAYS * 1440:,} candles (1 year): peak memory",
            runs=[result.wall for result in results],
            peak_rss_mb=peak,
            target="peak < 2 GB",
            met=peak < LIMIT_MB,
            ratio=f"{statistics.median((r.wall - r.steps_total) / r.wall for r in results):.0%} of wall "
            f"outside the assets' own work",
            notes=f"peak = summed PSS of the process tree (largest single process "
            f"{max(r.peak_single_mb for r in results):,.0f} MB RSS). " + phase_notes(results),
        )
    ]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
