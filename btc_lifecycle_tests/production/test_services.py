"""``up``, ``status`` and ``down`` of the profile, fast: a real PostgreSQL cluster, and small
stand-in programs in place of MLflow's and Dagster's (``services.BIN`` points at them) that answer
on the ports they are given as the real ones do (/health, /graphql, /server_info, the code
server's gRPC health service, which the real `dagster api grpc-health-check` asks) and record how
they were started. What is pinned: the start order,
each part's command line and environment, waiting until each answers, a second up keeping what
runs and restarting what died, down stopping everything (PostgreSQL last), and every failure of up
stopping what it had started with a message that says what to look at. The real servers are in
test_profile_e2e.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from btc_lifecycle.production import postgres, services
from btc_lifecycle.production.layout import ProfileLayout
from btc_lifecycle.production.postgres import ProfileError
from btc_lifecycle.production.processes import (
    group_members,
    live_record,
    read_record,
    stop_group,
    wait_for,
    write_record,
)
from btc_lifecycle_tests.production.test_postgres import profile_environment, reachable_folder, stop_cluster

PARTS = ["postgres", "mlflow", "code-server", "webserver", "daemon"]
RECORDED_ENV = (
    "DAGSTER_HOME",
    "PGPASSFILE",
    "BTC_PROFILE",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION",
)

STANDIN = r'''#!{python}
"""A stand-in for one of the profile's servers, chosen by the name it is run as."""
import json, os, signal, sys
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

name, args = Path(sys.argv[0]).name, sys.argv[1:]
if name == "dagster" and args[:2] == ["api", "grpc-health-check"]:  # Dagster's own, not recorded
    os.execv({dagster!r}, [{dagster!r}, *args])
folder = Path(os.environ["STANDIN_DIR"])
keys = {keys!r}
with open(folder / "calls.jsonl", "a") as handle:
    kind = "migrate" if args[:2] == ["instance", "migrate"] else name
    env = {{key: os.environ.get(key) for key in keys}}
    handle.write(json.dumps({{"kind": kind, "argv": args, "pid": os.getpid(), "env": env}}) + "\n")

def option(flag):
    return args[args.index(flag) + 1]

def serve(answer):
    class Handler(BaseHTTPRequestHandler):
        def reply(self):
            length = int(self.headers.get("Content-Length") or 0)
            status, body, then_exit = answer(self.path, self.rfile.read(length).decode())
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            if then_exit:
                os._exit(1)
        do_GET = do_POST = reply
        def log_message(self, *_):
            pass
    ThreadingHTTPServer((option("--host"), int(option("--port"))), Handler).serve_forever()

if name == "dagster" and args[:2] == ["instance", "migrate"]:
    sys.exit(int(os.environ.get("STANDIN_MIGRATE", "0")))
if name == "mlflow":
    mode = os.environ.get("STANDIN_MLFLOW", "ok")
    serve(lambda path, _: (200, b"OK", False) if path == "/health" and mode == "ok" else (503, b"no", mode == "exit"))
if name == "dagster-webserver":
    def graphql(path, body):
        if path == "/server_info":
            return 200, b"{{}}", False
        query = json.loads(body)["query"]
        workspace = f"workspace.{{os.environ.get('STANDIN_CODE', 'ok')}}.json"
        return 200, (folder / (workspace if "workspaceOrError" in query else "daemons.json")).read_bytes(), False
    serve(graphql)
if name == "dagster-daemon":
    signal.pause()
if name == "dagster" and args[:2] == ["code-server", "start"]:
    # As the real one: listening (and SERVING) once its code location loaded, or failed to.
    if os.environ.get("STANDIN_CODE") == "loading":
        signal.pause()
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    server = grpc.server(ThreadPoolExecutor(2))
    servicer = health.HealthServicer()
    servicer.set("DagsterApi", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"{{option('--host')}}:{{option('--port')}}")
    server.start()
    server.wait_for_termination()
sys.exit(f"stand-in: nothing to do as {{name}} {{args}}")
'''

WORKSPACE_LOADED = {
    "data": {
        "workspaceOrError": {
            "locationEntries": [
                {"name": "btc_lifecycle", "loadStatus": "LOADED", "locationOrLoadError": {"__typename": "CodeLocation"}}
            ]
        }
    }
}
LOAD_ERROR = {"__typename": "PythonError", "message": "DagsterImportError: no module named 'btc_lifecycle.gone'\n"}
WORKSPACE_LOAD_ERROR = {
    "data": {"workspaceOrError": {"locationEntries": [{"loadStatus": "LOADED", "locationOrLoadError": LOAD_ERROR}]}}
}
DAEMONS_HEALTHY = {
    "data": {
        "instance": {
            "daemonHealth": {
                "allDaemonStatuses": [
                    {"daemonType": "SCHEDULER", "required": True, "healthy": True},
                    {"daemonType": "BACKFILL", "required": False, "healthy": False},
                ]
            }
        }
    }
}


def write_standins(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    script = STANDIN.format(
        python=sys.executable, keys=RECORDED_ENV, dagster=str(Path(sys.executable).parent / "dagster")
    )
    for name in ("mlflow", "dagster", "dagster-webserver", "dagster-daemon"):
        (folder / name).write_text(script)
        (folder / name).chmod(0o755)
    (folder / "workspace.ok.json").write_text(json.dumps(WORKSPACE_LOADED))
    (folder / "workspace.error.json").write_text(json.dumps(WORKSPACE_LOAD_ERROR))
    (folder / "daemons.json").write_text(json.dumps(DAEMONS_HEALTHY))


@dataclass
class Profile:
    layout: ProfileLayout
    env: dict[str, str]
    standins: Path
    said: list[str] = field(default_factory=list)

    def up(self, **knobs: str) -> None:
        services.up(self.layout, say=self.said.append, environ={**self.env, **knobs})

    def down(self) -> None:
        services.down(self.layout, say=self.said.append)

    def calls(self) -> list[dict]:
        path = self.standins / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def pids(self) -> dict[str, int]:
        pidfiles = {"postgres": postgres.pidfile(self.layout)}
        pidfiles.update({service.name: service.pidfile(self.layout) for service in services.services(self.layout)})
        return {name: record.pid for name, path in pidfiles.items() if (record := live_record(path)) is not None}


def kill_everything(profile: Profile) -> None:
    for service in services.services(profile.layout):
        record = read_record(service.pidfile(profile.layout))
        if record is not None:
            stop_group(record, signum=signal.SIGKILL, grace=5)
        service.pidfile(profile.layout).unlink(missing_ok=True)
    stop_cluster(profile.layout)


@pytest.fixture(scope="module")
def initialized() -> Iterator[tuple[Path, dict[str, str]]]:
    """A profile folder whose cluster exists (stopped), and stand-ins beside it."""
    root = reachable_folder()
    env = {
        **profile_environment(root / "profile"),
        "PATH": os.environ["PATH"],
        "STANDIN_DIR": str(root / "standins"),
    }
    write_standins(root / "standins")
    (root / "profile").mkdir()
    (root / "profile").chmod(0o711)
    layout = ProfileLayout.from_env(env)
    try:
        postgres.ensure_cluster(layout, layout.log_dir / "profile-postgres.log")
        yield root, env
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def profile(initialized, monkeypatch) -> Iterator[Profile]:
    """The initialized profile with the stand-ins as its programs; nothing left running after."""
    root, env = initialized
    monkeypatch.setattr(services, "BIN", root / "standins")
    (root / "standins" / "calls.jsonl").unlink(missing_ok=True)
    profile = Profile(ProfileLayout.from_env(env), env, root / "standins")
    try:
        yield profile
    finally:
        kill_everything(profile)
        profile.layout.profile_env.unlink(missing_ok=True)


def assert_nothing_runs(profile: Profile, pids: list[int]) -> None:
    assert profile.pids() == {}
    assert [pid for pid in pids if group_members(pid)] == []
    assert not profile.layout.profile_env.exists()


# -- up, status, up again, down: one scenario ---------------------------------------------------


@dataclass
class Cycle:
    profile: Profile
    first_pids: dict[str, int]
    said_by_first_up: list[str]
    status_up: list[dict]
    calls_after_first_up: list[dict]
    pids_after_second_up: dict[str, int]
    calls_after_second_up: list[dict]
    pids_after_daemon_restart: dict[str, int]
    said_by_down: list[str]
    status_down: list[dict]
    said_by_second_down: list[str]


@pytest.fixture(scope="module")
def cycle(initialized) -> Iterator[Cycle]:
    root, env = initialized
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "BIN", root / "standins")
        profile = Profile(ProfileLayout.from_env(env), env, root / "standins")
        (root / "standins" / "calls.jsonl").unlink(missing_ok=True)
        try:
            profile.up()
            first, said_up = profile.pids(), list(profile.said)
            status_up = services.status(profile.layout)
            # The daemon stand-in's health is the webserver's canned answer: up may return before
            # its interpreter got as far as recording its call.
            wait_for(lambda: "dagster-daemon" in [call["kind"] for call in profile.calls()], 30)
            calls_first = profile.calls()
            profile.up()
            second, calls_second = profile.pids(), profile.calls()
            stop_group(read_record(services.services(profile.layout)[3].pidfile(profile.layout)))
            profile.up()
            restarted = profile.pids()
            profile.said.clear()
            profile.down()
            said_down = list(profile.said)
            status_down = services.status(profile.layout)
            profile.said.clear()
            profile.down()
            yield Cycle(
                profile,
                first,
                said_up,
                status_up,
                calls_first,
                second,
                calls_second,
                restarted,
                said_down,
                status_down,
                list(profile.said),
            )
        finally:
            kill_everything(profile)


def test_up_starts_every_part_and_status_shows_each_up_and_answering(cycle):
    layout = cycle.profile.layout
    assert list(cycle.first_pids) == PARTS
    shown = {part["name"]: part for part in cycle.status_up}
    assert list(shown) == PARTS
    assert {name: (part["state"], part["answers"], part["pid"]) for name, part in shown.items()} == {
        name: ("up", True, pid) for name, pid in cycle.first_pids.items()
    }
    assert [shown[name]["port"] for name in PARTS] == [
        layout.pg_port,
        layout.mlflow_port,
        layout.code_server_port,
        layout.dagster_port,
        None,
    ]
    assert shown["mlflow"]["url"] == layout.mlflow_url and shown["webserver"]["url"] == layout.dagster_url
    assert shown["daemon"]["host"] is None and shown["postgres"]["host"] == "127.0.0.1"


def test_the_instance_is_migrated_first_then_the_code_server_webserver_and_daemon_start_in_turn(cycle):
    kinds = [call["kind"] for call in cycle.calls_after_first_up]
    assert sorted(kinds) == sorted(["mlflow", "migrate", "dagster", "dagster-webserver", "dagster-daemon"])
    assert kinds.index("migrate") < kinds.index("dagster") < kinds.index("dagster-webserver")
    assert kinds.index("dagster-webserver") < kinds.index("dagster-daemon")


def test_each_part_is_started_on_loopback_with_the_profiles_environment_and_no_password(cycle):
    layout = cycle.profile.layout
    by_kind = {call["kind"]: call for call in cycle.calls_after_first_up}
    mlflow = by_kind["mlflow"]["argv"]
    assert mlflow[:3] == [
        "server",
        "--backend-store-uri",
        f"postgresql+psycopg2://btc_lifecycle@127.0.0.1:{layout.pg_port}/mlflow",
    ]
    assert (
        mlflow[mlflow.index("--port") + 1] == str(layout.mlflow_port) and mlflow[mlflow.index("--workers") + 1] == "1"
    )
    assert by_kind["mlflow"]["env"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    code = by_kind["dagster"]["argv"]
    assert code[code.index("--module-name") + 1] == "btc_lifecycle.definitions"
    assert code[code.index("--port") + 1] == str(layout.code_server_port)
    assert by_kind["dagster-webserver"]["argv"] == [
        "--host",
        "127.0.0.1",
        "--port",
        str(layout.dagster_port),
        "-w",
        str(layout.workspace_file),
    ]
    assert by_kind["dagster-daemon"]["argv"] == ["run", "-w", str(layout.workspace_file)]
    password = postgres.read_password(layout)
    for call in cycle.calls_after_first_up:
        assert call["env"]["DAGSTER_HOME"] == str(layout.dagster_home)
        assert call["env"]["PGPASSFILE"] == str(layout.passfile)
        assert call["env"]["BTC_PROFILE"] == "production"
        assert password not in json.dumps(call)
    assert by_kind["dagster"]["env"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] is None  # MLflow's alone


def test_up_says_where_each_part_answers_and_logs_it(cycle):
    layout, pids = cycle.profile.layout, cycle.first_pids
    assert cycle.said_by_first_up == [
        f"postgres:    up on 127.0.0.1:{layout.pg_port} (pid {pids['postgres']})",
        f"mlflow:      up {layout.mlflow_url} (pid {pids['mlflow']})",
        f"code-server: up 127.0.0.1:{layout.code_server_port} (pid {pids['code-server']})",
        f"webserver:   up {layout.dagster_url} (pid {pids['webserver']})",
        f"daemon:      up  (pid {pids['daemon']})",
        f"profile.env: {layout.profile_env} (make uses the profile while it exists)",
    ]
    log = (layout.log_dir / "profile.log").read_text()
    assert "up: every part answers" in log and "up failed" not in log
    for name in ("mlflow", "code-server", "webserver", "daemon"):
        assert f"{name} ready" in (layout.log_dir / f"profile-{name}.log").read_text()


def test_up_again_keeps_every_running_part_and_migrates_nothing(cycle):
    assert cycle.pids_after_second_up == cycle.first_pids
    assert cycle.calls_after_second_up == cycle.calls_after_first_up


def test_up_restarts_only_a_part_that_died(cycle):
    restarted = cycle.pids_after_daemon_restart
    assert restarted["daemon"] != cycle.first_pids["daemon"]
    assert {k: v for k, v in restarted.items() if k != "daemon"} == {
        k: v for k, v in cycle.first_pids.items() if k != "daemon"
    }


def test_down_stops_the_daemon_first_postgres_last_and_removes_profile_env(cycle):
    pids = cycle.pids_after_daemon_restart
    said = cycle.said_by_down
    assert said[0] == f"daemon:      stopped (pid {pids['daemon']})"
    assert sorted(said[1:4]) == sorted(
        f"{name + ':':<12} stopped (pid {pids[name]})" for name in ("mlflow", "code-server", "webserver")
    )
    assert said[4:] == [f"postgres:    stopped (pid {pids['postgres']})"]
    assert [pid for pid in pids.values() if group_members(pid)] == []
    assert not cycle.profile.layout.profile_env.exists()
    assert [(part["name"], part["state"], part["answers"], part["pid"]) for part in cycle.status_down] == [
        (name, "down", False, None) for name in PARTS
    ]


def test_down_when_nothing_runs_says_so_for_every_part(cycle):
    assert cycle.said_by_second_down == [
        "daemon:      was not running",
        "webserver:   was not running",
        "code-server: was not running",
        "mlflow:      was not running",
        "postgres:    was not running",
    ]


# -- up fails: what it started is stopped, and the message says what to look at ---------------


def test_a_taken_port_fails_up_naming_the_part_and_its_variable(profile):
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", profile.layout.dagster_port))
        taken.listen()
        with pytest.raises(ProfileError) as failure:
            profile.up()
    assert str(failure.value) == (
        f"webserver: port {profile.layout.dagster_port} on 127.0.0.1 is taken by another process "
        "(set PROFILE_DAGSTER_PORT to another port)"
    )
    assert profile.calls() == []  # refused before anything but PostgreSQL started
    assert_nothing_runs(profile, [])
    assert "up failed: stopped what it had started" in (profile.layout.log_dir / "profile.log").read_text()


def test_a_failed_migration_fails_up_and_stops_the_mlflow_server_it_had_started(profile):
    mlflow_log = profile.layout.log_dir / "profile-mlflow.log"
    logged_before = mlflow_log.stat().st_size if mlflow_log.exists() else 0
    with pytest.raises(ProfileError, match=re.escape("`dagster instance migrate` failed (exit code 3): see ")):
        profile.up(STANDIN_MIGRATE="3")
    # The MLflow stand-in may be stopped before its interpreter got as far as recording its call,
    # so its pid is read from what `up` logged on starting and on stopping it.
    assert [call["kind"] for call in profile.calls() if call["kind"] != "mlflow"] == ["migrate"]
    logged = mlflow_log.read_bytes()[logged_before:].decode()
    started = re.findall(r"mlflow started \(pid (\d+)\)", logged)
    stopped = re.findall(r"mlflow stopped \(pid (\d+)", logged)
    assert len(started) == 1 and stopped == started
    assert_nothing_runs(profile, [int(started[0])])


def test_a_part_that_exits_while_starting_fails_up_naming_its_log(profile):
    log = profile.layout.log_dir / "profile-mlflow.log"
    with pytest.raises(ProfileError, match=re.escape(f"mlflow exited while starting: see {log}")):
        profile.up(STANDIN_MLFLOW="exit")
    assert_nothing_runs(profile, [call["pid"] for call in profile.calls()])


def test_a_part_that_never_answers_fails_up_after_the_timeout_naming_it(profile, monkeypatch):
    monkeypatch.setattr(services, "READY_TIMEOUT", 1.0)
    log = profile.layout.log_dir / "profile-code-server.log"
    with pytest.raises(ProfileError) as failure:
        profile.up(STANDIN_CODE="loading")  # not listening yet, as a code server still loading
    assert str(failure.value) == f"not ready within 1 s: code-server (see {log})"
    assert sorted(call["kind"] for call in profile.calls()) == ["dagster", "migrate", "mlflow"]
    assert_nothing_runs(profile, [call["pid"] for call in profile.calls()])


def test_a_code_location_that_fails_to_load_fails_up_with_its_error_before_the_daemon_starts(profile):
    with pytest.raises(ProfileError, match="the code location failed to load: DagsterImportError: no module named"):
        profile.up(STANDIN_CODE="error")
    kinds = sorted(call["kind"] for call in profile.calls())
    assert kinds == ["dagster", "dagster-webserver", "migrate", "mlflow"]  # the daemon never started
    assert_nothing_runs(profile, [call["pid"] for call in profile.calls()])


# -- status and down without up ----------------------------------------------------------------


def test_status_of_a_profile_never_started_is_every_part_down_on_its_configured_port(tmp_path):
    layout = ProfileLayout.from_env(profile_environment(tmp_path))
    parts = services.status(layout)
    assert [(p["name"], p["state"], p["pid"], p["answers"], p["port"]) for p in parts] == [
        ("postgres", "down", None, False, layout.pg_port),
        ("mlflow", "down", None, False, layout.mlflow_port),
        ("code-server", "down", None, False, layout.code_server_port),
        ("webserver", "down", None, False, layout.dagster_port),
        ("daemon", "down", None, False, None),
    ]


def test_a_part_whose_recorded_process_died_shows_down_and_loses_its_pidfile(tmp_path):
    layout = ProfileLayout.from_env(profile_environment(tmp_path))
    mlflow = services.services(layout)[0]
    mlflow.pidfile(layout).parent.mkdir(parents=True)
    mlflow.pidfile(layout).write_text(
        json.dumps({"pid": 2**22 + 1, "start_time": "1", "port": 5000, "started_at": "2024-01-01T00:00:00.000Z"})
    )
    (part,) = [p for p in services.status(layout) if p["name"] == "mlflow"]
    assert (part["state"], part["pid"], part["port"]) == ("down", None, layout.mlflow_port)
    assert not mlflow.pidfile(layout).exists()


def test_a_running_part_that_does_not_answer_shows_up_but_not_answering(tmp_path):
    import subprocess

    layout = ProfileLayout.from_env(profile_environment(tmp_path))
    webserver = services.services(layout)[2]
    process = subprocess.Popen(["sleep", "30"])
    try:
        write_record(webserver.pidfile(layout), process.pid, layout.dagster_port)
        (part,) = [p for p in services.status(layout) if p["name"] == "webserver"]
        assert (part["state"], part["answers"], part["pid"]) == ("up", False, process.pid)
    finally:
        process.kill()
        process.wait()


def test_down_of_a_profile_folder_that_does_not_exist_writes_nothing(tmp_path):
    layout = ProfileLayout.from_env(profile_environment(tmp_path / "never"))
    said: list[str] = []
    services.down(layout, say=said.append)
    assert len(said) == 5 and all(line.endswith("was not running") for line in said)
    assert not layout.root.exists()


def test_service_environment_points_at_the_profile_over_the_callers_environment(tmp_path):
    layout = ProfileLayout.from_env(profile_environment(tmp_path))
    env = services.service_environment(
        layout, {"BTC_ENV_FILE": "/nonexistent/.env", "MLFLOW_TRACKING_URI": "sqlite:///x.db", "KEEP": "1"}
    )
    assert env["MLFLOW_TRACKING_URI"] == layout.mlflow_url and env["KEEP"] == "1"
    assert env["DAGSTER_HOME"] == str(layout.dagster_home)
    assert "PYTHONWARNINGS" in env


# -- the readiness checks against a small HTTP server ------------------------------------------


class Answers:
    """What the small server answers: status and body by path, GraphQL by the query's first field."""

    def __init__(self) -> None:
        self.by_path: dict[str, tuple[int, bytes]] = {}
        self.graphql: dict[str, object] = {}


@pytest.fixture
def http_server() -> Iterator[tuple[str, Answers]]:
    answers = Answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = answers.by_path.get(self.path, (404, b"{}"))
            self.answer(status, body)

        def do_POST(self):
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["query"]
            key = next(key for key in answers.graphql if key in query)
            body = answers.graphql[key]
            self.answer(200, body if isinstance(body, bytes) else json.dumps(body).encode())

        def answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_http_ok_is_true_only_for_a_200(http_server):
    url, answers = http_server
    answers.by_path = {"/health": (200, b"OK"), "/broken": (500, b"no")}
    assert services.http_ok(f"{url}/health") is True
    assert services.mlflow_healthy(url) is True
    assert services.http_ok(f"{url}/broken") is False
    assert services.http_ok(f"{url}/missing") is False
    assert services.http_ok(f"http://127.0.0.1:{closed_port()}/health") is False


def test_a_loaded_code_location_is_seen_through_the_webserver(http_server):
    url, answers = http_server
    answers.graphql = {"workspaceOrError": WORKSPACE_LOADED}
    assert services.code_location_loaded(url) is True


@pytest.mark.parametrize(
    "answer",
    [
        {"data": {"workspaceOrError": {"locationEntries": []}}},
        {"data": {"workspaceOrError": {"locationEntries": [{"loadStatus": "LOADING", "locationOrLoadError": None}]}}},
        {"data": None},
        b"not json",
    ],
)
def test_a_code_location_still_loading_or_an_unreadable_answer_is_not_loaded(http_server, answer):
    url, answers = http_server
    answers.graphql = {"workspaceOrError": answer}
    assert services.code_location_loaded(url) is False


def test_a_code_location_load_error_is_raised_with_its_message(http_server):
    url, answers = http_server
    entry = {"loadStatus": "LOADED", "locationOrLoadError": {"__typename": "PythonError", "message": "x" * 400}}
    answers.graphql = {"workspaceOrError": {"data": {"workspaceOrError": {"locationEntries": [entry]}}}}
    with pytest.raises(ProfileError) as failure:
        services.code_location_loaded(url)
    assert str(failure.value) == "the code location failed to load: " + "x" * 300


def test_the_daemons_are_healthy_when_every_required_one_is(http_server):
    url, answers = http_server
    answers.graphql = {"daemonHealth": DAEMONS_HEALTHY}
    assert services.daemons_healthy(url) is True
    statuses = DAEMONS_HEALTHY["data"]["instance"]["daemonHealth"]["allDaemonStatuses"]
    sick = [{**statuses[0], "healthy": False}, statuses[1]]
    answers.graphql = {"daemonHealth": {"data": {"instance": {"daemonHealth": {"allDaemonStatuses": sick}}}}}
    assert services.daemons_healthy(url) is False
    answers.graphql = {"daemonHealth": {"data": {"instance": {"daemonHealth": {"allDaemonStatuses": []}}}}}
    assert services.daemons_healthy(url) is False
    answers.graphql = {"daemonHealth": {"data": {"instance": None}}}
    assert services.daemons_healthy(url) is False
    assert services.daemons_healthy(f"http://127.0.0.1:{closed_port()}") is False


def test_a_code_server_that_is_not_listening_is_not_serving_and_a_closed_port_is_not_open():
    port = closed_port()
    assert services.code_server_serving("127.0.0.1", port) is False
    assert services.tcp_open("127.0.0.1", port) is False
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert services.tcp_open("127.0.0.1", sock.getsockname()[1]) is True


# -- PostgreSQL down under running parts -------------------------------------------------------


def add_orphaned_run(layout: ProfileLayout, monkeypatch, pid: int | None = None) -> str:
    """A run the instance holds as started, whose process has ended (as when it died while the
    database was unreachable and never recorded its end), or is ``pid``; its id."""
    import subprocess

    import dagster as dg
    from dagster._core.events import DagsterEvent
    from dagster._core.utils import make_new_run_id

    if pid is None:
        gone = subprocess.Popen(["true"])
        gone.wait()
        pid = gone.pid
    with monkeypatch.context() as patch:
        for key, value in layout.client_environment().items():
            patch.setenv(key, value)
        with dg.DagsterInstance.from_config(str(layout.dagster_home)) as instance:
            run = instance.add_run(
                dg.DagsterRun(job_name="retraining_job", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED)
            )
            start = DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name="retraining_job", pid=pid)
            instance.report_dagster_event(start, run.run_id)
    return run.run_id


def run_status(layout: ProfileLayout, run_id: str, monkeypatch):
    import dagster as dg

    with monkeypatch.context() as patch:
        for key, value in layout.client_environment().items():
            patch.setenv(key, value)
        with dg.DagsterInstance.from_config(str(layout.dagster_home)) as instance:
            return instance.get_run_by_id(run_id).status


def test_postgres_down_under_running_parts_is_restarted_with_the_parts_it_names_and_orphaned_runs_fail(
    profile, monkeypatch
):
    import dagster as dg

    profile.up()
    before = profile.pids()
    run_id = add_orphaned_run(profile.layout, monkeypatch)
    postgres.stop(profile.layout, profile.layout.log_dir / "profile-postgres.log")
    said_before = len(profile.said)
    profile.up()
    after, said = profile.pids(), profile.said[said_before:]
    restarted = {line.split(":")[0] for line in said if line.endswith("restarting (PostgreSQL was down under it)")}
    # Never MLflow, which has no Dagster state; the code server too, as no run is in progress.
    assert restarted == {"code-server", "webserver", "daemon"}
    assert after["postgres"] != before["postgres"]
    assert {name: after[name] != before[name] for name in PARTS[1:]} == {name: name in restarted for name in PARTS[1:]}
    assert f"runs:        marked failed (their process ended while PostgreSQL was down): {run_id}" in said
    assert [part["answers"] for part in services.status(profile.layout)] == [True] * len(PARTS)
    assert run_status(profile.layout, run_id, monkeypatch) == dg.DagsterRunStatus.FAILURE


def test_after_postgres_was_down_a_code_server_with_a_run_in_progress_is_kept(profile, monkeypatch):
    """Its run workers would go with it: the run in progress here is this test's own process."""
    import dagster as dg

    profile.up()
    before = profile.pids()
    running = add_orphaned_run(profile.layout, monkeypatch, pid=os.getpid())
    postgres.stop(profile.layout, profile.layout.log_dir / "profile-postgres.log")
    said_before = len(profile.said)
    profile.up()
    after, said = profile.pids(), profile.said[said_before:]
    assert f"code-server: kept (runs in progress: {running})" in said
    assert after["code-server"] == before["code-server"]
    assert {name for name in ("webserver", "daemon") if after[name] != before[name]} == {"webserver", "daemon"}
    assert run_status(profile.layout, running, monkeypatch) == dg.DagsterRunStatus.STARTED
    assert [part["answers"] for part in services.status(profile.layout)] == [True] * len(PARTS)
    with monkeypatch.context() as patch:  # the run ends, as this test does: none in progress after it
        for key, value in profile.layout.client_environment().items():
            patch.setenv(key, value)
        with dg.DagsterInstance.from_config(str(profile.layout.dagster_home)) as instance:
            instance.report_run_failed(instance.get_run_by_id(running))


def test_a_part_restarted_after_postgres_was_down_waits_for_its_port_to_be_released(profile, monkeypatch):
    """The port of a part `up` has just stopped may stay taken a moment after its process is gone:
    `up` waits for it (bounded) instead of refusing, and logs how long it took."""
    profile.up()
    port = profile.layout.code_server_port
    checks = {"taken": 2}
    real_port_is_free = services.port_is_free

    def released_after_two_checks(host: str, number: int) -> bool:
        if number == port and checks["taken"]:
            checks["taken"] -= 1
            return False
        return real_port_is_free(host, number)

    monkeypatch.setattr(services, "port_is_free", released_after_two_checks)
    postgres.stop(profile.layout, profile.layout.log_dir / "profile-postgres.log")
    profile.up()
    assert checks["taken"] == 0
    assert "code-server: its port was free" in (profile.layout.log_dir / "profile.log").read_text()
    assert [part["answers"] for part in services.status(profile.layout)] == [True] * len(PARTS)
