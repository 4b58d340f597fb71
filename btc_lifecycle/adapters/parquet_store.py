"""The feature store as day-partitioned Parquet files that DuckDB queries: the parallel option.

One folder per table, a Parquet file per UTC day of ``open_time`` holding every series of that
day (``<root>/<table>/<YYYY-MM-DD>.parquet``). A connection is an in-memory DuckDB whose tables are
views over the day files current when it opened (or last wrote), so every reader of
``adapters.feature_store`` runs its own SQL unchanged. Its ``rewrite``, the ``FeatureStore`` write
protocol of ``adapters.store_backends``, locks the days a write touches, loads only those into a
scratch DuckDB, runs the very same DuckDB write there, and adds each day's result as a new file.

A day file is never changed or replaced once written: a rewrite of the day adds
``<YYYY-MM-DD>.1.parquet``, ``.2`` and so on (the highest number holds the day), and dropping a day
adds an empty ``<YYYY-MM-DD>.<n>.dropped``. DuckDB opens a Parquet file by its name more than once in one
query (its footer, then its row groups), so a file swapped in under that name in between would give
it one file's footer and another's bytes; and on NFS a file deleted by another host fails the reads
of a host that has it open. So a superseded file stays until ``RETENTION`` after it was superseded
and is then removed by the next write of its table (or by ``remove_superseded``).

Writers lock with ``flock`` on files under ``<root>/.locks`` (NFS passes them to the server's lock
manager): a table's lock, shared by writers of its days and exclusive for a write of all its days,
then one lock per day, exclusive, taken in date order. Writers of the same day take turns; writers
of different days never wait on each other.

The root folder holds a marker file, ``.btc_feature_store``, written when the store is created.
A root that is there without it (and without day files, as stores made before the marker have)
is refused: on a host that has not mounted the shared file system the store's folder is an empty
mount point, and writing there would start a second, local store.

Limits: a write of several days adds their files one after another (each day is atomic, the set
is not); a connection sees other processes' later writes only once it writes or calls
``refresh_views``, and one kept open longer than ``RETENTION`` may find its files removed; a table
whose column layout changes (features of newer code) drops its other days, as the DuckDB table
does. DuckDB 2.0.1 reads Parquet without extensions; on several hosts the root must be a shared
POSIX file system with working ``flock`` (no object store: httpfs cannot be installed offline).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd

from btc_lifecycle.adapters.sql_text import KEY_COLUMNS, checked_identifier, is_plain_identifier, string_literal

T = TypeVar("T")
# The first file of a day has no number: a store written before files were numbered reads as it was.
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.(\d+))?\.(parquet|dropped)$")
MARKER = ".btc_feature_store"
_MARKER_TEXT = "A btc-lifecycle feature store: a folder per table, a Parquet file per UTC day of open_time.\n"
_LOCKS = ".locks"
# How long a superseded day file stays readable: longer than any connection is kept open.
RETENTION = pd.Timedelta(hours=1)


class FeatureStoreUnreachable(RuntimeError):
    """The store's folder is there but holds no store: most likely a shared file system not mounted."""


def days_between(start, end) -> list[pd.Timestamp]:
    """The UTC days [start, end) touches, as naive midnights."""
    first = _naive(start).floor("D")
    last = (_naive(end) - pd.Timedelta(microseconds=1)).floor("D")
    return list(pd.date_range(first, last, freq="D")) if last >= first else []


def _naive(moment) -> pd.Timestamp:
    moment = pd.Timestamp(moment)
    return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment


@dataclass(frozen=True)
class _DayFile:
    """One file of a table's day: the day's rows as of one write, or the mark that it was dropped."""

    path: Path
    number: int  # 0 for the day's first file, which has none in its name
    dropped: bool


def _day_file_history(folder: Path) -> dict[str, list[_DayFile]]:
    """Each day's files in ``folder``, oldest first; the last one is the day."""
    history: dict[str, list[_DayFile]] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            if found := _DAY_FILE.match(path.name):
                day, number, kind = found.groups()
                history.setdefault(day, []).append(_DayFile(path, int(number or 0), kind == "dropped"))
    return {day: sorted(files, key=lambda file: file.number) for day, files in sorted(history.items())}


def _current(history: dict[str, list[_DayFile]]) -> dict[str, _DayFile]:
    return {day: files[-1] for day, files in history.items() if not files[-1].dropped}


@contextlib.contextmanager
def _flock(path: Path, exclusive: bool) -> Iterator[None]:
    """``path`` (created if absent) locked for the block; a lock per open file, so two threads
    of one process exclude each other too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:  # closing it releases the lock
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


def _create_store(root: Path) -> None:
    """``root`` with its marker, made by one rename: another process opening it at the same time
    sees no folder or a marked one, never an empty one."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staged = root.parent / f".{root.name}.{uuid.uuid4().hex}.partial"
    staged.mkdir()
    (staged / MARKER).write_text(_MARKER_TEXT)
    try:
        staged.rename(root)
    except OSError:  # another process made it first
        shutil.rmtree(staged)
        if not root.is_dir():
            raise


class _LayoutChanged(Exception):
    """A write of some days changed the table's columns, which drops its other days: it must
    hold the whole table."""


class ParquetStoreConnection:
    """An in-memory DuckDB connection whose tables are views over ``root``'s day files; the
    ``FeatureStore`` of the Parquet backend.

    Everything not defined here (``execute``, ``register``, ...) is the DuckDB connection's own.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._open_root()
        self._conn = duckdb.connect()
        self.refresh_views()

    def _open_root(self) -> None:
        """Create the store when its folder is absent; refuse a folder that holds no store."""
        marker = self.root / MARKER
        if not self.root.exists():
            _create_store(self.root)
        if marker.is_file():
            return
        if any(self.day_files(path.name) for path in self.root.iterdir() if path.is_dir()):
            with contextlib.suppress(OSError):  # a store made before the marker; read-only, it is still read
                marker.write_text(_MARKER_TEXT)
            return
        raise FeatureStoreUnreachable(
            f"the Parquet feature store {self.root} is there but holds no store (no {MARKER} file, no table "
            "of day files), so nothing was read or written. An empty folder here is what a shared file "
            "system that is not mounted looks like: mount it and run again. To create a new store in this "
            "folder instead, remove it if it is empty, or set FEATURE_PARQUET_DIR to a folder that does not "
            "exist yet."
        )

    def __getattr__(self, name: str):
        if name == "_conn":  # not set yet: __init__ failed before connecting
            raise AttributeError(name)
        return getattr(self._conn, name)

    def __enter__(self) -> ParquetStoreConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def day_files(self, table: str) -> list[Path]:
        """The file of each day ``table`` holds now, in date order."""
        return [file.path for file in _current(_day_file_history(self.root / table)).values()]

    def refresh_views(self) -> None:
        """A view per table over the files of its days as they are now: files written later are
        new files, which this connection reads once it refreshes again."""
        kinds = dict(self._conn.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
        for folder in sorted(self.root.iterdir()):
            if not is_plain_identifier(folder.name) or not folder.is_dir():
                continue
            name = checked_identifier(folder.name)
            files = self.day_files(folder.name)
            if not files:  # every day dropped
                if kinds.get(folder.name) == "VIEW":
                    self._conn.execute(f"DROP VIEW {name}")
                continue
            if kinds.get(folder.name) == "BASE TABLE":  # an empty stand-in made before any file existed
                self._conn.execute(f"DROP TABLE {name}")
            # A view's definition cannot hold a parameter: the paths are quoted literals.
            listed = ", ".join(string_literal(path) for path in files)
            self._conn.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{listed}])")

    def rewrite(
        self, table: str, days: list[pd.Timestamp] | None, write: Callable[[duckdb.DuckDBPyConnection], T]
    ) -> T:
        """Run ``write`` on a scratch DuckDB holding ``table``'s rows of ``days`` (None: all days),
        then store each of those days (and any new day the write produced) as a new file."""
        checked_identifier(table)
        try:
            result = self._rewrite(table, days, write, whole_table=days is None)
        except _LayoutChanged:
            result = self._rewrite(table, days, write, whole_table=True)
        self.remove_superseded(tables=[table])
        self.refresh_views()
        return result

    @contextlib.contextmanager
    def _locked(self, table: str, days: list[pd.Timestamp] | None) -> Iterator[None]:
        """The table's lock, exclusive when ``days`` is None; else shared, then each day's lock
        in date order (one order for every writer: no two wait on each other in a circle)."""
        locks = self.root / _LOCKS
        with contextlib.ExitStack() as held:
            held.enter_context(_flock(locks / f"{table}.lock", exclusive=days is None))
            for day in sorted({day.date().isoformat() for day in days or []}):
                held.enter_context(_flock(locks / table / f"{day}.lock", exclusive=True))
            yield

    def _rewrite(
        self,
        table: str,
        days: list[pd.Timestamp] | None,
        write: Callable[[duckdb.DuckDBPyConnection], T],
        whole_table: bool,
    ) -> T:
        name = checked_identifier(table)
        folder = self.root / table
        with self._locked(table, None if whole_table else days):
            history = _day_file_history(folder)
            current = _current(history)
            scratch = duckdb.connect()
            try:
                layout = None
                if current:
                    first = next(iter(current.values())).path
                    scratch.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet(?) LIMIT 0", [str(first)])
                    layout = scratch.execute(f"DESCRIBE {name}").fetchall()
                    wanted = {day.date().isoformat() for day in days} if days is not None else set(current)
                    loaded = [str(file.path) for day, file in current.items() if day in wanted]
                    if loaded:
                        scratch.execute(f"INSERT INTO {name} SELECT * FROM read_parquet(?)", [loaded])
                result = write(scratch)
                rebuilt = layout is not None and scratch.execute(f"DESCRIBE {name}").fetchall() != layout
                if rebuilt and not whole_table:  # it drops the other days: again, holding all of them
                    raise _LayoutChanged
                written = self._add_day_files(scratch, table, folder, days, history)
                if rebuilt or days is None:  # the table holds only what the scratch held
                    for day in current.keys() - written:
                        self._drop_day(folder, day, history[day][-1].number + 1)
            finally:
                scratch.close()
        return result

    def _add_day_files(
        self, scratch, table: str, folder: Path, days: list[pd.Timestamp] | None, history: dict[str, list[_DayFile]]
    ) -> set[str]:
        name = checked_identifier(table)
        present = [
            pd.Timestamp(day)
            for (day,) in scratch.execute(f"SELECT DISTINCT date_trunc('day', open_time) FROM {name}").fetchall()
        ]
        targets = sorted({*(days or []), *present})
        columns = {row[0] for row in scratch.execute(f"DESCRIBE {name}").fetchall()}
        order = ", ".join(column for column in KEY_COLUMNS if column in columns)
        folder.mkdir(parents=True, exist_ok=True)
        staged: list[tuple[Path, Path]] = []
        try:
            for day in targets:
                key = day.date().isoformat()
                number = history[key][-1].number + 1 if key in history else 0
                final = folder / (f"{key}.{number}.parquet" if number else f"{key}.parquet")
                partial = folder / f".{final.name}.{uuid.uuid4().hex}.partial"
                staged.append((partial, final))
                scratch.execute(
                    f"COPY (SELECT * FROM {name} WHERE open_time >= ? AND open_time < ? "
                    f"ORDER BY {order}) TO {string_literal(partial)} (FORMAT parquet)",  # COPY's target: no parameter
                    [day, day + pd.Timedelta(days=1)],
                )
            for partial, final in staged:
                # A link, not a rename: a name taken already fails here rather than change under a reader.
                os.link(partial, final)
        finally:
            for partial, _ in staged:
                partial.unlink(missing_ok=True)
        return {final.name[:10] for _, final in staged}

    @staticmethod
    def _drop_day(folder: Path, day: str, number: int) -> None:
        os.close(os.open(folder / f"{day}.{number}.dropped", os.O_CREAT | os.O_EXCL | os.O_WRONLY))

    def remove_superseded(self, retention: pd.Timedelta = RETENTION, tables: list[str] | None = None) -> None:
        """Delete the day files superseded more than ``retention`` ago, and the files of a day
        dropped that long ago; ``tables`` None: every table."""
        horizon = time.time() - retention.total_seconds()
        names = tables if tables is not None else [path.name for path in sorted(self.root.iterdir())]
        folders = [self.root / name for name in names if is_plain_identifier(name)]
        for folder in folders:
            for files in _day_file_history(folder).values():
                settled = [_written_before(newer.path, horizon) for newer in files[1:]]
                for older, superseded_long_ago in zip(files[:-1], settled, strict=True):
                    if superseded_long_ago:
                        older.path.unlink(missing_ok=True)
                last = files[-1]  # the mark goes last: without it, an older file left would be the day again
                if last.dropped and all(settled) and _written_before(last.path, horizon):
                    last.path.unlink(missing_ok=True)


def _written_before(path: Path, horizon: float) -> bool:
    try:
        return path.stat().st_mtime < horizon
    except FileNotFoundError:  # removed by another writer's sweep meanwhile
        return True
