"""The feature store as day-partitioned Parquet files that DuckDB queries: the parallel option.

One folder per table, one file per UTC day of ``open_time`` (``<root>/<table>/<YYYY-MM-DD>.parquet``,
every series of that day in it). A connection is an in-memory DuckDB whose tables are views over
those files, so every reader of ``adapters.feature_store`` runs its own SQL unchanged. Its
``rewrite``, the ``FeatureStore`` write protocol of ``adapters.store_backends``, loads only the days
a write touches into a scratch DuckDB, runs the very same DuckDB write there, and swaps each touched
day's file in with ``os.replace``: two processes writing different days touch different files and
never wait on each other; a reader sees a day's old file or its new one.

Limits: a write of several days swaps their files one after another (each day is atomic, the set
is not); two writers of the same day at once keep the last one's file; a table whose column
layout changes (features of newer code) drops its other days' files, as the DuckDB table does.
DuckDB 2.0.1 reads Parquet without extensions; on several hosts the root must be a shared file
system (no object store: httpfs cannot be installed offline).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd

from btc_lifecycle.adapters.sql_text import KEY_COLUMNS, checked_identifier, is_plain_identifier, string_literal

T = TypeVar("T")
_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.parquet$")


def days_between(start, end) -> list[pd.Timestamp]:
    """The UTC days [start, end) touches, as naive midnights."""
    first = _naive(start).floor("D")
    last = (_naive(end) - pd.Timedelta(microseconds=1)).floor("D")
    return list(pd.date_range(first, last, freq="D")) if last >= first else []


def _naive(moment) -> pd.Timestamp:
    moment = pd.Timestamp(moment)
    return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment


class ParquetStoreConnection:
    """An in-memory DuckDB connection whose tables are views over ``root``'s day files; the
    ``FeatureStore`` of the Parquet backend.

    Everything not defined here (``execute``, ``register``, ...) is the DuckDB connection's own.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._conn = duckdb.connect()
        self.refresh_views()

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
