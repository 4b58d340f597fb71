"""SIGKILL at the worst moments: mid-ingestion, mid-upsert, mid-report, mid-training.

Each kill point is reached deterministically: the replay exchange holds a klines request (a
``delay`` fault) or a test harness in the child process blocks at the named step and says so;
the test polls for that signal (bounded) and then kills the whole process group.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from mlflow.tracking import MlflowClient

from btc_lifecycle.adapters.feature_store import upsert_candles
from btc_lifecycle.adapters.model_registry import ModelRegistry
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.replay_exchange import Fault, ReplayExchange
from btc_lifecycle.reporting.retention import completed_report_folders
from btc_lifecycle_tests.e2e.reliability.conftest import (
    assert_stored,
    kill_group,
    materialize_command,
    ms,
    replay_days,
    start,
    wait_for,
    write_ingest_config,
)
from btc_lifecycle_tests.e2e.reliability.test_concurrency import open_instance
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT, Workspace

pytestmark = pytest.mark.e2e
SERIES = CandleSeries(table="candles", symbol="BTC/USDT", interval="1m")


def run_python_until(script: str, marker: str, log: Path) -> None:
    """Run ``script`` in a child Python, wait until it prints ``marker``, then SIGKILL it."""
    child = start([sys.executable, "-c", textwrap.dedent(script)], {**os.environ, "PYTHONPATH": str(REPO_ROOT)}, log)
    try:
        wait_for(lambda: marker in log.read_text() or child.poll() is not None, f"{marker!r} in {log}")
        assert marker in log.read_text(), log.read_text()[-4000:]
    finally:
        kill_group(child)


def test_a_run_killed_mid_backfill_leaves_the_store_as_it_was_and_the_next_run_completes(tmp_path, candles):
    workspace = Workspace(tmp_path / "state")
    config = write_ingest_config(tmp_path, request_timeout_seconds=300)
    home = tmp_path / "state" / "dagster_home"
    with ReplayExchange(candles, speed=0, start=candles["open_time"].iloc[300]) as exchange:
        env = workspace.env(BINANCE_API_URL=exchange.base_url, INGEST_CONFIG=str(config), INGEST_BACKFILL_DAYS="all")
        first = subprocess.run(
            materialize_command(replay_days(exchange.base_url)),
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert first.returncode == 0, first.stderr[-4000:]
        before = workspace.stored()
        exchange.clock.set_now(ms(candles["open_time"].iloc[-1]) + 60_000)
        days = replay_days(exchange.base_url)
        exchange.faults.add(Fault("klines", "delay:600", count=1, after=3))  # holds the 4th page
        victim = start(materialize_command(days), env, tmp_path / "killed.log")
        wait_for(lambda: exchange.faults.describe()[0]["seen"] >= 4 or victim.poll() is not None, "the held page")
        kill_group(victim)
        assert_stored(workspace.stored(), before)  # pages 1-3 were fetched, none stored
        exchange.faults.clear()
        # The next run as `make run` starts it: through the launcher, which fails the dead run
        # and frees its 'duckdb' pool slot (else this run would wait for that slot for ever).
        after = subprocess.run(
            [sys.executable, "-m", "btc_lifecycle.launch", "--", *materialize_command(days)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert after.returncode == 0, after.stderr[-4000:]
    assert "marked failed and its pool slots freed" in after.stdout
    assert_stored(workspace.stored(), candles)
    assert workspace.stats["new_rows"] == len(candles) - 300
    with open_instance(home) as instance:
        statuses = sorted(run.status.value for run in instance.get_runs())
    assert statuses == ["FAILURE", "SUCCESS", "SUCCESS"]


UPSERT_UNTIL_COMMIT = """
    import sys, duckdb
    from btc_lifecycle.adapters.feature_store import upsert_candles
    from btc_lifecycle.domain.candles import CandleSeries
    from btc_lifecycle.domain.synthetic import synthetic_candles

    class HoldBeforeCommit:
        # A connection that, at COMMIT, reports and waits to be killed.
        def __init__(self, conn): self.conn = conn
        def __getattr__(self, name): return getattr(self.conn, name)
        def execute(self, sql, *args):
            if sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
                print("INSERTING", flush=True)
            if sql == "COMMIT":
                print("BEFORE COMMIT", flush=True)
                while True: pass
            return self.conn.execute(sql, *args)

    candles = synthetic_candles(300_000, seed=4)
    conn = duckdb.connect(sys.argv[1] if len(sys.argv) > 1 else "{db}")
    upsert_candles(HoldBeforeCommit(conn), CandleSeries("candles", "BTC/USDT", "1m"), candles)
"""


@pytest.mark.parametrize("marker", ["INSERTING", "BEFORE COMMIT"])
def test_an_upsert_killed_before_its_commit_is_rolled_back_whole(tmp_path, marker):
    db = tmp_path / "bitcoin.duckdb"
    stored = synthetic_candles(300_000, seed=4).iloc[:1_000]
    with duckdb.connect(str(db)) as conn:
        upsert_candles(conn, SERIES, stored)
    run_python_until(UPSERT_UNTIL_COMMIT.replace("{db}", str(db)), marker, tmp_path / "upsert.log")
    with duckdb.connect(str(db)) as conn:  # replays the WAL: only committed work survives
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT open_time) FROM candles").fetchone()
        assert (rows, distinct) == (1_000, 1_000)
        everything = synthetic_candles(300_000, seed=4)
        assert upsert_candles(conn, SERIES, everything) == 299_000  # the next run completes
        assert conn.execute("SELECT count(*), count(DISTINCT open_time) FROM candles").fetchone() == (300_000, 300_000)


REPORT_UNTIL_PUBLISH = """
    import sys
    from datetime import datetime, timezone
    from btc_lifecycle.reporting import ReportFacts, build_ingestion_report, retention
    from btc_lifecycle_tests.reporting.conftest import seeded_labeled_candles

    def hold(folder, stamp):
        print("WRITTEN, NOT PUBLISHED", flush=True)
        while True: pass

    retention.publish_report_folder = hold
    labeled = seeded_labeled_candles()
    facts = ReportFacts(source="test", symbol="BTC/USDT", interval="1m", rows_new=1,
                        rows_total=len(labeled), missing_minutes=0, gaps=[],
                        generated_at=datetime.now(timezone.utc))
    build_ingestion_report(labeled, facts, "{root}", keep_last=3)
"""


def test_a_report_killed_before_publication_is_never_taken_for_a_report(tmp_path):
    from btc_lifecycle.reporting import ReportFacts, build_ingestion_report
    from btc_lifecycle_tests.reporting.conftest import seeded_labeled_candles

    root = tmp_path / "reports"
    run_python_until(
        REPORT_UNTIL_PUBLISH.replace("{root}", str(root)), "WRITTEN, NOT PUBLISHED", tmp_path / "report.log"
    )
    leftovers = list((root / "ingestion").iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".tmp-")
    assert (leftovers[0] / "report.pdf").exists()  # complete on disk, yet not a report
    assert completed_report_folders(root / "ingestion") == []
    labeled = seeded_labeled_candles()
    facts = ReportFacts(
        source="test",
        symbol="BTC/USDT",
        interval="1m",
        rows_new=1,
        rows_total=len(labeled),
        missing_minutes=0,
        gaps=[],
        generated_at=datetime.now(UTC),
    )
    report = build_ingestion_report(labeled, facts, root, keep_last=1)
    assert completed_report_folders(root / "ingestion") == [report.pdf_path.parent]


TRAINING_UNTIL_ALIAS = """
    import sys
    from btc_lifecycle.adapters.model_registry import ModelRegistry
    from btc_lifecycle.modelling.features import compute_features
    from btc_lifecycle.modelling.walk_forward import train_walk_forward
    from btc_lifecycle_tests.modelling.conftest import FAST_CONFIG, mean_reverting_candles

    result = train_walk_forward(compute_features(mean_reverting_candles(6_000, seed=8), "1m"), FAST_CONFIG)
    registry = ModelRegistry.in_directory("{root}")
    registry.log_training(result, dagster_run_id="first", margin=0.0)
    print("CHAMPION LOGGED", flush=True)

    def hold(*args, **kwargs):
        print("REGISTERED, NOT TAGGED", flush=True)
        while True: pass

    ModelRegistry._tag_decision = hold
    registry.log_training(result, dagster_run_id="second", margin=0.0)
"""


def test_a_training_killed_after_registration_never_moves_the_champion_and_leaves_no_version_without_its_model(
    tmp_path,
):
    root = tmp_path / "mlflow"
    run_python_until(
        TRAINING_UNTIL_ALIAS.replace("{root}", str(root)), "REGISTERED, NOT TAGGED", tmp_path / "train.log"
    )
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name = 'btc_direction'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert str(client.get_model_version_by_alias("btc_direction", "champion").version) == "1"
    # MlflowClient only: mlflow.set_registry_uri() leaves MLFLOW_REGISTRY_URI in os.environ for
    # every later subprocess of the session, even after set_registry_uri(None).
    for version in versions:  # MLflow writes the model's files before it registers the version
        model_id = version.model_id or version.source.removeprefix("models:/")
        location = client.get_logged_model(model_id).artifact_location
        files = {path.name for path in Path(location.removeprefix("file://")).rglob("*")}
        assert {"MLmodel", "model.ubj"} <= files, files
    # The killed run cannot end its MLflow run; the next training marks it FAILED.
    registry = ModelRegistry.in_directory(root)
    assert registry.fail_abandoned_runs(is_alive=lambda dagster_run_id: dagster_run_id == "first") != []
    experiment = client.get_experiment_by_name("btc_direction").experiment_id
    assert {run.data.tags["dagster_run_id"]: run.info.status for run in client.search_runs([experiment])} == {
        "first": "FINISHED",
        "second": "FAILED",
    }
