"""Time the ingestion report on a candle CSV: median of runs and peak RSS.

    python benchmarks/bench_report.py [CSV] [--runs 3] [--out benchmarks/out/reports]

The CSV has the header ``open_time,open,high,low,close,volume``. Each run builds the whole
report (charts, HTML, PDF) in one process, so only the first pays kaleido's start-up.
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from btc_lifecycle.domain.candles import complete_candle_frame, find_gaps  # noqa: E402
from btc_lifecycle.domain.labels import label_candles  # noqa: E402
from btc_lifecycle.reporting import ReportFacts, build_ingestion_report  # noqa: E402

DEFAULT_CSV = "/work/shared/data/btcusdt_1m_2023-03-01_2023-03-21_binanceus.csv"


def load_labeled(csv: Path) -> pd.DataFrame:
    frame = pd.read_csv(csv)
    frame["open_time"] = pd.to_datetime(frame["open_time"], utc=True)
    return label_candles(complete_candle_frame(frame, "1m"), "1m")


def chromium_peak_mb() -> float:
    """Sum of peak RSS over kaleido's still-running process tree (Linux /proc)."""
    import plotly.io as pio

    process = pio.kaleido.scope._proc
    pending, total_kb = [process.pid] if process else [], 0
    while pending:
        pid = pending.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in status.splitlines()
                          if line.startswith("VmHWM:")), 0)
    return total_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", default=DEFAULT_CSV, type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/reports"))
    args = parser.parse_args()

    labeled = load_labeled(args.csv)
    gaps = find_gaps(labeled["open_time"], "1m")
    start = datetime.now(timezone.utc)
    durations = []
    for run in range(args.runs):
        facts = ReportFacts(
            source=f"replay of {args.csv.name}", symbol="BTC/USDT", interval="1m",
            rows_new=len(labeled), rows_total=len(labeled),
            missing_minutes=sum(gap.missing for gap in gaps), gaps=gaps,
            generated_at=datetime.now(timezone.utc),
        )
        began = time.perf_counter()
        report = build_ingestion_report(labeled, facts, args.out, keep_last=args.runs,
                                        now=start + timedelta(seconds=run))
        durations.append(time.perf_counter() - began)
        if run == 0:
            cold = time.perf_counter() - PROCESS_START
        print(f"run {run + 1}: {durations[-1]:.2f} s, {report.page_count} pages, {report.pdf_path}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kaleido_mb = chromium_peak_mb()
    print(f"candles: {len(labeled):,}")
    print(f"median of {args.runs} runs: {statistics.median(durations):.2f} s "
          f"(first run, with kaleido start-up: {durations[0]:.2f} s; "
          f"process start to first PDF, imports and CSV included: {cold:.2f} s)")
    print(f"peak RSS: {peak_mb:.0f} MB (python) + {kaleido_mb:.0f} MB (kaleido's Chromium, "
          f"summed over its processes, so shared pages count more than once)")


if __name__ == "__main__":
    main()
