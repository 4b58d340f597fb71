"""The DuckDB feature store as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource


class FeatureStoreResource(DuckDBResource):
    """dagster-duckdb's resource, creating the store's folder and always closing the connection."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with super().get_connection() as conn:
            try:
                yield conn
            finally:
                conn.close()
