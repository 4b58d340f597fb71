"""The production profile end to end (``python -m btc_lifecycle.production up|down|status``): its own
PostgreSQL cluster, MLflow server, code server, webserver and daemon on free loopback ports in a
temporary folder; the whole graph through the launcher into them; a killed run worker; the
queue; a drift failure the daemon's sensor retrains on; a daemon killed mid-tick; PostgreSQL
stopped mid-run; down.

The tests run in file order (one pytest-xdist worker takes the whole file): the last one stops
the profile and checks that nothing is left, and the fixture stops it again whatever happened.
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
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import psutil
import psycopg2
import pytest
from dagster._core.scheduler.instigation import InstigatorType, TickStatus
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG
from mlflow.tracking import MlflowClient

from btc_lifecycle.adapters.feature_store import read_candles
from btc_lifecycle.defs.monitoring.assets import DATA_DRIFT_CHECK, DRIFT_CHECK_KEYS, DRIFT_CHECKS
from btc_lifecycle.defs.schedules import EXCHANGE_TAG
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.launch import replay_exchange
from btc_lifecycle.production import postgres
from btc_lifecycle.production.layout import ProfileLayout
from btc_lifecycle.production.processes import free_ports, group_members, read_record, start_time
from btc_lifecycle.production.services import services
from btc_lifecycle_tests.conftest import write_generic_csv
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT, launch_command, materialize_command, profile_instance

pytestmark = pytest.mark.e2e

PARTS = ("postgres", "mlflow", "code-server", "webserver", "daemon")
CANDLES = synthetic_candles(4 * 1440 + 240, seed=23)  # 2024-01-01 .. 2024-01-04 whole, then 4 hours
DAYS = ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


@dataclass
class Profile:
    root: Path
    env: dict[str, str]  # what `up` ran with; the services inherited it
    layout: ProfileLayout
    candles: Path  # four whole UTC days and a bit, served by a replay exchange to the code server

    def command(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "btc_lifecycle.production", *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def client_env(self) -> dict[str, str]:
        """A command run against the profile: what `make` passes on from data/profile.env."""
        return {**self.env, **self.layout.client_environment()}

    def status(self) -> dict[str, dict]:
        result = self.command("status", "--json", timeout=60)
        assert result.returncode == 0, result.stderr
        return {part["name"]: part for part in json.loads(result.stdout)}

    def recorded_pids(self) -> list[int]:
        pidfiles = [self.layout.state_dir / "postgres.pid"] + [s.pidfile(self.layout) for s in services(self.layout)]
        return [record.pid for path in pidfiles if (record := read_record(path)) is not None]

    def instance(self):
        return profile_instance(self.layout)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.layout.dagster_url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert "errors" not in answer, answer
        return answer["data"]

    def launch(self, job: str, run_config: dict | None = None, assets=(), tags: dict | None = None) -> str:
        """A run of ``job`` (of ``assets`` only, if given) submitted as the UI does: through the
        queue, the daemon and the code server."""
        selector = {
            **SELECTOR,
            "jobName": job,
            **({"assetSelection": [{"path": [a]} for a in assets]} if assets else {}),
        }
        metadata = {"tags": [{"key": key, "value": value} for key, value in (tags or {}).items()]}
        params = {"selector": selector, "runConfigData": run_config or {}, "executionMetadata": metadata}
        data = self.graphql(LAUNCH, {"params": params})
        launched = data["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def wait_for_run(self, run_id: str, statuses: set[str], timeout: float) -> str:
        # Polled often: each poll is one light query to the webserver, and the wait then ends
        # close to the run's end.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.graphql(RUN_STATUS % run_id)["runOrError"]["status"]
            if status in statuses:
                return status
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} not in {statuses} within {timeout:.0f} s (last: {status})")


SELECTOR = {"repositoryLocationName": "btc_lifecycle", "repositoryName": "__repository__"}
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
RUN_STATUS = '{ runOrError(runId: "%s") { ... on Run { status } } }'
FORCE_RETRAIN = {"ops": {"model": {"config": {"force_retrain": True}}}}


def _kill_leftovers(pids: list[int]) -> None:
    for pid in pids:
        for member in group_members(pid):
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def profile() -> Iterator[Profile]:
    # Not under pytest's tmp_path: its folders are private to root, and PostgreSQL runs as the
    # postgres user, which must reach its data folder.
    root = Path(tempfile.mkdtemp(prefix="btc-profile-"))
    root.chmod(0o711)
    candles = write_generic_csv(CANDLES, root / "candles.csv")
    pg, mlflow, dagster, code = free_ports(4)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DAGSTER_", "PROFILE_"))},
        "PROFILE_DIR": str(root / "profile"),
        "PROFILE_PG_PORT": str(pg),
        "PROFILE_MLFLOW_PORT": str(mlflow),
        "PROFILE_DAGSTER_PORT": str(dagster),
        "PROFILE_CODE_SERVER_PORT": str(code),
        "PROFILE_MLFLOW_WORKERS": "1",
        # The code server's runs and the launcher's share one store, never the checkout's data/.
        "FEATURE_DB_PATH": str(root / "store" / "feature_store" / "bitcoin.duckdb"),
        "BTC_REPORT_DIR": str(root / "store" / "reports"),
        "BTC_LOG_DIR": str(root / "launcher_logs"),
    }
    (root / "profile").mkdir()
    (root / "profile").chmod(0o711)
    profile = Profile(root, env, ProfileLayout.from_env(env), candles)
    pids: list[int] = []
    exchange = ExitStack()
    try:
        # Runs launched through the queue fetch from it (the code server's environment), as
        # scheduled runs fetch from Binance; `make run` starts its own.
        url = exchange.enter_context(replay_exchange(candles, env=env, announce=None))
        env.update({"BINANCE_API_URL": url, "REPLAY_CANDLES": str(candles)})
        began = time.monotonic()
        result = profile.command("up")
        print(f"profile up in {time.monotonic() - began:.1f} s")
        pids = profile.recorded_pids()
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        yield profile
    finally:
        pids = pids or profile.recorded_pids()
        profile.command("down")
        _kill_leftovers(pids)
        exchange.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def graph_run(profile: Profile) -> subprocess.CompletedProcess:
    """The whole graph, as `make run CANDLES=FILE` under the profile (the launcher, a replay exchange)."""
    command = launch_command(profile.candles, "--progress", "--history")
    began = time.monotonic()
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=profile.client_env(), capture_output=True, text=True, timeout=600
    )
    print(f"graph run under the profile in {time.monotonic() - began:.1f} s")
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def test_status_reports_every_part_up_with_its_port_and_pid(profile):
    parts = profile.status()
    assert list(parts) == list(PARTS)
    layout = profile.layout
    expected_ports = {
        "postgres": layout.pg_port,
        "mlflow": layout.mlflow_port,
        "code-server": layout.code_server_port,
        "webserver": layout.dagster_port,
    }
    for name, part in parts.items():
        assert part["state"] == "up" and part["answers"] and part["pid"], part
        assert part["port"] == expected_ports.get(name), part


def test_up_again_keeps_the_running_parts(profile):
    before = {name: part["pid"] for name, part in profile.status().items()}
    result = profile.command("up")
    assert result.returncode == 0, result.stderr
    assert {name: part["pid"] for name, part in profile.status().items()} == before


def listening_addresses(pids: set[int]) -> dict[int, set[str]]:
    """Port -> local addresses of the TCP sockets in LISTEN state that ``pids`` hold."""
    found: dict[int, set[str]] = {}
    for connection in psutil.net_connections(kind="tcp"):
        if connection.pid in pids and connection.status == psutil.CONN_LISTEN:
            found.setdefault(connection.laddr.port, set()).add(connection.laddr.ip)
    return found


def test_every_server_listens_on_loopback_only(profile):
    pids = {member for pid in profile.recorded_pids() for member in group_members(pid)}
    listening = listening_addresses(pids)
    layout = profile.layout
    assert {layout.pg_port, layout.mlflow_port, layout.dagster_port, layout.code_server_port} <= set(listening)
    assert {port: addresses for port, addresses in listening.items() if addresses - LOOPBACK} == {}


def test_four_runs_for_different_days_at_once_leave_an_exact_store(profile):
    """Submitted together to the queue (no exchange tag, four runs allowed): the four days'
    candles, then the four days' labels (a day's first label reads the previous day's last
    candle, so labels come after the candles they read, as a backfill from the UI orders them).
    Their DuckDB steps take the pool's one slot in turn, never two at once. When the queue
    launches each run is the daemon's business (it holds back a run whose steps would only wait
    for the slot), so only the pool's guarantee is asserted. Before the graph run: the store
    starts empty."""
    run_ids = []
    for asset in ("raw_candles", "labeled_candles"):
        wave = [profile.launch("__ASSET_JOB", assets=[asset], tags={"dagster/partition": day}) for day in DAYS]
        for run_id in wave:
            assert profile.wait_for_run(run_id, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=240) == "SUCCESS"
        run_ids += wave
    steps = []  # (start, end, run, step) of every DuckDB step of the eight runs
    with profile.instance() as instance:
        for run_id in run_ids:
            started, ended = {}, {}
            for entry in instance.all_logs(
                run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
            ):
                event = entry.dagster_event
                (started if event.event_type == dg.DagsterEventType.STEP_START else ended)[event.step_key] = (
                    entry.timestamp
                )
            # The steps in the duckdb pool (checks only read).
            writers = {"raw_candles", "labeled_candles"} & set(started)
            assert len(writers) == 1 and writers <= set(ended), (run_id, started, ended)
            steps += [(started[key], ended[key], run_id, key) for key in writers]
    steps.sort()
    overlapping = [(a[2:], b[2:]) for a, b in zip(steps, steps[1:], strict=False) if b[0] < a[1]]
    assert overlapping == [], "two DuckDB steps held the store at once"
    with duckdb.connect(profile.env["FEATURE_DB_PATH"], read_only=True) as conn:
        stored = read_candles(conn, "candles", "BTC/USDT", "1m")
        labeled = read_candles(conn, "candles_labeled", "BTC/USDT", "1m")
    assert_exact_days(stored, labeled)


def assert_exact_days(stored: pd.DataFrame, labeled: pd.DataFrame) -> None:
    """The four days' candles as the file has them, and their labels as one pass over them gives."""
    from btc_lifecycle.domain.labels import label_candles

    expected = CANDLES[CANDLES["open_time"] < pd.Timestamp("2024-01-05", tz="UTC")].reset_index(drop=True)
    assert len(stored) == len(labeled) == 4 * 1440
    columns = ["open_time", "open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(stored[columns].reset_index(drop=True), expected[columns], check_dtype=False)
    pd.testing.assert_series_equal(
        labeled["price_increase_label"].reset_index(drop=True),
        label_candles(expected, "1m")["price_increase_label"],
        check_dtype=False,
        check_names=False,
    )


def materialize_each_day(env: dict[str, str], asset: str) -> list[subprocess.Popen]:
    """One `dagster asset materialize` process per day of ``asset``, all started at once."""
    return [
        subprocess.Popen(
            materialize_command(asset, ["--partition", day]),
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in DAYS
    ]


def assert_all_succeed(processes: list[subprocess.Popen]) -> None:
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    failed = [output[-3000:] for process, output in zip(processes, outputs, strict=True) if process.returncode]
    assert failed == [], failed[0]


def test_on_the_parquet_store_four_runs_for_different_days_write_at_the_same_time_and_leave_an_exact_store(profile):
    """The point of the Parquet backend: its day writers leave the one-writer pool. Four
    `dagster asset materialize` processes, one day each, recorded in the profile's instance; the
    replay exchange holds each one's first request (the exchange's clock) until all four are inside raw_candles
    at once (impossible on the DuckDB file, whose pool lets one in), then lets them go. Then the
    four days' labels, at once too: a day's first label reads the previous day's last candle, so
    labels come after the candles they read (as a backfill from the UI orders them)."""
    parquet = profile.root / "parquet_store"
    config = profile.root / "ingest_patient.json"
    settings = json.loads((REPO_ROOT / "config" / "bitcoin_ingest.json").read_text())
    config.write_text(json.dumps({**settings, "request_timeout_seconds": 300}))  # held, not timed out
    env = {
        **profile.client_env(),
        "FEATURE_STORE_BACKEND": "parquet",
        "FEATURE_PARQUET_DIR": str(parquet),
        "INGEST_CONFIG": str(config),
    }
    # raw_candles' first request asks the exchange's clock (its days may then come from archives).
    replay_control(profile, {"clear": True, "add": [f"time:hold:{len(DAYS)}"]})
    processes = []
    try:
        processes = materialize_each_day(env, "raw_candles")
        wait_until(
            lambda: replay_control(profile)["held"] == len(DAYS) or any(p.poll() is not None for p in processes),
            240,
            "the four runs never fetched",
        )
        assert replay_control(profile)["held"] == len(DAYS), "the four runs were not inside raw_candles at once"
    finally:
        replay_control(profile, {"clear": True, "release": True})
    assert_all_succeed(processes)
    assert_all_succeed(materialize_each_day(env, "labeled_candles"))
    from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection

    with ParquetStoreConnection(parquet) as conn:
        stored = read_candles(conn, "candles", "BTC/USDT", "1m")
        labeled = read_candles(conn, "candles_labeled", "BTC/USDT", "1m")
    assert_exact_days(stored, labeled)
    assert sorted(path.name for path in (parquet / "candles").iterdir()) == [f"{day}.parquet" for day in DAYS]


def test_the_whole_graph_runs_into_postgres_and_the_mlflow_server(profile, graph_run):
    with profile.instance() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        # make run: the days as one ranged run, then the rest of the graph (the model) as another.
        ranged = instance.get_runs(dg.RunsFilter(tags={"dagster/asset_partition_range_start": DAYS[0]}))
        event = instance.get_latest_materialization_event(dg.AssetKey("model"))
        rest = instance.get_run_by_id(event.run_id)
    assert [run.status for run in ranged] == [dg.DagsterRunStatus.SUCCESS]
    assert rest.status == dg.DagsterRunStatus.SUCCESS and "dagster/asset_partition_range_start" not in rest.tags
    assert dg.AssetKey("raw_candles") in ranged[0].asset_selection and dg.AssetKey("model") in rest.asset_selection
    client = MlflowClient(tracking_uri=profile.layout.mlflow_url, registry_uri=profile.layout.mlflow_url)
    champion = client.get_model_version_by_alias("btc_direction", "champion")
    assert str(champion.version) == "1"
    run = client.get_run(champion.run_id)
    assert run.data.tags["dagster_run_id"] == rest.run_id == event.run_id
    # The artifacts went through the server into its destination, not to a local folder.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert any(profile.layout.mlflow_artifacts.rglob("model_card.html"))
    # The UI the profile serves shows the run.
    shown = profile.graphql("{ runsOrError { ... on Runs { results { runId status } } } }")
    assert {"runId": rest.run_id, "status": "SUCCESS"} in shown["runsOrError"]["results"]


def _descendants(pid: int) -> list[int]:
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


def test_a_killed_run_worker_fails_its_run_frees_its_slots_and_the_next_run_proceeds(profile, graph_run):
    # A forced training: the model step lasts seconds, so the kill lands inside it.
    run_id = profile.launch("retraining_job", FORCE_RETRAIN)
    with profile.instance() as instance:
        deadline = time.monotonic() + 120
        while not any(
            entry.step_key == "model" for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
        ):
            assert time.monotonic() < deadline, "the retraining run never reached its model step"
            time.sleep(0.1)
        (start,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
        worker = start.dagster_event.pid
        # The worker and its step processes, as when a host or container dies under them.
        for pid in [worker, *_descendants(worker)]:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        assert profile.wait_for_run(run_id, {"FAILURE", "SUCCESS", "CANCELED"}, timeout=60) == "FAILURE"
        detected = time.monotonic() - killed_at
        deadline = time.monotonic() + 60
        while instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots:
            assert time.monotonic() < deadline, "the killed run's duckdb pool slot was never freed"
            time.sleep(0.1)
        freed = time.monotonic() - killed_at
        messages = [entry.message for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)]
    print(f"killed run failed after {detected:.1f} s, its slots freed after {freed:.1f} s")
    assert any("Run execution process for" in (m or "") and "SIGKILL" in (m or "") for m in messages), messages
    next_run = profile.launch("retraining_job")  # unchanged inputs: no new training, the rest runs
    assert profile.wait_for_run(next_run, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=180) == "SUCCESS"


def test_the_queue_runs_one_run_per_exchange_at_a_time(profile, graph_run):
    """Runs tagged with the same exchange (as the routine automation tags its runs) never overlap."""
    tag = {EXCHANGE_TAG: "binance"}
    run_ids = [profile.launch("__ASSET_JOB", assets=["ingestion_stats"], tags=tag) for _ in range(2)]
    for run_id in run_ids:
        assert profile.wait_for_run(run_id, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=120) == "SUCCESS"
    with profile.instance() as instance:
        records = sorted(instance.get_run_records(dg.RunsFilter(run_ids=run_ids)), key=lambda r: r.start_time)
    first, second = records
    assert first.dagster_run.tags[EXCHANGE_TAG] == second.dagster_run.tags[EXCHANGE_TAG] == "binance"
    assert second.start_time >= first.end_time


SENSOR = "retrain_on_drift_sensor"
MONITORED = "raw_candles,labeled_candles,features,ingestion_stats,predictions,drift_report"


def sensor_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags={SENSOR_NAME_TAG: SENSOR})))


def wait_until(condition, timeout: float, what: str, interval: float = 0.1):
    """Poll ``condition`` until it returns something truthy (returned), or fail naming ``what``.
    Each condition is one query to the instance, the database or the replay exchange, or a look
    at the process table: cheap enough to ask often."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(interval)
    return value


def test_under_the_profile_a_drift_failure_makes_the_sensor_launch_a_retraining_that_the_queue_runs(profile, graph_run):
    """A volatile regime after the champion's calm days fails the real data-drift check; the
    daemon's sensor (running by default) queues one retraining, which trains a new version into
    the MLflow server."""
    client = MlflowClient(tracking_uri=profile.layout.mlflow_url, registry_uri=profile.layout.mlflow_url)
    versions_before = {int(v.version) for v in client.search_model_versions("name='btc_direction'")}
    with profile.instance() as instance:
        assert sensor_runs(instance) == []  # nothing failed drift so far: no retraining launched
    last = CANDLES.iloc[-1]
    volatile = synthetic_candles(
        1_600, seed=29, volatility=0.004, start=last["open_time"] + pd.Timedelta(minutes=1), start_price=last["close"]
    )
    extended = write_generic_csv(pd.concat([CANDLES, volatile], ignore_index=True), profile.root / "volatile.csv")
    # The routine's hourly monitoring: the new days in, then predictions and the drift report
    # (no model: the champion stays the calm-trained one).
    command = launch_command(
        extended, "--progress", selection=MONITORED, extra=["--partition-range", "2024-01-05...2024-01-06"]
    )
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=profile.client_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    with profile.instance() as instance:
        # The monitoring run's evaluation: the sensor may already have queued the retraining, whose
        # planned evaluation of the same check is then the newest record.
        launched = {run.run_id for run in sensor_runs(instance)}
        history = instance.event_log_storage.get_asset_check_execution_history(DRIFT_CHECK_KEYS[0], limit=10)
        drift = next(record for record in history if record.run_id not in launched)
        assert drift.status.value == "FAILED"
        (run,) = wait_until(lambda: sensor_runs(instance), 120, "the sensor launched no retraining")
        assert run.job_name == "retraining_job"
        assert run.tags[RUN_KEY_TAG] == f"retrain-after-{drift.run_id}"
        assert run.tags["btc_lifecycle/drift_run_id"] == drift.run_id
        assert profile.wait_for_run(run.run_id, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=300) == "SUCCESS"
        # Through the queued run coordinator and the daemon, once.
        assert len(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED)) == 1
        assert len(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_STARTING)) == 1
        assert [r.run_id for r in sensor_runs(instance)] == [run.run_id]
    new = [v for v in client.search_model_versions("name='btc_direction'") if int(v.version) not in versions_before]
    (version,) = new
    assert int(version.version) == max(versions_before) + 1 and version.status == "READY"
    assert client.get_run(version.run_id).data.tags["dagster_run_id"] == run.run_id


def sensor_ticks(instance: dg.DagsterInstance) -> list:
    (state,) = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR) if s.name == SENSOR]
    return instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20)


@dg.asset(
    name="drift_report",
    check_specs=[dg.AssetCheckSpec(name, asset="drift_report") for name in DRIFT_CHECKS],
)
def failing_drift_report():
    """Stands in for the report (as in test_sensors.py): a failed data-drift evaluation, written
    into the profile's instance."""
    yield dg.MaterializeResult()
    for name in DRIFT_CHECKS:
        yield dg.AssetCheckResult(
            check_name=name, passed=name != DATA_DRIFT_CHECK, severity=dg.AssetCheckSeverity.ERROR
        )


def lock_table(profile: Profile, table: str) -> psycopg2.extensions.connection:
    """A connection holding an EXCLUSIVE lock on one of the instance's tables (reads pass, writes
    wait) until it is rolled back."""
    conn = psycopg2.connect(
        host="127.0.0.1",
        port=profile.layout.pg_port,
        user="btc_lifecycle",
        dbname="dagster",
        passfile=str(profile.layout.passfile),
    )
    with conn.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    return conn


def waiting_for(conn, table: str) -> list[int]:
    """Backends waiting for ``table``'s lock."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_locks WHERE relation = %s::regclass AND NOT granted", [table])
        return [pid for (pid,) in cursor.fetchall()]


def test_a_daemon_killed_mid_tick_resumes_the_tick_after_up_and_nothing_runs_twice(profile, graph_run):
    """The sensor's tick is held (by PostgreSQL locks, not by timing) after it reserved the run's
    id and before the run exists; the daemon's process group is killed there. `up` restarts the
    daemon, which resumes the tick: the one retraining is launched once, under its run key."""
    daemon = next(s for s in services(profile.layout) if s.name == "daemon")
    killed = read_record(daemon.pidfile(profile.layout))
    with profile.instance() as instance, ExitStack() as locks:
        before = {run.run_id for run in sensor_runs(instance)}
        # No sensor tick starts while the failure is written (its state update waits); then the
        # run's creation waits, and the tick goes ahead up to it.
        instigators = lock_table(profile, "instigators")
        locks.callback(instigators.close)
        locks.callback(instigators.rollback)
        drift_run = dg.materialize([failing_drift_report], instance=instance).run_id
        key = f"retrain-after-{drift_run}"
        failure_id = instance.get_latest_asset_check_evaluation_record(DRIFT_CHECK_KEYS[0]).id
        runs = lock_table(profile, "runs")
        locks.callback(runs.close)
        locks.callback(runs.rollback)
        instigators.rollback()
        blocked = wait_until(lambda: waiting_for(runs, "runs"), 120, "the sensor's tick never reached the run")
        (tick,) = [t for t in sensor_ticks(instance) if t.status == TickStatus.STARTED]
        ((reserved, request),) = tick.unsubmitted_run_ids_with_requests
        assert request.run_key == key and tick.run_ids == []
        assert instance.get_runs(dg.RunsFilter(tags={RUN_KEY_TAG: key})) == []
        os.killpg(killed.pid, signal.SIGKILL)
        wait_until(lambda: not group_members(killed.pid), 10, "the killed daemon's group is still there")
        # Its connection waits for the lock: end it as the kernel would have ended a statement in
        # flight (the server notices a dead client only once it reads from it).
        with runs.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [blocked])
        wait_until(lambda: not waiting_for(runs, "runs"), 10, "the dead daemon's statement still waits")
        runs.rollback()
        locks.close()
        result = profile.command("up")
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        assert read_record(daemon.pidfile(profile.layout)).pid != killed.pid
        (run,) = wait_until(
            lambda: instance.get_runs(dg.RunsFilter(tags={RUN_KEY_TAG: key})), 120, "the resumed tick launched nothing"
        )
        assert run.run_id == reserved
        assert profile.wait_for_run(run.run_id, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=240) == "SUCCESS"
        resumed = next(t for t in sensor_ticks(instance) if t.tick_id == tick.tick_id)
        assert resumed.status == TickStatus.SUCCESS and list(resumed.run_ids) == [reserved]
        assert {r.run_id for r in sensor_runs(instance)} == before | {reserved}
        assert len(instance.get_runs(dg.RunsFilter(tags={RUN_KEY_TAG: key}))) == 1
        assert len(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)) == 1
        # The cursor moved past the failure: no later tick takes it up again.
        state = instance.get_instigator_state(tick.instigator_origin_id, tick.selector_id)
        assert json.loads(state.instigator_data.cursor)["handled_up_to"] >= failure_id


def replay_control(profile: Profile, payload: dict | None = None) -> dict:
    """The fault plan of the replay exchange the code server's runs fetch from (POST if ``payload``)."""
    request = urllib.request.Request(
        f"{profile.env['BINANCE_API_URL']}/replay/faults",
        data=json.dumps(payload).encode() if payload is not None else None,
        method="POST" if payload is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def store_fingerprint(path: str) -> dict[str, tuple]:
    """Rows and a hash of the whole content of each table the day's run writes."""
    with duckdb.connect(path, read_only=True) as conn:
        return {
            table: conn.execute(
                f"SELECT count(*), md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY symbol, interval, open_time)) "
                f"FROM {table} t"
            ).fetchone()
            for table in ("candles", "candles_labeled")
        }


def test_postgresql_stopped_mid_run_fails_the_run_naming_it_and_after_up_the_next_run_leaves_exact_stores(
    profile, graph_run
):
    """PostgreSQL stops (a fast shutdown) while a queued day's run is inside its fetch, held there
    by the replay exchange. The worker cannot record anything more and ends; after `up` the run
    is failed once, with an engine event that says why. The same day's next run succeeds, and
    the candle tables hold exactly what they held before."""
    layout = profile.layout
    before = store_fingerprint(profile.env["FEATURE_DB_PATH"])
    replay_control(profile, {"clear": True, "add": ["time:hold:1"]})  # raw_candles' first request
    run_id = profile.launch(
        "__ASSET_JOB", assets=["raw_candles", "labeled_candles"], tags={"dagster/partition": DAYS[1]}
    )
    try:
        wait_until(lambda: replay_control(profile)["held"] == 1, 120, "the run's fetch was never held")
        with profile.instance() as instance:
            (start,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
        worker = start.dagster_event.pid
        assert postgres.stop(layout, layout.log_dir / "profile-postgres.log") is not None
    finally:
        replay_control(profile, {"clear": True, "release": True})
    wait_until(lambda: start_time(worker) is None, 180, "the run worker outlived the database")
    result = profile.command("up")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    with profile.instance() as instance:
        # Whoever reaches the database first once it is back fails the run: `up`, naming
        # PostgreSQL, or the code server's run-cleanup thread, naming the worker's exit (its
        # database client retries the connection for a while, and survives a short outage).
        wait_until(
            lambda: instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE, 60, "the run never failed"
        )
        messages = [e.message or "" for e in instance.all_logs(run_id)]
        by_up = [m for m in messages if f"(pid {worker}) is gone" in m and "PostgreSQL was down" in m]
        by_code_server = [m for m in messages if f"Run execution process for {run_id} unexpectedly exited" in m]
        assert by_up or by_code_server, messages
        said = f"marked failed (their process ended while PostgreSQL was down): {run_id}"
        assert (said in result.stdout) == bool(by_up), result.stdout
        print(f"the run was failed by {'up' if by_up else 'the code server'}")
        # The worker's own last words (in the code server's log, where its output goes): the database.
        assert "psycopg2.OperationalError" in (layout.log_dir / "profile-code-server.log").read_text(errors="replace")
        # Run monitoring frees the dead run's duckdb slot; the next run would wait for it.
        wait_until(
            lambda: not instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots,
            60,
            "the failed run's duckdb pool slot was never freed",
        )
    next_run = profile.launch(
        "__ASSET_JOB", assets=["raw_candles", "labeled_candles"], tags={"dagster/partition": DAYS[1]}
    )
    assert profile.wait_for_run(next_run, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=240) == "SUCCESS"
    assert store_fingerprint(profile.env["FEATURE_DB_PATH"]) == before


def test_no_password_in_logs_files_or_asset_metadata(profile, graph_run):
    line = next(x for x in profile.layout.passfile.read_text().splitlines() if x and not x.startswith("#"))
    password = line.rsplit(":", 1)[1]
    assert len(password) >= 32
    assert profile.layout.passfile.stat().st_mode & 0o777 == 0o600
    leaks = [
        path
        for folder in (profile.layout.root, profile.root / "launcher_logs", profile.root / "store")
        for path in folder.rglob("*")
        if path.is_file() and path != profile.layout.passfile and password.encode() in path.read_bytes()
    ]
    # The cluster's own files (owned by the postgres user) hold only the SCRAM verifier.
    assert leaks == []
    with profile.instance() as instance:
        records = [
            record
            for key in instance.get_asset_keys()
            for record in instance.fetch_materializations(key, limit=1000).records
        ]
        metadata = [str(record.asset_materialization.metadata) for record in records]
        tags = [str(run.tags) for run in instance.get_runs()]
    assert metadata and not any(password in text for text in metadata + tags)


def test_down_stops_every_process_postgres_last_and_twice_is_fine(profile):
    pids = profile.recorded_pids()
    assert len(pids) == len(PARTS)
    began = time.monotonic()
    result = profile.command("down")
    print(f"profile down in {time.monotonic() - began:.1f} s")
    assert result.returncode == 0, result.stderr
    assert [pid for pid in pids if group_members(pid)] == []
    assert not profile.layout.profile_env.exists()
    assert {part["state"] for part in profile.status().values()} == {"down"}
    last_stop = {
        path.name.removeprefix("profile-").removesuffix(".log"): max(
            line.split()[1]
            for line in path.read_text(errors="replace").splitlines()
            if line.startswith("=== ") and " stopped (pid " in line
        )
        for path in profile.layout.log_dir.glob("profile-*.log")
        if path.name != "profile.log"
    }
    assert set(last_stop) == set(PARTS)
    assert max(last_stop.values()) == last_stop["postgres"]
    assert profile.command("down").returncode == 0
