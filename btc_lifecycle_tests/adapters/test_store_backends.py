"""The feature store's write protocol: each backend keeps what a write leaves, whole or not at all,
and ``store_of`` gives every connection the protocol of its backend."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection, days_between
from btc_lifecycle.adapters.store_backends import DuckDBStore, FeatureStore, store_of

BACKENDS = ("duckdb", "parquet")
SECOND_DAY = days_between(pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03"))


def connect(backend: str, folder: Path):
    return (
        duckdb.connect(str(folder / "store.duckdb"))
        if backend == "duckdb"
        else ParquetStoreConnection(folder / "parquet")
    )


def create_two_days(db: duckdb.DuckDBPyConnection) -> str:
    """Hour ``x`` (0 to 47) of 2024-01-01 and 2024-01-02."""
    db.execute(
        "CREATE TABLE hours AS SELECT TIMESTAMP '2024-01-01' + INTERVAL (x) HOUR AS open_time, x FROM range(48) r(x)"
    )
    return "created"


def hours(conn) -> list[int]:
    return [x for (x,) in conn.execute("SELECT x FROM hours ORDER BY open_time").fetchall()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rewrite_keeps_what_its_write_leaves_and_returns_what_the_write_returned(tmp_path, backend):
    with connect(backend, tmp_path) as conn:
        store = store_of(conn)
        assert store.rewrite("hours", None, create_two_days) == "created"
        odd_hours_of_the_second_day = "DELETE FROM hours WHERE open_time >= '2024-01-02' AND x % 2 = 1"
        assert (
            store.rewrite("hours", SECOND_DAY, lambda db: db.execute(odd_hours_of_the_second_day).fetchone()[0]) == 12
        )
        assert hours(conn) == [*range(24), *range(24, 48, 2)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_write_that_raises_leaves_the_table_as_it_was(tmp_path, backend):
    def delete_then_stop(db: duckdb.DuckDBPyConnection) -> None:
        db.execute("DELETE FROM hours")
        raise RuntimeError("the write stopped")

    with connect(backend, tmp_path) as conn:
        store = store_of(conn)
        store.rewrite("hours", None, create_two_days)
        with pytest.raises(RuntimeError, match="the write stopped"):
            store.rewrite("hours", None, delete_then_stop)
        assert hours(conn) == list(range(48))
        assert store.rewrite("hours", SECOND_DAY, lambda db: db.execute("DELETE FROM hours").fetchone()[0]) > 0


def test_store_of_gives_a_duckdb_connection_the_duckdb_store_and_a_parquet_store_its_own_protocol(tmp_path):
    class Wrapped:  # a connection behind a proxy, as the fault-injection tests hand it over
        def __init__(self, conn):
            self.conn = conn

        def __getattr__(self, name):
            return getattr(self.conn, name)

    with duckdb.connect() as conn:
        assert isinstance(store_of(conn), DuckDBStore) and store_of(conn).conn is conn
        assert isinstance(store_of(Wrapped(conn)), DuckDBStore)
    with ParquetStoreConnection(tmp_path / "parquet") as conn:
        assert store_of(conn) is conn
        assert isinstance(conn, FeatureStore)
