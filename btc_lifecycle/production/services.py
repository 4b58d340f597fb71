"""The profile's processes after PostgreSQL: the MLflow server, Dagster's code server, webserver
and daemon, and with a worker pool Redis and the Celery workers. ``up`` starts what is not running
and waits until each part answers; ``down`` stops them (PostgreSQL last); ``status`` reports each
part. ``worker`` runs one Celery worker in the foreground, on a host of its own."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from btc_lifecycle.adapters.worker_pool import write_worker_config
from btc_lifecycle.config import PROJECT_ROOT, with_env_file
from btc_lifecycle.production import postgres
from btc_lifecycle.production.layout import INSTANCE_TEMPLATE, LOCATION_NAME, ProfileLayout
from btc_lifecycle.production.postgres import ProfileError
from btc_lifecycle.production.processes import (
    Record,
    live_record,
    log_line,
    port_is_free,
    quiet_warnings,
    spawn,
    stop_group,
    wait_for,
    write_record,
)

BIN = Path(sys.executable).parent
READY_TIMEOUT = 180.0  # a cold MLflow server on Postgres creates its schema first (≈ 10-20 s)
PORT_RELEASE_TIMEOUT = 30.0  # how long a part stopped by `up` itself may leave its port taken
CODE_LOCATION_MODULE = "btc_lifecycle.definitions"


@dataclass(frozen=True)
class Service:
    """One long-running process of the profile."""

    name: str
    port: int | None
    command: list[str]
    url: str | None = None
    extra_env: tuple[tuple[str, str], ...] = ()

    def pidfile(self, layout: ProfileLayout) -> Path:
        return layout.state_dir / f"{self.name}.pid"

    def log(self, layout: ProfileLayout) -> Path:
        return layout.log_dir / f"profile-{self.name}.log"


def services(layout: ProfileLayout) -> list[Service]:
    """In start order; ``down`` stops them in reverse."""
    workspace = str(layout.workspace_file)
    host = layout.host
    workers = [worker_service(layout, name) for name in local_workers(layout)]
    return [
        Service(
            "mlflow",
            layout.mlflow_port,
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                layout.mlflow_backend_uri(),
                "--artifacts-destination",
                str(layout.mlflow_artifacts),
                "--serve-artifacts",
                "--host",
                host,
                "--port",
                str(layout.mlflow_port),
                "--workers",
                str(layout.mlflow_workers),
            ],
            layout.mlflow_url,
            # MLflow 3's job runner (seven huey consumers, for GenAI judges and trace roll-ups):
            # nothing here uses it, and it slows start and stop by seconds.
            (("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"),),
        ),
        Service(
            "code-server",
            layout.code_server_port,
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "--host",
                host,
                "--port",
                str(layout.code_server_port),
                "--module-name",
                CODE_LOCATION_MODULE,
                "--location-name",
                LOCATION_NAME,
                "--working-directory",
                str(PROJECT_ROOT),
            ],
        ),
        Service(
            "webserver",
            layout.dagster_port,
            [str(BIN / "dagster-webserver"), "--host", host, "--port", str(layout.dagster_port), "-w", workspace],
            layout.dagster_url,
        ),
        Service("daemon", None, [str(BIN / "dagster-daemon"), "run", "-w", workspace]),
        *([redis_service(layout), *workers] if layout.has_pool else []),
    ]


def local_workers(layout: ProfileLayout) -> list[str]:
    """The names of the Celery workers ``up`` starts on this host."""
    return [f"worker-{n}" for n in range(1, (layout.workers or 0) + 1)]


def redis_service(layout: ProfileLayout) -> Service:
    """The worker pool's broker. Its append-only file, synced at every write, keeps the queued
    steps through a restart. No password (so protected mode, which refuses other hosts without
    one, is off): it listens only on the profile's own address, on the hosts' private network."""
    command = [
        shutil.which("redis-server") or "redis-server",
        "--bind",
        layout.host,
        "--port",
        str(layout.redis_port),
        "--dir",
        str(layout.redis_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--protected-mode",
        "no",
    ]
    return Service("redis", layout.redis_port, command)


def worker_service(layout: ProfileLayout, name: str) -> Service:
    """One Celery worker that executes one step at a time; Celery names it ``<name>@<hostname>``,
    and that name is in the run's events of every step it executes."""
    command = [
        str(BIN / "dagster-celery"),
        "worker",
        "start",
        "--app",
        "dagster_celery.app",
        "--config-yaml",
        str(layout.worker_config),
        "--name",
        name,
        "--loglevel",
        "INFO",
        "--",
        "--concurrency",
        "1",
    ]
    # dagster-celery starts the `celery` command it finds on PATH: the virtualenv's.
    return Service(name, None, command, extra_env=(("PATH", f"{BIN}:{os.environ.get('PATH', '')}"),))


def service_environment(layout: ProfileLayout, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment (over .env), pointed at the profile."""
    env = with_env_file(dict(os.environ if environ is None else environ))
    return quiet_warnings({**env, **layout.client_environment()})


def write_instance(layout: ProfileLayout) -> None:
    """The instance's dagster.yaml (the committed template: every address comes from the
    environment) and the workspace that names the code server."""
    layout.dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(INSTANCE_TEMPLATE, layout.dagster_home / "dagster.yaml")
    layout.workspace_file.parent.mkdir(parents=True, exist_ok=True)
    layout.workspace_file.write_text(
        "# written by btc_lifecycle.production: the webserver and the daemon load the code location\n"
        "# from the separate code server (its run workers run there too).\n"
        "load_from:\n"
        "  - grpc_server:\n"
        f"      host: {layout.host}\n"
        f"      port: {layout.code_server_port}\n"
        f"      location_name: {LOCATION_NAME}\n",
        encoding="utf-8",
    )


def write_profile_env(layout: ProfileLayout) -> None:
    """``export KEY=VALUE`` lines: make's include, the shell's ``source`` and the project's .env
    reader all take them. No secret in it: the password stays in the file PGPASSFILE names."""
    lines = [
        "# written by `python -m btc_lifecycle.production up` (make up); removed by down.",
        "# The Makefile reads it while it exists: every target then uses the production profile.",
    ]
    lines += [f"export {key}={value}" for key, value in layout.client_environment().items()]
    staging = layout.profile_env.with_suffix(".tmp")
    staging.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(staging, layout.profile_env)


def migrate_instance(layout: ProfileLayout, env: dict[str, str], log: Path) -> None:
    """``dagster instance migrate``: the schema, created once before any Dagster process opens it."""
    log_line(log, "dagster instance migrate")
    with log.open("ab") as handle:
        result = subprocess.run(
            [str(BIN / "dagster"), "instance", "migrate"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=PROJECT_ROOT,
            check=False,
            timeout=300,
        )
    if result.returncode != 0:
        raise ProfileError(f"`dagster instance migrate` failed (exit code {result.returncode}): see {log}")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URL we built
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def graphql(url: str, query: str, timeout: float = 5.0) -> dict | None:
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback URL we built
            return json.loads(response.read()).get("data")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
        return None


WORKSPACE_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
DAEMONS_QUERY = "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"


def code_location_loaded(url: str) -> bool:
    """True once the webserver shows the code location loaded; a load error is raised."""
    data = graphql(url, WORKSPACE_QUERY)
    entries = (((data or {}).get("workspaceOrError") or {}).get("locationEntries")) or []
    if not entries or any(entry["loadStatus"] != "LOADED" for entry in entries):
        return False
    errors = [e["locationOrLoadError"] for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
    if errors:
        raise ProfileError(f"the code location failed to load: {errors[0].get('message', '')[:300]}")
    return True


def daemons_healthy(url: str) -> bool:
    data = graphql(url, DAEMONS_QUERY)
    try:
        statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]
    except (KeyError, TypeError):
        return False
    return bool(statuses) and all(status["healthy"] for status in statuses if status["required"])


def mlflow_healthy(url: str) -> bool:
    return http_ok(f"{url}/health")


def code_server_serving(host: str, port: int) -> bool:
    """True once the code server serves, which it does after loading the code location; a load
    error then shows through the webserver (``code_location_loaded``)."""
    # Dagster's public health check of a gRPC code server, as its Helm chart's probes use it.
    command = [str(BIN / "dagster"), "api", "grpc-health-check", "--port", str(port), "--host", host]
    try:
        return subprocess.run(command, capture_output=True, timeout=60, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def tcp_open(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def redis_answers(host: str, port: int) -> bool:
    """Redis answers PING (its inline protocol: one line, no client library needed)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def worker_answers(layout: ProfileLayout, name: str) -> bool:
    """The Celery worker ``name`` (on any host) answers a ping through the broker."""
    from btc_lifecycle.adapters.worker_pool import celery_app

    app = celery_app(layout.broker_url)
    try:
        replies = app.control.ping(timeout=1.0)
    except Exception:  # noqa: BLE001 - an unreachable broker is "not answering"
        return False
    finally:
        app.close()
    return any(worker.split("@")[0] == name for reply in replies for worker in reply)


def up(layout: ProfileLayout, say: Callable[[str], None] = print, environ: dict[str, str] | None = None) -> None:
    """Start every part that is not running, and wait until each answers."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.state_dir, 0o700)
    log = layout.log_dir / "profile.log"
    log_line(log, f"up (profile folder {layout.root})")
    started: list[tuple[Service, Record]] = []
    pg_started = live_record(postgres.pidfile(layout)) is None
    try:
        if postgres.ensure_cluster(layout, layout.log_dir / "profile-postgres.log"):
            say(f"postgres: initialized a cluster in {layout.pg_dir}")
        postgres.ensure_passfile(layout)
        record = postgres.start(layout, layout.log_dir / "profile-postgres.log")
        postgres.ensure_role_and_databases(layout, postgres.read_password(layout))
        say(f"postgres:    up on {layout.host}:{layout.pg_port} (pid {record.pid})")
        env = service_environment(layout, environ)
        write_instance(layout)
        restarting: list[str] = []
        if pg_started and any(live_record(s.pidfile(layout)) for s in services(layout) if s.name != "mlflow"):
            restarting = recover_after_outage(layout, env, say, log)
        pending = [s for s in services(layout) if live_record(s.pidfile(layout)) is None]
        for service in pending:
            if service.port is None or port_is_free(layout.host, service.port):
                continue
            # A part stopped just now may leave its port taken for a moment after its process is gone.
            if service.name in restarting:
                began = time.monotonic()
                if wait_for(lambda port=service.port: port_is_free(layout.host, port), PORT_RELEASE_TIMEOUT):
                    waited = time.monotonic() - began
                    log_line(log, f"{service.name}: its port was free {waited:.1f} s after it stopped")
                    continue
            raise ProfileError(
                f"{service.name}: port {service.port} on {layout.host} is taken by another process "
                f"(set {_port_variable(service)} to another port)"
            )
        by_name = {s.name: s for s in pending}
        # MLflow first: it takes the longest to answer, and needs nothing of Dagster.
        if "mlflow" in by_name:
            started.append((by_name["mlflow"], _start(layout, by_name["mlflow"], env)))
        if "redis" in by_name:
            from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection

            ParquetStoreConnection(layout.feature_parquet_dir).close()  # the store the workers share
            layout.redis_dir.mkdir(parents=True, exist_ok=True)
            write_worker_config(layout.worker_config, layout.broker_url, layout.visibility_timeout)
            started.append((by_name["redis"], _start(layout, by_name["redis"], env)))
        if pending:  # never under processes that have the instance open
            migrate_instance(layout, env, log)
        # Each Dagster part once the one before it answers: the webserver never sees the code
        # location missing, and shows its load error before the daemon, which launches runs, starts.
        for name in ("code-server", "webserver", "daemon"):
            if name in by_name:
                started.append((by_name[name], _start(layout, by_name[name], env)))
                _wait_ready(layout, started[-1:])
        workers = [name for name in local_workers(layout) if name in by_name]
        for name in workers:
            started.append((by_name[name], _start(layout, by_name[name], env)))
        _wait_ready(
            layout, [(s, r) for s, r in started if s.name == "mlflow" or s.name == "redis" or s.name in workers]
        )
        write_profile_env(layout)
    except BaseException:
        for service, record in reversed(started):
            _stop(layout, service, record)
        if pg_started:
            postgres.stop(layout, layout.log_dir / "profile-postgres.log")
        log_line(log, "up failed: stopped what it had started")
        raise
    for service in services(layout):
        record = live_record(service.pidfile(layout))
        where = service.url or (f"{layout.host}:{service.port}" if service.port else "")
        say(f"{service.name + ':':<12} up {where} (pid {record.pid if record else '?'})")
    say(f"profile.env: {layout.profile_env} (make uses the profile while it exists)")
    log_line(log, "up: every part answers")


OUTAGE = (
    "PostgreSQL was down under the running profile; `python -m btc_lifecycle.production up` restarted it "
    "and marks the run failed: launch it again"
)


def fail_orphaned_runs(layout: ProfileLayout, env: dict[str, str]) -> tuple[list[str], list[str]]:
    """Fail the runs whose process ended while the database was unreachable (so never recorded
    its end), freeing their pool slots; their ids, and the ids of the runs still in progress."""
    # Imported here: `status` runs before every make target under the profile and needs no Dagster.
    import dagster as dg

    from btc_lifecycle.production.runs import fail_runs_without_a_process

    saved = dict(os.environ)
    os.environ.update(env)  # the instance's dagster.yaml reads the database's address from it
    try:
        with dg.DagsterInstance.from_config(str(layout.dagster_home)) as instance:
            failed = fail_runs_without_a_process(instance, OUTAGE)
            statuses = [dg.DagsterRunStatus[name] for name in IN_PROGRESS]
            in_progress = instance.get_runs(dg.RunsFilter(statuses=statuses))
            return failed, [run.run_id for run in in_progress]
    finally:
        os.environ.clear()
        os.environ.update(saved)


# Run statuses whose run may have a live process under the code server.
IN_PROGRESS = ("STARTING", "STARTED", "CANCELING")


def recover_after_outage(
    layout: ProfileLayout, env: dict[str, str], say: Callable[[str], None], log: Path
) -> list[str]:
    """PostgreSQL came back under running Dagster parts: fail the runs whose process ended during
    the outage, and stop the daemon, the webserver and, when no run is in progress, the code
    server, which ``up`` then starts again (after an outage the webserver answers a launch with
    an internal error).

    Two things in Dagster would fail those runs, and neither may still work: the code server's
    run-cleanup thread (which fails the run of a dead run worker) ends at the first database
    error it meets once its client's retries are spent, and run monitoring does not check the
    workers of this launcher. Restarting the code server starts a new cleanup thread; it is
    kept while a run is in progress, because its run workers would go with it. The names of the
    parts it stopped."""
    failed, in_progress = fail_orphaned_runs(layout, env)
    log_line(log, f"postgres was down under the running profile: marked {len(failed)} run(s) failed {failed}")
    if failed:
        say(f"runs:        marked failed (their process ended while PostgreSQL was down): {', '.join(failed)}")
    restart = ["daemon", "webserver"] + ([] if in_progress else ["code-server"])
    stopped = []
    for service in reversed(services(layout)):
        record = live_record(service.pidfile(layout))
        if record is None:
            continue
        if service.name in restart:
            say(f"{service.name + ':':<12} restarting (PostgreSQL was down under it)")
            _stop(layout, service, record)
            stopped.append(service.name)
        elif service.name == "code-server":
            say(f"{'code-server:':<12} kept (runs in progress: {', '.join(in_progress)})")
    return stopped


def _port_variable(service: Service) -> str:
    return {
        "mlflow": "PROFILE_MLFLOW_PORT",
        "code-server": "PROFILE_CODE_SERVER_PORT",
        "webserver": "PROFILE_DAGSTER_PORT",
        "redis": "PROFILE_REDIS_PORT",
    }.get(service.name, "")


def _start(layout: ProfileLayout, service: Service, env: dict[str, str]) -> Record:
    log = service.log(layout)
    where = f" on {layout.host}:{service.port}" if service.port else ""
    shown = " ".join([Path(service.command[0]).name, *service.command[1:]])  # no secret in any argument
    log_line(log, f"starting {service.name}{where}: {shown}")
    process = spawn(service.command, log=log, env={**env, **dict(service.extra_env)}, cwd=PROJECT_ROOT)
    record = write_record(service.pidfile(layout), process.pid, service.port)
    log_line(log, f"{service.name} started (pid {process.pid})")
    return record


def _wait_ready(layout: ProfileLayout, started: list[tuple[Service, Record]]) -> None:
    checks: dict[str, Callable[[], bool]] = {
        "mlflow": lambda: mlflow_healthy(layout.mlflow_url),
        "code-server": lambda: code_server_serving(layout.host, layout.code_server_port),
        "redis": lambda: redis_answers(layout.host, layout.redis_port),
        **{name: (lambda name=name: worker_answers(layout, name)) for name in local_workers(layout)},
        "webserver": lambda: code_location_loaded(layout.dagster_url),
        "daemon": lambda: daemons_healthy(layout.dagster_url),
    }
    waiting = {service.name: (service, record) for service, record in started}
    # The daemon's health is read through the webserver: wait for it whenever the daemon started.
    if "daemon" in waiting and "webserver" not in waiting:
        waiting["webserver"] = (services(layout)[2], live_record(services(layout)[2].pidfile(layout)))

    def all_ready() -> bool:
        for name, (service, record) in list(waiting.items()):
            if record is not None and not record.alive:
                raise ProfileError(f"{name} exited while starting: see {service.log(layout)}")
            if checks[name]():
                log_line(service.log(layout), f"{name} ready")
                del waiting[name]
        return not waiting

    if not wait_for(all_ready, READY_TIMEOUT, 0.25):
        names = ", ".join(sorted(waiting))
        logs = ", ".join(str(service.log(layout)) for service, _ in waiting.values())
        raise ProfileError(f"not ready within {READY_TIMEOUT:.0f} s: {names} (see {logs})")


def _stop(layout: ProfileLayout, service: Service, record: Record) -> None:
    # SIGTERM to the group: the webserver, the daemon and the code server shut down cleanly on it
    # (their run workers with them); MLflow's gunicorn/uvicorn workers too.
    killed = stop_group(record, signum=signal.SIGTERM, grace=20.0)
    service.pidfile(layout).unlink(missing_ok=True)
    log_line(service.log(layout), f"{service.name} stopped (pid {record.pid}{', after SIGKILL' if killed else ''})")


def check_feature_store(layout: ProfileLayout) -> None:
    """The pool's feature store is there: its folder holds the store's own marker (a host that has
    not mounted the shared file system sees an empty folder, or none)."""
    # Imported here, as Dagster below: `status` runs before every make target under the profile.
    from btc_lifecycle.adapters.parquet_store import ParquetStoreConnection

    folder = layout.feature_parquet_dir
    if not folder.is_dir():
        raise ProfileError(f"the feature store {folder} is not on this host: mount the profile's shared folder here")
    try:
        ParquetStoreConnection(folder).close()
    except RuntimeError as error:
        raise ProfileError(str(error)) from error


def run_worker(layout: ProfileLayout, name: str, environ: dict[str, str] | None = None) -> int:
    """One Celery worker in the foreground, on a worker host: the profile's main host runs the
    broker, PostgreSQL and MLflow at PROFILE_HOST, and this host shares its profile folder (the
    Celery config and the feature store are files in it). Returns the worker's exit code."""
    if not layout.has_pool:
        raise ProfileError(
            "the profile has no worker pool: start it with `make up WORKERS=N` on the main host, "
            "and run this with its profile.env (PROFILE_HOST, PROFILE_WORKERS, ...) in the environment"
        )
    if not redis_answers(layout.host, layout.redis_port):
        raise ProfileError(f"the worker pool's broker does not answer at {layout.host}:{layout.redis_port}")
    check_feature_store(layout)
    if not layout.worker_config.is_file():
        raise ProfileError(
            f"{layout.worker_config} is missing: is the profile folder {layout.root} shared with this host?"
        )
    env = {**service_environment(layout, environ), **dict(worker_service(layout, name).extra_env)}
    return subprocess.run(worker_service(layout, name).command, env=env, cwd=PROJECT_ROOT, check=False).returncode


def as_started(layout: ProfileLayout) -> ProfileLayout:
    """``layout`` with the worker pool that ``up`` started, as its pidfiles show, whatever this
    environment says (``down`` and ``status`` must find every part)."""
    workers = len(list(layout.state_dir.glob("worker-*.pid")))
    if (layout.state_dir / "redis.pid").exists() or workers:
        return dataclasses.replace(layout, workers=max(workers, layout.workers or 0))
    return layout


def down(layout: ProfileLayout, say: Callable[[str], None] = print) -> None:
    """Stop every part, PostgreSQL last; fine when nothing runs."""
    log = layout.log_dir / "profile.log"
    if layout.root.exists():
        log_line(log, "down")
    layout.profile_env.unlink(missing_ok=True)  # make stops using the profile first
    layout = as_started(layout)
    running = []
    for service in reversed(services(layout)):
        record = live_record(service.pidfile(layout))
        if record is None:
            say(f"{service.name + ':':<12} was not running")
        else:
            running.append((service, record))
    # The daemon first (it launches runs), then the rest at once: none depends on another to
    # shut down, and MLflow's takes seconds.
    for service, record in [(service, record) for service, record in running if service.name == "daemon"]:
        _stop(layout, service, record)
        say(f"{service.name + ':':<12} stopped (pid {record.pid})")
    rest = [(service, record) for service, record in running if service.name != "daemon"]
    threads = [threading.Thread(target=_stop, args=(layout, service, record)) for service, record in rest]
    for thread in threads:
        thread.start()
    for thread, (service, record) in zip(threads, rest, strict=True):
        thread.join()
        say(f"{service.name + ':':<12} stopped (pid {record.pid})")
    pid = postgres.stop(layout, layout.log_dir / "profile-postgres.log")
    say(f"{'postgres:':<12} " + (f"stopped (pid {pid})" if pid else "was not running"))


def status(layout: ProfileLayout) -> list[dict]:
    """Each part: name, up or down, port, pid, and whether it answers."""
    layout = as_started(layout)
    parts = []
    pg = live_record(postgres.pidfile(layout))
    parts.append(
        {
            "name": "postgres",
            "state": "up" if pg else "down",
            "host": layout.host,
            "port": pg.port if pg else layout.pg_port,
            "pid": pg.pid if pg else None,
            "answers": bool(pg) and postgres.accepts_connections(layout),
        }
    )
    answers = {
        "mlflow": lambda: mlflow_healthy(layout.mlflow_url),
        "code-server": lambda: tcp_open(layout.host, layout.code_server_port),
        "redis": lambda: redis_answers(layout.host, layout.redis_port),
        **{name: (lambda name=name: worker_answers(layout, name)) for name in local_workers(layout)},
        "webserver": lambda: http_ok(f"{layout.dagster_url}/server_info"),
        "daemon": lambda: daemons_healthy(layout.dagster_url),
    }
    for service in services(layout):
        record = live_record(service.pidfile(layout))
        parts.append(
            {
                "name": service.name,
                "state": "up" if record else "down",
                "host": layout.host if service.port else None,
                "port": record.port if record else service.port,
                "pid": record.pid if record else None,
                "answers": bool(record) and answers[service.name](),
                **({"url": service.url} if service.url else {}),
            }
        )
    return parts
