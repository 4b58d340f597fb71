"""Helpers for the reliability suite: an ingest through the real assets, in process or as a CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from btc_lifecycle.adapters.feature_store import read_candles, table_exists
from btc_lifecycle.config import load_settings
from btc_lifecycle.defs.ingestion.assets import ingestion_assets
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.launch import history_partition_range
from btc_lifecycle.resources import CandleExchangeResource, FeatureStoreResource
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG
from btc_lifecycle_tests.e2e.workspace import BIN, REPO_ROOT

PRICES = ["open_time", "open", "high", "low", "close", "volume"]
# No waiting in retries: backoff 0 s, and the faults in these tests send Retry-After 0.
FAST_RETRIES = {"limit": 100, "max_retries": 3, "retry_initial_seconds": 0, "retry_max_seconds": 1}


@pytest.fixture
def candles() -> pd.DataFrame:
    """1,050 generated minutes: 11 pages of 100."""
    return synthetic_candles(1_050, seed=31)


def write_ingest_config(folder: Path, **changes) -> Path:
    path = folder / "bitcoin_ingest.json"
    path.write_text(json.dumps({**DEFAULT_CONFIG, **FAST_RETRIES, **changes}))
    return path


class Store:
    """A temp feature store and the in-process ingestion slice that fills it."""

    def __init__(self, root: Path, **config) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.config = write_ingest_config(root, **config)
        self.db = root / "feature_store" / "bitcoin.duckdb"
        self.instance = dg.DagsterInstance.ephemeral()

    def settings(self, api_url: str):
        return load_settings(self.env(api_url))

    def env(self, api_url: str) -> dict[str, str]:
        return {
            "INGEST_CONFIG": str(self.config),
            "FEATURE_DB_PATH": str(self.db),
            "BTC_REPORT_DIR": str(self.root / "reports"),
            "BINANCE_API_URL": api_url,
            "INGEST_BACKFILL_DAYS": "all",
        }

    def ingest(self, api_url: str, days: str | None = None) -> dg.ExecuteInProcessResult:
        """The ingestion slice over ``days`` (``FIRST...LAST``), by default every day the exchange
        has up to its today, as ``make run`` takes them: one run."""
        settings = self.settings(api_url)
        return dg.materialize(
            ingestion_assets(settings),
            resources=self.resources(settings),
            instance=self.instance,
            raise_on_error=False,
            tags=partition_range_tags(days or history_partition_range(api_url, self.env(api_url), replay=True)),
        )

    @staticmethod
    def resources(settings) -> dict[str, object]:
        """What the ingestion assets ask for, on ``settings``' exchange and store."""
        return {
            "settings": settings,
            "exchange": CandleExchangeResource.from_settings(settings),
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
        }

    def table(self, name: str = "candles") -> pd.DataFrame:
        with duckdb.connect(str(self.db), read_only=True) as conn:
            if not table_exists(conn, name):
                return pd.DataFrame(columns=PRICES)
            return read_candles(conn, name, "BTC/USDT", "1m")

    def snapshot(self) -> dict:
        """Everything an ingest may change: both tables and the stats file, byte for byte."""
        stats = self.db.parent / "ingestion_stats.json"
        return {
            "candles": self.table(),
            "labeled": self.table("candles_labeled"),
            "stats": stats.read_bytes() if stats.exists() else None,
        }

    @property
    def stats(self) -> dict:
        return json.loads((self.db.parent / "ingestion_stats.json").read_text())


def partition_range_tags(days: str) -> dict[str, str]:
    """The run tags of a single-run backfill of ``FIRST...LAST`` (what `--partition-range` sets)."""
    first, last = days.split("...")
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def assert_same_snapshot(before: dict, after: dict) -> None:
    pd.testing.assert_frame_equal(before["candles"], after["candles"])
    pd.testing.assert_frame_equal(before["labeled"], after["labeled"])
    assert before["stats"] == after["stats"]


def assert_stored(stored: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Exactly the expected candles: same minutes, same prices, none twice."""
    assert not stored["open_time"].duplicated().any()
    pd.testing.assert_frame_equal(
        stored[PRICES].reset_index(drop=True), expected[PRICES].reset_index(drop=True), check_dtype=False
    )


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = result.asset_materializations_for_node(asset)
    return {key: value.value for key, value in events[-1].metadata.items()}


def step_failure(result: dg.ExecuteInProcessResult) -> str:
    failures = [event for event in result.all_events if event.is_step_failure]
    assert failures, "expected a failed step"
    error = failures[0].step_failure_data.error
    return error.message + "".join(cause.message for cause in _causes(error))


def _causes(error):
    while error.cause is not None:
        error = error.cause
        yield error


def ms(moment: pd.Timestamp) -> int:
    return int(moment.timestamp() * 1000)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Bounded polling for a condition (never a sleep used as synchronization)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def materialize_command(days: str | None, selection: str = "group:ingestion") -> list[str]:
    """``dagster asset materialize`` of ``selection`` over ``days`` (``FIRST...LAST``) as one run;
    ``days=None`` when the launcher appends the range itself (``--history``)."""
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "btc_lifecycle.definitions", "--select", selection]
    return [*command, "--partition-range", days] if days is not None else command


def replay_days(api_url: str) -> str:
    """Every day a replay exchange has up to its clock, as ``make run`` backfills them."""
    return history_partition_range(api_url, {"INGEST_BACKFILL_DAYS": "all"}, replay=True)


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A process in its own session (so the whole group can be killed), output to ``log``."""
    with open(log, "wb") as stream:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True
        )


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)
