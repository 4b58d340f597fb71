"""Helpers for end-to-end tests: run the project's commands as a user would, in temp dirs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from mlflow import MlflowClient

from btc_lifecycle.adapters.feature_store import read_candles
from btc_lifecycle.production.layout import ProfileLayout

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Every asset of the code location's graph, in lineage order.
GRAPH_ASSETS = (
    "raw_candles",
    "labeled_candles",
    "ingestion_stats",
    "ingestion_report",
    "features",
    "model",
    "backtest",
    "predictions",
    "drift_report",
    "feast_offline_features",
    "feast_online_features",
)


def materialize_command(selection: str = "*", extra: Sequence[str] = ()) -> list[str]:
    """``dagster asset materialize`` of ``selection`` from the code location; ``extra`` after it."""
    return [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "btc_lifecycle.definitions",
        "--select",
        selection,
        *extra,
    ]


def launch_command(candles: Path, *launcher_flags: str, selection: str = "*", extra: Sequence[str] = ()) -> list[str]:
    """``make run``'s command: the launcher (replaying ``candles``, with ``launcher_flags``) around
    ``dagster asset materialize`` of ``selection``; ``extra`` follows the materialize arguments."""
    launcher = [sys.executable, "-m", "btc_lifecycle.launch", *launcher_flags, "--candles", str(candles), "--"]
    return [*launcher, *materialize_command(selection, extra)]


@dataclass
class Workspace:
    """An isolated project state: its own Dagster home, feature store, reports and MLflow store."""

    root: Path

    def __post_init__(self) -> None:
        (self.root / "dagster_home").mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "config" / "dagster.yaml", self.root / "dagster_home" / "dagster.yaml")

    @property
    def feature_db(self) -> Path:
        return self.root / "feature_store" / "bitcoin.duckdb"

    @property
    def stats(self) -> dict:
        return json.loads((self.feature_db.parent / "ingestion_stats.json").read_text())

    def mlflow_client(self) -> MlflowClient:
        """A client on this workspace's MLflow store, tracking and registry both: an in-process
        test before may have set a registry URI for the whole process."""
        uri = self.env()["MLFLOW_TRACKING_URI"]
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DAGSTER_HOME": str(self.root / "dagster_home"),
            "FEATURE_DB_PATH": str(self.feature_db),
            "BTC_REPORT_DIR": str(self.root / "reports"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{self.root / 'mlflow' / 'mlflow.db'}",
            "MLFLOW_REGISTRY_URI": f"sqlite:///{self.root / 'mlflow' / 'mlflow.db'}",
            **extra,
        }

    def materialize(
        self,
        candles: Path,
        selection: str = "*",
        replay: list[str] = (),
        timeout: int = 600,
        extra: list[str] = (),
        **env: str,
    ) -> subprocess.CompletedProcess:
        """``python -m btc_lifecycle.launch --candles FILE --history -- dagster asset materialize ...``:
        one run over every day the replayed file has up to the replay clock, as ``make run``;
        ``extra`` goes after the command's own arguments (``--config-json ...``)."""
        command = launch_command(candles, *replay, "--history", selection=selection, extra=extra)
        result = subprocess.run(
            command, cwd=REPO_ROOT, env=self.env(**env), capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise AssertionError(
                f"materialize failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
            )
        return result

    def stored(self, table: str = "candles") -> pd.DataFrame:
        with duckdb.connect(str(self.feature_db), read_only=True) as conn:
            return read_candles(conn, table, "BTC/USDT", "1m")


@contextmanager
def profile_instance(layout: ProfileLayout) -> Iterator[dg.DagsterInstance]:
    """The production profile's Dagster instance, opened in this process: its dagster.yaml and
    libpq read the database's address and password file from the environment, set meanwhile."""
    saved = dict(os.environ)
    os.environ.update(layout.client_environment())
    try:
        with dg.DagsterInstance.from_config(str(layout.dagster_home)) as instance:
            yield instance
    finally:
        os.environ.clear()
        os.environ.update(saved)
