"""The feature store resource: dagster-duckdb's connection, its folder created, the connection
closed, a clear error when another process holds the file through every retry, and one when the
Parquet backend's folder holds no store."""

from __future__ import annotations

import itertools
import subprocess
import sys

import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from btc_lifecycle.adapters.parquet_store import FeatureStoreUnreachable
from btc_lifecycle.resources.feature_store import FeatureStoreLocked, FeatureStoreResource

HOLD_THE_LOCK = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.fixture
def connect_attempts(monkeypatch) -> list[str]:
    """dagster-duckdb's retries of a locked file, counted, without their ~100 s of waiting."""
    import dagster._utils.backoff

    monkeypatch.setattr(dagster._utils.backoff, "exponential_delay_generator", lambda: itertools.repeat(0.0))
    attempts: list[str] = []
    real_connect = duckdb.connect

    def counted_connect(database, *args, **kwargs):
        attempts.append(database)
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", counted_connect)
    return attempts


@pytest.fixture
def locked_store(tmp_path):
    """A DuckDB file that another process holds open for writing."""
    path = tmp_path / "store" / "bitcoin.duckdb"
    path.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield path
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_the_resource_is_dagster_duckdbs_with_its_database_field():
    resource = FeatureStoreResource(database="/data/bitcoin.duckdb")
    assert isinstance(resource, DuckDBResource)
    assert (resource.database, resource.backend, resource.connection_config) == ("/data/bitcoin.duckdb", "duckdb", {})


def test_a_store_locked_by_another_process_fails_with_feature_store_locked_naming_the_file(
    locked_store, connect_attempts
):
    resource = FeatureStoreResource(database=str(locked_store))
    with pytest.raises(FeatureStoreLocked) as raised:
        with resource.get_connection():
            pass
    message = str(raised.value)
    assert str(locked_store) in message
    assert "stayed locked by another process through dagster-duckdb's 10 retries" in message
    assert "'duckdb' pool" in message
    assert isinstance(raised.value.__cause__, duckdb.IOException)
    assert connect_attempts == [str(locked_store)] * 11  # the first attempt and 10 retries


def test_an_io_error_that_is_not_a_lock_is_raised_as_it_is(tmp_path, connect_attempts):
    not_a_database = tmp_path / "store.duckdb"
    not_a_database.write_text("these bytes are not a DuckDB file")
    with pytest.raises(duckdb.Error) as raised:
        with FeatureStoreResource(database=str(not_a_database)).get_connection():
            pass
    assert not isinstance(raised.value, FeatureStoreLocked)


def test_the_stores_folder_is_created_and_the_connection_closed_when_the_block_ends(tmp_path):
    with FeatureStoreResource(database=str(tmp_path / "new" / "store.duckdb")).get_connection() as conn:
        conn.execute("create table t as select 1 as x")
    with pytest.raises(duckdb.ConnectionException):
        conn.execute("select 1")
    with FeatureStoreResource(database=str(tmp_path / "new" / "store.duckdb")).get_connection() as again:
        assert again.execute("select x from t").fetchall() == [(1,)]


def test_the_connection_is_closed_when_the_block_raises(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with FeatureStoreResource(database=str(tmp_path / "store.duckdb")).get_connection() as conn:
            1 / 0  # noqa: B018
    with pytest.raises(duckdb.ConnectionException):
        conn.execute("select 1")


def test_the_parquet_backend_on_an_empty_folder_fails_with_feature_store_unreachable_naming_it(tmp_path):
    """A worker host whose shared file system is not mounted: no local store is started there."""
    mount_point = tmp_path / "share"
    mount_point.mkdir()
    resource = FeatureStoreResource(
        database=str(tmp_path / "bitcoin.duckdb"), backend="parquet", parquet_dir=str(mount_point)
    )
    with pytest.raises(FeatureStoreUnreachable, match="a shared file system that is not mounted") as raised:
        with resource.get_connection():
            pass
    assert str(mount_point) in str(raised.value)
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["share"]
