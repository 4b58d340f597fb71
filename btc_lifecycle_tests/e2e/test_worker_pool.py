"""The worker pool on separate hosts: the production profile's main host (PostgreSQL, the MLflow
server, Redis, Dagster's code server, webserver and daemon) and two worker hosts, each a network
namespace of its own (``hosts.py``), each running one Celery worker (``make worker``).

Every call between hosts crosses a network interface: the main host listens on its own address
only, and the workers reach it there. The hosts share the profile's folder, as hosts share a
network file system: the Celery config and the Parquet feature store are files in it.

The tests run in file order (one pytest-xdist worker takes the whole file); the fixture removes
the hosts, and every process on them, whatever happened.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg2
import pytest
from mlflow.tracking import MlflowClient

from btc_lifecycle.adapters.feature_store import read_table
from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection
from btc_lifecycle.adapters.worker_pool import celery_app
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.production import postgres
from btc_lifecycle.production.layout import DAGSTER_DB, DB_USER, ProfileLayout
from btc_lifecycle.production.processes import read_record
from btc_lifecycle_tests.conftest import write_generic_csv
from btc_lifecycle_tests.e2e.hosts import Hosts, NamespacesRefused, separate_hosts
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT, launch_command, profile_instance

pytestmark = pytest.mark.e2e

CANDLES = synthetic_candles(3 * 1440 + 240, seed=31)  # 2024-01-01 .. 2024-01-03 whole, then 4 hours
CANDLES_FIRST_DAY = "2024-01-01"
WORKER_HOSTS = ("w1", "w2")
# A dead host's step goes to the other worker after this long (the profile's default is an hour);
# longer than any step of the graph here takes, even on a loaded machine.
VISIBILITY_TIMEOUT = 40
STORED = ("candles", "candles_labeled", "candles_features")


@dataclass
class Pool:
    hosts: Hosts
    root: Path
    env: dict[str, str]  # the main host's environment; its profile.env adds the addresses
    layout: ProfileLayout
    candles: Path
    workers: dict[str, subprocess.Popen]

    def client_env(self) -> dict[str, str]:
        return {**self.env, **self.layout.client_environment()}

    def on(self, host: str, command: list[str], timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.hosts.command(host, command, **kwargs),
            cwd=REPO_ROOT,
            env=self.client_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_worker(self, host: str, mounts: list[str] | None = None) -> subprocess.Popen:
        """``make worker`` on ``host``, with the main host's profile.env in its environment."""
        command = [sys.executable, "-m", "btc_lifecycle.production", "worker", "--name", "worker"]
        log = (self.root / f"worker-{host}.log").open("ab")
        process = subprocess.Popen(
            self.hosts.command(host, command, mounts),
            cwd=REPO_ROOT,
            env=self.client_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers[host] = process
        return process

    def worker_names(self) -> set[str]:
        """The workers that answer a ping through the broker, as Celery names them."""
        app = celery_app(self.layout.broker_url)
        try:
            return {name for reply in app.control.ping(timeout=2.0) for name in reply}
        finally:
            app.close()

    def wait_for_workers(self, hosts: tuple[str, ...], timeout: float = 120) -> None:
        wanted = {f"worker@{self.hosts.hostname(host)}" for host in hosts}
        deadline = time.monotonic() + timeout
        while not wanted <= self.worker_names():
            for host in hosts:
                assert self.workers[host].poll() is None, (self.root / f"worker-{host}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"workers {wanted} not answering within {timeout:.0f} s"

    def instance(self):
        return profile_instance(self.layout)


def worker_of_each_step(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[str]]:
    """Step key -> the Celery workers (``name@hostname``) that executed it, from the run's events."""
    found: dict[str, list[str]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.is_engine_event or record.step_key is None:
            continue
        worker = event.engine_event_data.metadata.get("Celery worker")
        if worker is not None:
            found.setdefault(record.step_key, []).append(worker.value)
    return found


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    # Not under pytest's tmp_path: its folders are private to root, and PostgreSQL runs as the
    # postgres user, which must reach its data folder.
    root = Path(tempfile.mkdtemp(prefix="btc-pool-"))
    root.chmod(0o711)
    try:
        context = separate_hosts("main", *WORKER_HOSTS)
        hosts = context.__enter__()
    except NamespacesRefused as refused:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"this machine does not allow network namespaces: {refused}")
    candles = write_generic_csv(CANDLES, root / "candles.csv")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DAGSTER_", "PROFILE_", "FEATURE_"))},
        "PROFILE_DIR": str(root / "profile"),
        "PROFILE_HOST": hosts.address("main"),
        "PROFILE_WORKERS": "0",  # the broker only: every worker is on a host of its own
        "PROFILE_MLFLOW_WORKERS": "1",
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "FEATURE_DB_PATH": str(root / "store" / "feature_store" / "bitcoin.duckdb"),
        "BTC_REPORT_DIR": str(root / "store" / "reports"),
        "BTC_LOG_DIR": str(root / "launcher_logs"),
    }
    (root / "profile").mkdir()
    (root / "profile").chmod(0o711)
    pool = Pool(hosts, root, env, ProfileLayout.from_env(env), candles, {})
    try:
        up = pool.on("main", [sys.executable, "-m", "btc_lifecycle.production", "up"])
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
        for host in WORKER_HOSTS:
            pool.start_worker(host)
        pool.wait_for_workers(WORKER_HOSTS)
        yield pool
    finally:
        pool.on("main", [sys.executable, "-m", "btc_lifecycle.production", "down"], timeout=300)
        context.__exit__(None, None, None)  # every process left on the hosts is killed with them
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def graph_run(pool: Pool) -> subprocess.CompletedProcess:
    """The whole graph, as `make run CANDLES=FILE` on the main host."""
    result = pool.on("main", launch_command(pool.candles, "--progress", "--history"))
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def test_the_main_host_listens_on_its_own_address_only(pool):
    status = json.loads(pool.on("main", [sys.executable, "-m", "btc_lifecycle.production", "status", "--json"]).stdout)
    assert {part["name"] for part in status} >= {"postgres", "mlflow", "code-server", "webserver", "daemon", "redis"}
    assert all(part["answers"] for part in status), status
    assert {part["host"] for part in status if part["host"]} == {pool.hosts.address("main")}


def test_a_backfill_runs_its_steps_on_both_worker_hosts(pool, graph_run):
    with pool.instance() as instance:
        runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
        executed = {
            step: workers for run in runs for step, workers in worker_of_each_step(instance, run.run_id).items()
        }
    hosts = {worker.split("@")[1] for workers in executed.values() for worker in workers}
    assert hosts == {pool.hosts.hostname(host) for host in WORKER_HOSTS}, executed
    assert {"raw_candles", "labeled_candles", "features", "model"} <= set(executed)
    # The workers reached PostgreSQL over the network, from their own addresses.
    with (
        psycopg2.connect(
            host=pool.hosts.address("main"),
            port=pool.layout.pg_port,
            user=DB_USER,
            dbname=DAGSTER_DB,
            password=postgres.read_password(pool.layout),
            connect_timeout=5,
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE client_addr IS NOT NULL")
        clients = {row[0] for row in cursor.fetchall()}
    assert "127.0.0.1" not in clients
    # The model went through the MLflow server on the main host.
    client = MlflowClient(tracking_uri=pool.layout.mlflow_url, registry_uri=pool.layout.mlflow_url)
    assert str(client.get_model_version_by_alias("btc_direction", "champion").version) == "1"


def test_the_stored_candles_labels_and_features_equal_a_one_host_run(pool, graph_run, tmp_path):
    one_host = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MLFLOW_", "DAGSTER_", "PROFILE_", "FEATURE_", "CELERY_"))
        },
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "FEATURE_DB_PATH": str(tmp_path / "store" / "bitcoin.duckdb"),
        "BTC_REPORT_DIR": str(tmp_path / "reports"),
        "BTC_LOG_DIR": str(tmp_path / "logs"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    (tmp_path / "dagster_home").mkdir()
    shutil.copy(REPO_ROOT / "config" / "dagster.yaml", tmp_path / "dagster_home" / "dagster.yaml")
    selection = "key:raw_candles or key:labeled_candles or key:features"
    result = subprocess.run(
        launch_command(pool.candles, "--progress", "--since", CANDLES_FIRST_DAY, selection=selection),
        cwd=REPO_ROOT,
        env=one_host,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    import duckdb

    with (
        duckdb.connect(str(tmp_path / "store" / "bitcoin.duckdb"), read_only=True) as local,
        ParquetStoreConnection(pool.layout.feature_parquet_dir) as shared,
    ):
        for table in STORED:
            expected = read_table(local, table).sort_values(["symbol", "interval", "open_time"], ignore_index=True)
            stored = read_table(shared, table).sort_values(["symbol", "interval", "open_time"], ignore_index=True)
            assert len(stored) > 3 * 1440 - 100, table
            pd.testing.assert_frame_equal(stored[expected.columns], expected, check_dtype=False)


def launch_on_main(pool: Pool, command: list[str], log_name: str) -> subprocess.Popen:
    """``command`` on the main host in the background, its output in ``log_name``."""
    log = (pool.root / log_name).open("w")
    return subprocess.Popen(
        pool.hosts.command("main", command), cwd=REPO_ROOT, env=pool.client_env(), stdout=log, stderr=subprocess.STDOUT
    )


def started_run(pool: Pool, launcher: subprocess.Popen, log_name: str, ready=lambda records: True) -> str:
    """The id of the run ``launcher`` started, once its event records satisfy ``ready``."""
    deadline = time.monotonic() + 120
    with pool.instance() as instance:
        while True:
            runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            if runs and ready(instance.all_logs(runs[0].run_id)):
                return runs[0].run_id
            assert launcher.poll() is None and time.monotonic() < deadline, (pool.root / log_name).read_text()[-3000:]
            time.sleep(0.2)


def step_submitted(records) -> bool:
    """A step is on Redis (with the workers paused, it waits there)."""
    return any("Submitting celery task" in (record.message or "") for record in records)


def _wait_for_step_on_a_worker(pool: Pool, run_id: str, step: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    with pool.instance() as instance:
        while time.monotonic() < deadline:
            workers = worker_of_each_step(instance, run_id).get(step)
            if workers:
                return workers[0]
            time.sleep(0.2)
    raise AssertionError(f"step {step} of run {run_id} never started on a worker")


def test_a_worker_host_killed_mid_step_has_its_step_retried_on_the_other_host(pool, graph_run):
    """The model step's host loses power the moment it starts the step: nothing acknowledges the
    task, Redis hands it to the other worker after the visibility timeout, and the run succeeds."""
    client = MlflowClient(tracking_uri=pool.layout.mlflow_url, registry_uri=pool.layout.mlflow_url)
    versions_before = len(client.search_model_versions("name='btc_direction'"))
    command = launch_command(
        pool.candles,
        "--progress",
        selection="key:model",
        extra=["--config-json", json.dumps({"ops": {"model": {"config": {"force_retrain": True}}}})],
    )
    run = launch_on_main(pool, command, "forced_training.log")
    try:
        run_id = started_run(pool, run, "forced_training.log")
        first = _wait_for_step_on_a_worker(pool, run_id, "model")
        dead = next(host for host in WORKER_HOSTS if first.endswith(pool.hosts.hostname(host)))
        pool.hosts.kill(dead)
        assert run.wait(timeout=300) == 0, (pool.root / "forced_training.log").read_text()[-3000:]
    finally:
        if run.poll() is None:
            run.kill()
    with pool.instance() as instance:
        executed = worker_of_each_step(instance, run_id)["model"]
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
    alive = next(host for host in WORKER_HOSTS if host != dead)
    assert executed == [first, f"worker@{pool.hosts.hostname(alive)}"]
    # One new version: the killed attempt registered nothing.
    assert len(client.search_model_versions("name='btc_direction'")) == versions_before + 1
    pool.start_worker(dead)
    pool.wait_for_workers(WORKER_HOSTS)


def test_a_broker_restarted_under_queued_steps_loses_none_of_them(pool, graph_run):
    """Both workers are paused while a run's steps wait on Redis; Redis is killed and `up` starts
    it again (from its append-only file); the workers resume and the run succeeds."""
    for host in WORKER_HOSTS:
        for pid in pool.hosts.pids(host):
            os.kill(pid, signal.SIGSTOP)
    command = launch_command(pool.candles, "--progress", selection="key:ingestion_stats")
    run = launch_on_main(pool, command, "queued.log")
    try:
        run_id = started_run(pool, run, "queued.log", ready=step_submitted)
        os.kill(read_record(pool.layout.state_dir / "redis.pid").pid, signal.SIGKILL)
        up = pool.on("main", [sys.executable, "-m", "btc_lifecycle.production", "up"])
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
    finally:
        for host in WORKER_HOSTS:
            for pid in pool.hosts.pids(host):
                os.kill(pid, signal.SIGCONT)
    code = run.wait(timeout=300)
    output = (pool.root / "queued.log").read_text()
    with pool.instance() as instance:
        status = instance.get_run_by_id(run_id).status
        executed = worker_of_each_step(instance, run_id)
    assert code == 0 and status == dg.DagsterRunStatus.SUCCESS, output[-3000:]
    assert set(executed) == {"ingestion_stats"}


def test_a_worker_host_that_cannot_reach_the_feature_store_gets_one_clear_error(pool):
    """The shared folder is not mounted on the host (it sees an empty folder there)."""
    store = pool.layout.feature_parquet_dir
    pool.hosts.kill("w2")
    worker = pool.start_worker("w2", mounts=[str(store)])
    assert worker.wait(timeout=120) == 2
    output = (pool.root / "worker-w2.log").read_text().strip().splitlines()
    assert output[-1].startswith("error: ") and str(store) in output[-1], output[-5:]
    assert "Traceback" not in "".join(output)
    assert not any(path.name.startswith("worker") for path in store.iterdir())  # nothing written there


def test_down_on_the_main_host_leaves_no_process_there(pool):
    result = pool.on("main", [sys.executable, "-m", "btc_lifecycle.production", "down"], timeout=300)
    assert result.returncode == 0, result.stderr
    assert pool.hosts.pids("main") == []
