"""What every figure shares: timed runs, peak memory, the result record and the machine.

Each figure module runs in its own process (``python -m benchmarks.<module>``), so the peak RSS
it reports is its own and not that of an earlier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CANDLES = REPO_ROOT.parent / "shared" / "data" / "btcusdt_1m_2023-03-01_2023-03-21_binanceus.csv"


@dataclass
class Figure:
    """One measured figure: seconds per run, peak memory, the target and whether it was met."""

    key: str
    name: str
    runs: list[float]
    target: str
    met: bool | None
    peak_rss_mb: float | None = None
    cpu_seconds: list[float] = field(default_factory=list)
    ratio: str = ""
    throughput: str = ""
    notes: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.cpu_seconds) if self.cpu_seconds else None


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)


def real_candle_file(options: argparse.Namespace) -> Path | None:
    """The real candle file of ``--candles``, else DEFAULT_CANDLES when present, else None."""
    if options.candles is not None:
        return options.candles
    return DEFAULT_CANDLES if DEFAULT_CANDLES.is_file() else None


def time_runs(
    work: Callable[[], object], runs: int, setup: Callable[[], object] | None = None, timing: Timing | None = None
) -> Timing:
    """Wall and process CPU seconds of ``work`` over ``runs`` runs; ``setup`` runs untimed first."""
    timing = timing or Timing()
    for _ in range(runs):
        if setup is not None:
            setup()
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        timing.cpu.append(time.process_time() - cpu)
        timing.wall.append(time.perf_counter() - wall)
    return timing


def reset_peak_rss() -> None:
    """Start a new peak-RSS window for this process (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """This process's peak RSS since the last ``reset_peak_rss`` (or since start), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    """The largest peak RSS of any waited-for child process (one process, not a sum)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def process_tree(pid: int) -> list[int]:
    pending, tree = [pid], []
    while pending:
        current = pending.pop()
        tree.append(current)
        pending += _children(current)
    return tree


def _memory_kb(pid: int, file: str, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field_name):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemorySampler(threading.Thread):
    """Polls a process and its descendants; keeps the peak of their summed PSS and the largest RSS.

    PSS (proportional set size, from smaps_rollup) splits shared pages between the processes
    sharing them, so the sum does not count Chromium's or Python's shared libraries twice; RSS is
    used where PSS is unreadable. Sampled every ``interval`` s: a shorter spike can be missed.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_sum_kb = 0
        self.peak_single_kb = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            pids = process_tree(self.pid)
            total = sum(_memory_kb(pid, "smaps_rollup", "Pss:") or _memory_kb(pid, "status", "VmRSS:") for pid in pids)
            largest = max((_memory_kb(pid, "status", "VmRSS:") for pid in pids), default=0)
            self.peak_sum_kb = max(self.peak_sum_kb, total)
            self.peak_single_kb = max(self.peak_single_kb, largest)
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence chatty libraries while timing (the figure's own lines go to stderr)."""
    saved = sys.stdout
    sys.stdout = open(os.devnull, "w")
    try:
        yield
    finally:
        sys.stdout.close()
        sys.stdout = saved


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ratio_text(ours: float, theirs: float, label: str) -> str:
    return f"{ours / theirs:.2f}× {label}" if theirs > 0 else ""


def figure_main(run: Callable[[argparse.Namespace], list[Figure]]) -> None:
    """The command line of one figure module: ``--runs``, ``--candles``, ``--json`` for results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--candles", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    figures = run(options)
    for figure in figures:
        say(format_line(figure))
    if options.json:
        options.json.write_text(json.dumps([asdict(figure) for figure in figures]))


def format_line(figure: Figure) -> str:
    memory = f"{figure.peak_rss_mb:,.0f} MB" if figure.peak_rss_mb is not None else "-"
    verdict = {True: "met", False: "MISSED", None: "-"}[figure.met]
    extra = "; ".join(part for part in (figure.throughput, figure.ratio) if part)
    return (
        f"[{figure.key}] {figure.name}: median {figure.median:.3f} s of {len(figure.runs)} runs, "
        f"peak {memory}, target {figure.target}: {verdict}" + (f" ({extra})" if extra else "")
    )


def machine_description() -> dict[str, str]:
    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    memory = "unknown"
    try:
        kb = int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")
            )
        )
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    versions = {}
    for package in (
        "dagster",
        "duckdb",
        "pandas",
        "pyarrow",
        "numpy",
        "ccxt",
        "xgboost",
        "mlflow",
        "evidently",
        "kaleido",
        "weasyprint",
    ):
        versions[package] = _version(package)
    return {
        "nproc": str(os.cpu_count()),
        "memory": memory,
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load average": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "packages": ", ".join(f"{name} {version}" for name, version in versions.items()),
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    for name in (package, f"{package}-cpu"):  # xgboost is installed as xgboost-cpu
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    # No distribution metadata under either name: ask the module itself, if it is importable.
    from importlib.util import find_spec

    if find_spec(package) is None:
        return "absent"
    try:
        return str(__import__(package).__version__)
    except Exception:  # noqa: BLE001 - a broken import is reported, not raised
        return "installed, version unknown"
