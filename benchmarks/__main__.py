"""``python -m benchmarks [--candles FILE] [--quick] [--only KEYS]``: every figure, then RESULTS.md.

Each figure module runs in a child process with ``--runs`` and writes its figures as JSON; this
process prints the table and writes ``benchmarks/RESULTS.md`` with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.harness import DEFAULT_CANDLES, REPO_ROOT, Figure, format_line, machine_description

# (module, runs, quick runs): the order is cheap to expensive, the whole graph last.
MODULES = (
    ("startup", 3, 1),
    ("backfill", 3, 1),
    ("upsert", 3, 1),
    ("reads", 3, 1),
    ("report", 3, 1),
    ("training", 3, 1),
    ("backtest", 3, 1),
    ("drift", 3, 1),
    ("serving", 3, 1),
    ("archives", 3, 1),
    ("partitions", 3, 1),
    ("parallel_days", 3, 1),
    ("graph", 3, 1),
    ("graph_markets", 1, 1),  # one, two and four markets: several minutes a run
    ("graph_year", 3, 1),
    ("graph_years", 1, 1),  # three years: several minutes a run
    ("worker_pool", 1, 1),  # one and two Celery workers, each on a profile of its own
)
RESULTS = REPO_ROOT / "benchmarks" / "RESULTS.md"
FINDINGS = REPO_ROOT / "benchmarks" / "FINDINGS.md"


def run_module(module: str, runs: int, candles: Path | None, quick: bool) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        output = Path(folder) / "figures.json"
        command = [sys.executable, "-m", f"benchmarks.{module}", "--runs", str(runs), "--json", str(output)]
        command += ["--candles", str(candles)] if candles else []
        command += ["--quick"] if quick else []
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        # The children's own lines (progress, figures) go to stderr; stdout carries library chatter.
        completed = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL)
        if completed.returncode != 0 or not output.exists():
            print(f"benchmarks.{module} failed (exit code {completed.returncode})", file=sys.stderr)
            return []
        return [Figure(**figure) for figure in json.loads(output.read_text())]


def markdown(
    figures: list[Figure], machine: dict[str, str], started: str, elapsed: float, load_after: str, quick: bool
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"`python -m benchmarks{' --quick' if quick else ''}` on {started} UTC, {elapsed / 60:.1f} min in all. "
        "Medians of the runs; each figure module runs in its own process. Regenerate with `make bench`.",
        "",
        "## Machine",
        "",
        *(f"- {name}: {value}" for name, value in machine.items() if name != "load average"),
        f"- load average (1, 5, 15 min) before: {machine['load average']}; after: {load_after}. "
        "Other processes sharing the two cores inflate wall times; CPU seconds (process time of the "
        "measuring process, all its threads) are less affected.",
        "",
        "## Figures",
        "",
        "| # | figure | median | runs | CPU s (median) | peak memory | target | met? | ratio / throughput |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for figure in figures:
        runs = ", ".join(f"{value:.2f}" for value in figure.runs)
        cpu = f"{figure.cpu_median:.2f}" if figure.cpu_median is not None else "-"
        memory = f"{figure.peak_rss_mb:,.0f} MB" if figure.peak_rss_mb is not None else "-"
        verdict = {True: "yes", False: "**no**", None: "-"}[figure.met]
        extra = "; ".join(part for part in (figure.throughput, figure.ratio) if part) or "-"
        lines.append(
            f"| {figure.key} | {figure.name} | {figure.median:.3f} s | {runs} | {cpu} | "
            f"{memory} | {figure.target} | {verdict} | {extra} |"
        )
    lines += ["", "## Notes per figure", ""]
    lines += [f"- **{figure.key}**: {figure.notes}" for figure in figures if figure.notes]
    if FINDINGS.exists():
        lines += ["", FINDINGS.read_text().strip()]
    return "\n".join(lines) + "\n"


def headline(figures: list[Figure]) -> list[str]:
    """The two headline figures, when they were measured: the import ratio and the 30-day graph."""
    by_key = {figure.key: figure for figure in figures}
    lines = []
    if "0b" in by_key:
        figure = by_key["0b"]
        lines.append(
            f"code-location import: {figure.median * 1000:,.0f} ms, {figure.ratio} "
            f"(target {figure.target}: {'met' if figure.met else 'MISSED'})"
        )
    for key in ("7", "7b"):
        if key in by_key:
            figure = by_key[key]
            lines.append(
                f"{figure.name}: {figure.median:.1f} s (target {figure.target}: {'met' if figure.met else 'MISSED'})"
            )
    return ["", *lines] if lines else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--candles",
        type=Path,
        default=None,
        help=f"real candle file for the file backfill (default: {DEFAULT_CANDLES} if present)",
    )
    parser.add_argument("--quick", action="store_true", help="one run per figure instead of three")
    parser.add_argument("--only", default="", help="comma-separated module names, e.g. upsert,reads")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    options = parser.parse_args(argv)
    if options.candles is not None and not options.candles.is_file():
        parser.error(f"{options.candles}: candle file not found")
    selected = {name.strip() for name in options.only.split(",") if name.strip()}
    unknown = selected - {module for module, *_ in MODULES}
    if unknown:
        parser.error(f"unknown module(s) {sorted(unknown)}")
    machine = machine_description()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    began = time.perf_counter()
    figures: list[Figure] = []
    failed: list[str] = []
    for module, runs, quick_runs in MODULES:
        if selected and module not in selected:
            continue
        module_began = time.perf_counter()
        print(f"== {module} ({quick_runs if options.quick else runs} runs)", file=sys.stderr, flush=True)
        results = run_module(module, quick_runs if options.quick else runs, options.candles, options.quick)
        failed += [] if results else [module]
        figures += results
        print(f"   {module}: {time.perf_counter() - module_began:.0f} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - began
    print()
    for figure in figures:
        print(format_line(figure))
    for line in headline(figures):
        print(line)
    load_after = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"\n{len(figures)} figures in {elapsed / 60:.1f} min; load average before {machine['load average']}, "
        f"after {load_after}"
    )
    if not options.no_write:
        RESULTS.write_text(markdown(figures, machine, started, elapsed, load_after, options.quick))
        print(f"written to {RESULTS.relative_to(REPO_ROOT)}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    # A missed target is a result, reported above; only a benchmark that could not run fails.
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
