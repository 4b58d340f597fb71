"""The Parquet day-file store (``ParquetStoreConnection``) against Delta Lake, on the same candles.

Should several worker hosts sharing a POSIX file system keep the day files, or move to Delta Lake
(``deltalake``, read by DuckDB through an Arrow dataset)? Synthetic 1-minute candles, 1,440 a day,
fixed seeds; every file in a temporary directory. The Parquet side writes through the project's
``replace_candles_between`` (a day's write locks the day and adds a new file for it; a superseded
file stays an hour for the readers that may still read it); the Delta side replaces a window with
``write_deltalake(..., mode="overwrite", predicate=<the window>)`` on an unpartitioned table (one
commit per write).

1. Write N days one day at a time: onto an empty store, then replacing every day again.
2. Two processes replacing interleaved days at once: errors, all days right?, wall, commit retries.
3. Two processes writing the same day at once, one write each: (a) the whole day each: who wins,
   is the loser told? (b) one half of the day each: is a half its writer was told is stored lost?
4. Reads through DuckDB: opening the store, a full-scan aggregate, one day's range.
5. Files and bytes (and after removing what only old readers need: Delta's vacuum, the superseded
   day files); a reader querying while one write replaces every day, over and over.
6. deltalake's import time in a fresh interpreter (-X importtime) and its installed size.

    python -m benchmarks.store_formats [--days 30] [--runs 3]

Without ``deltalake`` (the project venv) only the Parquet store is measured; see INSTALL below.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

if __package__ in (None, ""):  # run as a script: the project root first on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from btc_lifecycle.adapters.feature_store import replace_candles_between
from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection
from btc_lifecycle.domain.candles import CandleSeries

try:
    from deltalake import DeltaTable, write_deltalake
except ImportError:
    DeltaTable = write_deltalake = None

INSTALL = (
    "python3 -m venv /tmp/deltavenv && /tmp/deltavenv/bin/pip install deltalake==1.6.* duckdb==2.0.1 "
    "pandas==2.3.3 pyarrow==25.0.1 numpy && PYTHONPATH=. /tmp/deltavenv/bin/python -m benchmarks.store_formats"
)
SERIES = CandleSeries(table="candles", symbol="BTC/USDT", interval="1m")
FIRST = pd.Timestamp("2024-01-01", tz="UTC")
DAY, MINUTE = pd.Timedelta(days=1), pd.Timedelta(minutes=1)
READS = 7  # runs of each read query
DAY_OF = "date_trunc('day', open_time)"
DIGEST = (
    "SELECT count(*), sum(hash(open_time, open, high, low, close, volume, trades)) "
    "FROM candles WHERE open_time >= ? AND open_time < ?"
)


def candles(start: pd.Timestamp, minutes: int, seed: int) -> pd.DataFrame:
    """A project candle frame (tz-aware UTC) fixed by seed and start; ``trades`` = seed marks the write."""
    rng = np.random.default_rng([seed, int(start.timestamp())])
    times = pd.date_range(start, periods=minutes, freq="min")
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, minutes)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 2e-4, minutes)) * close
    volume = rng.gamma(2.0, 5.0, minutes)
    return pd.DataFrame({
        "open_time": times, "open": open_, "high": np.maximum(open_, close) + spread,
        "low": np.minimum(open_, close) - spread, "close": close, "volume": volume,
        "close_time": times + pd.Timedelta(milliseconds=59_999), "quote_volume": volume * close,
        "trades": float(seed), "taker_buy_base_volume": volume / 2, "taker_buy_quote_volume": volume * close / 2,
    })  # fmt: skip


def store_rows(frame: pd.DataFrame) -> pa.Table:
    """The rows as the Parquet store holds them: symbol and interval first, naive UTC microseconds."""
    frame = frame.copy()
    for column in ("open_time", "close_time"):
        frame[column] = frame[column].dt.tz_localize(None).astype("datetime64[us]")
    frame.insert(0, "interval", SERIES.interval)
    frame.insert(0, "symbol", SERIES.symbol)
    return pa.Table.from_pandas(frame, preserve_index=False)


class ParquetSide:
    """The project's store, written as the daily assets write it."""

    def __init__(self, root: Path) -> None:
        self.root, self.conn = root, ParquetStoreConnection(root)

    def write(self, frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> None:
        replace_candles_between(self.conn, SERIES, frame, start, end)

    def reader(self):
        return ParquetStoreConnection(self.root)  # its view's glob lists the day files at every query


class DeltaSide:
    """One unpartitioned Delta table; a write replaces its window in one commit."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)

    def write(self, frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> None:
        start, end = (moment.tz_localize(None) for moment in (start, end))  # naive UTC, as stored
        window = f"open_time >= '{start}' AND open_time < '{end}'"
        write_deltalake(self.root, store_rows(frame), mode="overwrite", predicate=window)

    def reader(self):
        conn = duckdb.connect()  # the table's latest version, as a snapshot
        conn.register("candles", DeltaTable(self.root).to_pyarrow_dataset())
        return conn


SIDES = {"parquet": ParquetSide, "delta": DeltaSide}


def digest(conn, start: pd.Timestamp, minutes: int):
    naive = start.tz_localize(None)
    return conn.execute(DIGEST, [naive, naive + minutes * MINUTE]).fetchone()


def holds(conn, start: pd.Timestamp, minutes: int, seed: int) -> bool:
    """Whether the store's rows in the window are exactly those of the write ``seed``."""
    expected = duckdb.connect()
    expected.register("candles", store_rows(candles(start, minutes, seed)))
    return digest(conn, start, minutes) == digest(expected, start, minutes)


def spread(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    values = [value * scale for value in values]
    return f"{statistics.median(values):.3f} {unit} [{min(values):.3f}-{max(values):.3f}]"


def days_jobs(days: range, seed: int) -> list[tuple[pd.Timestamp, int, int]]:
    return [(FIRST + day * DAY, 1440, seed) for day in days]


def frames_of(jobs) -> list:
    return [(candles(start, minutes, seed), start, start + minutes * MINUTE, seed) for start, minutes, seed in jobs]


def write_frames(side, frames) -> tuple[float, float, list[str], list[int]]:
    """Each frame written in turn: start and end (monotonic seconds), what failed, the seeds stored."""
    began, errors, stored = time.monotonic(), [], []
    for frame, start, end, seed in frames:
        try:
            side.write(frame, start, end)
            stored.append(seed)
        except Exception as exc:  # what the format tells a losing writer
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:70]}")
    return began, time.monotonic(), errors, stored


def _writer(kind: str, root: Path, jobs, barrier, results) -> None:
    """A writer process: its frames made before the barrier, written after it."""
    side, frames = SIDES[kind](root), frames_of(jobs)
    barrier.wait()
    results.put(write_frames(side, frames))


def launch(kind: str, root: Path, job_lists, parties: int):
    """A writer process per job list, each waiting at a barrier of ``parties`` (more: the caller too)."""
    ctx = multiprocessing.get_context("spawn")  # deltalake's runtime does not survive fork
    barrier, results = ctx.Barrier(parties), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(kind, root, jobs, barrier, results)) for jobs in job_lists]
    for proc in procs:
        proc.start()
    return procs, barrier, results


def run_pair(kind: str, root: Path, jobs_a, jobs_b):
    """Two writers released at one instant: wall seconds, and each one's (start, end, errors, stored)."""
    procs, _, results = launch(kind, root, [jobs_a, jobs_b], 2)
    outcomes = [results.get() for _ in procs]  # in finishing order
    for proc in procs:
        proc.join()
    return max(o[1] for o in outcomes) - min(o[0] for o in outcomes), outcomes


def fresh_copy(work: Path, figure: str, run: int) -> Path:
    return Path(shutil.copytree(work / "template", work / figure / f"run{run}"))


def disk(root: Path) -> str:
    files = [path for path in root.rglob("*") if path.is_file()]
    log = sum("_delta_log" in path.parts for path in files)
    locks = sum(".locks" in path.parts for path in files)  # the Parquet store's empty lock files
    size = sum(p.stat().st_size for p in files) / 1e6
    return f"{len(files)} files ({log} in _delta_log, {locks} locks), {size:.2f} MB"


def figure_writes(kind: str, work: Path, days: int, runs: int) -> None:
    seconds = {"new days": [], "replacing them": []}
    for run in range(runs):
        root = work / f"seq{run}"
        side = SIDES[kind](root)
        for seed, times in enumerate(seconds.values()):
            began, ended, errors, _ = write_frames(side, frames_of(days_jobs(range(days), seed)))
            assert not errors, errors
            times.append(ended - began)
            if seed == 0 and run == runs - 1:
                shutil.copytree(root, work / "template")  # every day seed 0: the start of figures 2, 3, 5
        if run < runs - 1:
            shutil.rmtree(root)
    os.replace(work / f"seq{runs - 1}", work / "store")  # every day replaced once: figures 4 and 5
    print(f"   {kind:8} " + "   ".join(f"{name} {spread(times)}" for name, times in seconds.items()))


def figure_different_days(kind: str, work: Path, days: int, runs: int) -> None:
    walls, errors, right, retries = [], 0, [], []
    for run in range(runs):
        root = fresh_copy(work, "diff", run)
        before = DeltaTable(str(root)).version() if kind == "delta" else 0
        wall, outcomes = run_pair(kind, root, days_jobs(range(0, days, 2), 1), days_jobs(range(1, days, 2), 1))
        walls.append(wall)
        errors += sum(len(o[2]) for o in outcomes)
        reader = SIDES[kind](root).reader()
        right.append(sum(holds(reader, FIRST + d * DAY, 1440, 1) for d in range(days)))
        if kind == "delta":  # retries inside write_deltalake: a concurrent commit took its version
            new = [c for c in DeltaTable(str(root)).history() if c["version"] > before]
            retries.append(sum(c.get("operationMetrics", {}).get("num_retries", 0) for c in new))
    note = f", commit retries per run {retries}" if kind == "delta" else ""
    print(f"   {kind:8} wall {spread(walls)}, errors {errors}, days right per run {right} of {days}{note}")


def figure_same_day(kind: str, work: Path, days: int, runs: int) -> None:
    """Each process writes once, released together, ``2 * runs`` times: (a) the whole day each,
    (b) one half each, which must both survive when both were told they were stored."""
    day, halves = FIRST + (days // 2) * DAY, FIRST + (days // 2) * DAY + DAY / 2
    for label, job_a, job_b in (
        ("whole day", (day, 1440, 11), (day, 1440, 22)),
        ("halves", (day, 720, 33), (halves, 720, 44)),
    ):
        refused, lost, kept = 0, 0, []
        for run in range(2 * runs):
            root = fresh_copy(work, label.replace(" ", ""), run)
            _, outcomes = run_pair(kind, root, [job_a], [job_b])
            refused += sum(len(o[2]) for o in outcomes)
            reader = SIDES[kind](root).reader()
            stored = [seed for o in outcomes for seed in o[3]]
            if label == "whole day":
                kept.append(next((f"{s}" for s in stored if holds(reader, day, 1440, s)), "neither!"))
            else:  # a half its writer was told is stored must be there
                lost += sum(not holds(reader, start, 720, seed) for start, _, seed in (job_a, job_b) if seed in stored)
        what = f"day holds write {kept}" if label == "whole day" else f"acknowledged halves lost {lost}"
        print(f"   {kind:8} {label}: writes refused with an error {refused} of {4 * runs}; {what}")


def figure_reads(kind: str, work: Path, days: int, runs: int) -> None:
    side, day = SIDES[kind](work / "store"), (FIRST + (days // 2) * DAY).tz_localize(None)
    queries = {
        "full scan": ("SELECT count(*), avg(close), max(high), min(low), sum(volume) FROM candles", []),
        "one day": (
            "SELECT count(*), avg(close) FROM candles WHERE open_time >= ? AND open_time < ?",
            [day, day + DAY],
        ),
    }
    times = {"open": [], **{name: [] for name in queries}}
    for _ in range(READS):
        began = time.perf_counter()
        conn = side.reader()
        times["open"].append(time.perf_counter() - began)
        for name, (sql, params) in queries.items():
            began = time.perf_counter()
            conn.execute(sql, params).fetchall()
            times[name].append(time.perf_counter() - began)
        conn.close()
    print(f"   {kind:8} " + "   ".join(f"{name} {spread(ts, 'ms', 1000)}" for name, ts in times.items()))


def figure_disk_and_isolation(kind: str, work: Path, days: int, runs: int) -> None:
    line = f"   {kind:8} after {days} days written twice: {disk(work / 'store')}"
    if kind == "delta":
        DeltaTable(str(work / "store")).vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
        line += f"; after vacuum: {disk(work / 'store')}"
    else:
        with ParquetStoreConnection(work / "store") as conn:
            conn.remove_superseded(retention=pd.Timedelta(0))
        line += f"; after removing superseded files: {disk(work / 'store')}"
    print(line)
    seen = dict.fromkeys(("reads", "failed", "a half-written day", "days missing", "old and new days mixed"), 0)
    failures, writer_errors = set(), 0
    for run in range(runs):
        root = fresh_copy(work, "isolation", run)
        jobs = [(FIRST, days * 1440, 100 + g) for g in range(8)]  # 8 writes, each replacing every day
        (writer,), barrier, results = launch(kind, root, [jobs], 2)
        side = SIDES[kind](root)
        barrier.wait()
        while writer.is_alive() and results.empty():
            try:
                with side.reader() as conn:
                    rows = conn.execute(f"SELECT count(*), min(trades), max(trades) FROM candles GROUP BY {DAY_OF}")
                    rows = rows.fetchall()
            except Exception as exc:  # a reader that fails, rather than one that sees a wrong day
                seen["failed"] += 1
                failures.add(f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}")
                continue
            seen["reads"] += 1
            seen["a half-written day"] += any(n != 1440 or lo != hi for n, lo, hi in rows)
            seen["days missing"] += len(rows) != days
            seen["old and new days mixed"] += len({lo for _, lo, _ in rows}) > 1
        writer_errors += len(results.get()[2])
        writer.join()
    counts = "; ".join(f"{name} {count}" for name, count in seen.items())
    print(
        f"   {kind:8} reader, {runs} x 8 writes of all days: {counts} {sorted(failures)}; writer errors {writer_errors}"
    )


def figure_import() -> None:
    def import_ms(code: str) -> list[float]:  # deltalake's cumulative import time, -X importtime
        times = []
        for _ in range(7):
            done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
            line = next(x for x in done.stderr.splitlines() if x.rstrip().endswith("| deltalake"))
            times.append(int(line.split("|")[1]) / 1000)
        return times

    after, alone = import_ms("import duckdb, pandas, pyarrow; import deltalake"), import_ms("import deltalake")
    print(f"   import deltalake after duckdb+pandas+pyarrow {spread(after, 'ms')}; alone {spread(alone, 'ms')}")
    sizes = []
    for name in ("deltalake", "arro3-core", "deprecated"):  # what deltalake adds to the project's venv
        dist = importlib.metadata.distribution(name)
        size = sum(dist.locate_file(f).stat().st_size for f in dist.files or [] if dist.locate_file(f).exists())
        sizes.append(f"{name} {dist.version} {size / 1e6:.1f} MB")
    print(f"   installed: {', '.join(sizes)}")


FIGURES = (
    ("1. writing {days} days one day at a time (median [min-max])", figure_writes),
    ("2. two processes replacing interleaved days at once", figure_different_days),
    ("3. two processes writing the same day at once, one write each, 2 x {runs} times", figure_same_day),
    (f"4. reading through DuckDB, {READS} runs (open: a new connection seeing the latest data)", figure_reads),
    ("5. on disk, and a reader querying during writes", figure_disk_and_isolation),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    kinds = ["parquet", "delta"] if write_deltalake else ["parquet"]
    versions = f"duckdb {duckdb.__version__}, pyarrow {pa.__version__}, pandas {pd.__version__}"
    if write_deltalake:
        versions += f", deltalake {importlib.metadata.version('deltalake')}"
    print(f"store formats: {args.days} days x 1,440 candles, {args.runs} runs, {os.cpu_count()} cores; {versions}")
    if not write_deltalake:
        print(f"deltalake is not installed: Parquet alone. For the comparison: {INSTALL}")
    with tempfile.TemporaryDirectory(prefix="store_formats_") as tmp:
        for title, figure in FIGURES:
            print(title.format(days=args.days, runs=args.runs))
            for kind in kinds:
                figure(kind, Path(tmp) / kind, args.days, args.runs)
    if write_deltalake:
        print("6. deltalake's weight")
        figure_import()


if __name__ == "__main__":
    main()
