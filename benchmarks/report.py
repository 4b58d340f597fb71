"""Figure 4: the ingestion report (charts, HTML, PDF) for 30 days of candles (4a) and for the
real candle file (4b, when ``--candles`` or the default file is there).

Each figure starts its own kaleido Chromium (shut down after the previous figure), so only its
first run pays the start-up; the figure is the median of the other runs, and the first (cold)
run is noted. Peak memory is this process plus kaleido's Chromium (summed over its processes, so
shared pages count more than once).
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from benchmarks.harness import (
    Figure,
    Timing,
    peak_rss_mb,
    process_tree,
    real_candle_file,
    reset_peak_rss,
    say,
    time_runs,
)
from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.domain.candles import find_gaps
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.reporting import ReportFacts, build_ingestion_report

DAYS = 30


def chromium_peak_mb() -> float:
    """Sum of peak RSS over kaleido's still-running process tree (Linux /proc)."""
    import plotly.io as pio

    process = pio.kaleido.scope._proc
    total_kb = 0
    for pid in process_tree(process.pid) if process else []:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return total_kb / 1024


def time_report(labeled: pd.DataFrame, source: str, runs: int, out: Path) -> Timing:
    gaps = find_gaps(labeled["open_time"], "1m")
    start = datetime.now(UTC)
    timing = Timing()
    for run in range(runs):
        facts = ReportFacts(
            source=source,
            symbol="BTC/USDT",
            interval="1m",
            rows_new=len(labeled),
            rows_total=len(labeled),
            missing_minutes=sum(gap.missing for gap in gaps),
            gaps=gaps,
            generated_at=datetime.now(UTC),
        )
        time_runs(
            lambda: build_ingestion_report(labeled, facts, out, keep_last=runs, now=start + timedelta(seconds=run)),
            1,
            timing=timing,
        )
    return timing


def shutdown_chromium() -> None:
    """Stop kaleido's Chromium, so the next figure pays (and reports) its own start-up."""
    import plotly.io as pio

    pio.kaleido.scope._shutdown_kaleido()


def measure(labeled: pd.DataFrame, source: str, runs: int, key: str, name: str) -> Figure:
    """``runs`` warm runs after one cold run that pays kaleido's Chromium start-up."""
    with tempfile.TemporaryDirectory(prefix="bench-report-") as folder:
        reset_peak_rss()
        timing = time_report(labeled, source, runs + 1, Path(folder))
        chromium = chromium_peak_mb()
        python = peak_rss_mb()
        shutdown_chromium()
    cold, warm = timing.wall[0], Timing(timing.wall[1:], timing.cpu[1:])
    return Figure(
        key=key,
        name=name,
        runs=warm.wall,
        cpu_seconds=warm.cpu,
        peak_rss_mb=python + chromium,
        target="< 10 s",
        met=warm.median < 10,
        notes=f"first run with kaleido's Chromium start-up: {cold:.2f} s (not in the median); "
        f"peak = {python:.0f} MB python + {chromium:.0f} MB Chromium",
    )


def run(options: argparse.Namespace) -> list[Figure]:
    labeled = label_candles(synthetic_candles(DAYS * 1440, start="2024-01-01T00:00:00Z"), "1m")
    figures = [
        measure(
            labeled, "generated 30 days", options.runs, "4a", f"ingestion report for {len(labeled):,} candles (30 days)"
        )
    ]
    path = real_candle_file(options)
    if path is None:
        say("  4b skipped: no real candle file (pass --candles FILE)")
        return figures
    labeled = label_candles(read_candle_file(path, "1m"), "1m")
    figures.append(
        measure(labeled, path.name, options.runs, "4b", f"ingestion report for {path.name} ({len(labeled):,} candles)")
    )
    return figures


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
