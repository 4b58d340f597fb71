"""The feature store's write protocol, ``FeatureStore``, and its two implementations.

Both backends' connections answer DuckDB's query API, so every reader in ``adapters.feature_store``
runs the same SQL on either. A write is DuckDB SQL too, handed to ``rewrite(table, days, write)``;
the backend decides where it runs and how its result is kept:

- ``DuckDBStore`` (the DuckDB file, the default): on the database itself, in one transaction.
- ``ParquetStoreConnection`` (``adapters.parquet_store``): on a scratch DuckDB holding ``table``'s
  rows of ``days``, under those days' locks; it then adds a new file for each day.

The backend is chosen once, by ``resources.FeatureStoreResource``; ``store_of`` adapts the plain
DuckDB connection that resource (or a test) hands out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

import duckdb
import pandas as pd

T = TypeVar("T")


@runtime_checkable
class FeatureStore(Protocol):
    def rewrite(
        self, table: str, days: list[pd.Timestamp] | None, write: Callable[[duckdb.DuckDBPyConnection], T]
    ) -> T:
        """Run ``write`` on a DuckDB connection holding ``table``'s rows of the UTC ``days`` (None:
        all of them), and keep what it leaves there, whole or not at all; returns what it returned.

        ``write`` changes those days alone: the DuckDB file hands it every day of every table."""
        ...


class DuckDBStore:
    """A DuckDB database as the feature store: each write one transaction on its connection."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    def rewrite(
        self, table: str, days: list[pd.Timestamp] | None, write: Callable[[duckdb.DuckDBPyConnection], T]
    ) -> T:
        # The database holds every day of every table already: nothing to load or store.
        self.conn.execute("BEGIN TRANSACTION")
        try:
            result = write(self.conn)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return result


def store_of(conn: duckdb.DuckDBPyConnection | FeatureStore) -> FeatureStore:
    """``conn`` as a feature store: a Parquet store's connection is one; any other is a DuckDB database's."""
    return conn if isinstance(conn, FeatureStore) else DuckDBStore(conn)
