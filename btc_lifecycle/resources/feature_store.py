"""The feature store as a Dagster resource: the DuckDB file, or day-partitioned Parquet.

The one place the backend is chosen: ``get_connection`` hands out a DuckDB connection or a
``ParquetStoreConnection``, and ``adapters.store_backends.store_of`` gives either one the same
write protocol."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

if TYPE_CHECKING:
    from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection
    from btc_lifecycle.config import Settings


class FeatureStoreLocked(RuntimeError):
    """Another process kept the DuckDB file locked through every connection attempt."""


class FeatureStoreResource(DuckDBResource):
    """dagster-duckdb's ``DuckDBResource`` with a Parquet backend beside it; it creates the store's
    folder, always closes the connection, and names the file when it stays locked."""

    backend: str = Field(
        default="duckdb",
        description="'duckdb': the database file, one writer at a time; 'parquet': a file per table and "
        "UTC day under parquet_dir, queried by DuckDB, so runs of different days write at the same time.",
    )
    parquet_dir: str = Field(default="", description="The Parquet backend's folder.")

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureStoreResource:
        return cls(
            database=str(settings.feature_db_path),
            backend=settings.feature_store_backend,
            parquet_dir=str(settings.feature_store_parquet_dir),
        )

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection | ParquetStoreConnection]:
        if self.backend == "parquet":  # no lock to wait for: each write swaps its own days' files
            from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection

            with ParquetStoreConnection(self.parquet_dir) as conn:
                yield conn
            return
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            try:  # DuckDBResource retries a locked file 10 times, waiting 0.1 s doubling to 51.2 s
                conn = stack.enter_context(super().get_connection())
            except duckdb.IOException as error:
                if "lock" not in str(error).lower():
                    raise
                raise FeatureStoreLocked(
                    f"the feature store {self.database} stayed locked by another process through "
                    f"dagster-duckdb's 10 retries (about 100 s; DuckDB allows one writing process per "
                    f"file, and the 'duckdb' pool in dagster.yaml serializes the runs of one Dagster "
                    f"instance): {error}"
                ) from error
            stack.callback(conn.close)  # DuckDBResource closes it only when the block raised nothing
            yield conn
