"""The feature store as day-partitioned Parquet files that DuckDB queries: the parallel option.

One folder per table, one file per UTC day of ``open_time`` (``<root>/<table>/<YYYY-MM-DD>.parquet``,
every series of that day in it). A connection is an in-memory DuckDB whose tables are views over
those files, so every reader of ``adapters.feature_store`` runs its own SQL unchanged. Its
``rewrite``, the ``FeatureStore`` write protocol of ``adapters.store_backends``, loads only the days
a write touches into a scratch DuckDB, runs the very same DuckDB write there, and swaps each touched
day's file in with ``os.replace``: two processes writing different days touch different files and
never wait on each other; a reader sees a day's old file or its new one.

The root folder holds a marker file, ``.btc_feature_store``, written when the store is created.
A root that is there without it (and without day files, as stores made before the marker have)
is refused: on a host that has not mounted the shared file system the store's folder is an empty
mount point, and writing there would start a second, local store.

Limits: a write of several days swaps their files one after another (each day is atomic, the set
is not); two writers of the same day at once keep the last one's file; a table whose column
layout changes (features of newer code) drops its other days' files, as the DuckDB table does.
DuckDB 2.0.1 reads Parquet without extensions; on several hosts the root must be a shared file
system (no object store: httpfs cannot be installed offline).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd

from btc_lifecycle.adapters.sql_text import KEY_COLUMNS, checked_identifier, is_plain_identifier, string_literal

T = TypeVar("T")
_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.parquet$")
MARKER = ".btc_feature_store"
_MARKER_TEXT = "A btc-lifecycle feature store: a folder per table, a Parquet file per UTC day of open_time.\n"


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
        folder = self.root / table
        if not folder.is_dir():
            return []
        return sorted(path for path in folder.glob("*.parquet") if _DAY_FILE.match(path.name))

    def refresh_views(self) -> None:
        """A view per table folder holding day files (a glob: days written later are seen too)."""
        kinds = dict(self._conn.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
        for folder in sorted(self.root.iterdir()):
            if not is_plain_identifier(folder.name) or not self.day_files(folder.name):
                continue
            name = checked_identifier(folder.name)
            if kinds.get(folder.name) == "BASE TABLE":  # an empty stand-in made before any file existed
                self._conn.execute(f"DROP TABLE {name}")
            # A view's definition cannot hold a parameter: the glob is a quoted literal.
            files = string_literal(folder / "*.parquet")
            self._conn.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({files})")

    def rewrite(
        self, table: str, days: list[pd.Timestamp] | None, write: Callable[[duckdb.DuckDBPyConnection], T]
    ) -> T:
        """Run ``write`` on a scratch DuckDB holding ``table``'s rows of ``days`` (None: all days),
        then store each of those days (and any new day the write produced) as its own file."""
        name = checked_identifier(table)
        folder = self.root / table
        existing = self.day_files(table)
        scratch = duckdb.connect()
        try:
            layout = None
            if existing:
                scratch.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet(?) LIMIT 0", [str(existing[0])])
                layout = scratch.execute(f"DESCRIBE {name}").fetchall()
                wanted = {f"{day.date().isoformat()}.parquet" for day in days} if days is not None else None
                loaded = [path for path in existing if wanted is None or path.name in wanted]
                if loaded:
                    scratch.execute(f"INSERT INTO {name} SELECT * FROM read_parquet(?)", [[str(p) for p in loaded]])
            result = write(scratch)
            rebuilt = layout is not None and scratch.execute(f"DESCRIBE {name}").fetchall() != layout
            written = self._swap_days(scratch, table, folder, days)
            if rebuilt or days is None:  # the table holds only what the scratch held
                for path in existing:
                    if path.name not in written:
                        path.unlink(missing_ok=True)
        finally:
            scratch.close()
        self.refresh_views()
        return result

    def _swap_days(self, scratch, table: str, folder: Path, days: list[pd.Timestamp] | None) -> set[str]:
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
                final = folder / f"{day.date().isoformat()}.parquet"
                partial = folder / f".{final.name}.{uuid.uuid4().hex}.partial"
                scratch.execute(
                    f"COPY (SELECT * FROM {name} WHERE open_time >= ? AND open_time < ? "
                    f"ORDER BY {order}) TO {string_literal(partial)} (FORMAT parquet)",  # COPY's target: no parameter
                    [day, day + pd.Timedelta(days=1)],
                )
                staged.append((partial, final))
        except BaseException:
            for partial, _ in staged:
                partial.unlink(missing_ok=True)
            raise
        for partial, final in staged:
            os.replace(partial, final)
        return {final.name for _, final in staged}
