"""Background processes the profile owns: started in a session of their own with their output
in a log, remembered in a pidfile (pid and start time, so a recycled pid is never taken for
ours), stopped as a whole process group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil


def stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_line(log: Path, message: str) -> None:
    """A start or stop line of the profile itself, in a service's log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"=== {stamp()} btc_lifecycle.production: {message}\n")


def start_time(pid: int) -> str | None:
    """The process's start time (seconds since the epoch, as psutil reads it), or None when it is
    gone or a zombie."""
    try:
        process = psutil.Process(pid)
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return None
        return str(process.create_time())
    except psutil.NoSuchProcess:
        return None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for process in psutil.process_iter(["status"]):
        if process.info["status"] in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            continue
        try:
            if os.getpgid(process.pid) == pgid:
                members.append(process.pid)
        except ProcessLookupError:  # ended meanwhile
            continue
    return members


def quiet_warnings(env: dict[str, str]) -> dict[str, str]:
    """``env`` with Dagster's supersession warnings (``dagster asset materialize`` and ``dagster
    dev`` point at ``dg``) silenced in the processes started with it."""
    # By category: SupersessionWarning subclasses FutureWarning, and PYTHONWARNINGS can name only
    # built-in categories (the interpreter reads it before site-packages is importable).
    warnings = ",".join(part for part in (env.get("PYTHONWARNINGS"), "ignore::FutureWarning") if part)
    return {**env, "PYTHONWARNINGS": warnings}


@dataclass(frozen=True)
class Record:
    """A pidfile's content."""

    pid: int
    start_time: str
    port: int | None
    started_at: str

    @property
    def alive(self) -> bool:
        return start_time(self.pid) == self.start_time


def read_record(pidfile: Path) -> Record | None:
    try:
        raw = json.loads(pidfile.read_text(encoding="utf-8"))
        return Record(int(raw["pid"]), str(raw["start_time"]), raw.get("port"), str(raw["started_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class ProfileError(RuntimeError):
    """Something the person has to fix; the message says what."""


def write_record(pidfile: Path, pid: int, port: int | None) -> Record:
    """Remember ``pid`` (waiting, briefly, for the system to show it)."""
    deadline = time.monotonic() + 5
    started = start_time(pid)
    while started is None and time.monotonic() < deadline:
        time.sleep(0.01)
        started = start_time(pid)
    if started is None:
        # A ProfileError, so that `make up` ends with this line, not a traceback.
        raise ProfileError(f"{pidfile.stem}: process {pid} exited as soon as it started (its log says why)")
    record = Record(pid, started, port, stamp())
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    staging = pidfile.with_suffix(".tmp")
    staging.write_text(json.dumps(record.__dict__), encoding="utf-8")
    os.replace(staging, pidfile)
    return record


def live_record(pidfile: Path) -> Record | None:
    """The pidfile's process if it still runs; a stale pidfile is removed."""
    record = read_record(pidfile)
    if record is None or not record.alive:
        pidfile.unlink(missing_ok=True)
        return None
    return record


def _default_stop_signals() -> None:
    # A process inherits ignored signals. A shell ignores SIGINT in what it starts in the
    # background, and Dagster's in-process runs give SIGTERM the disposition of SIGINT when they
    # finish: without this, a service started from such a process would ignore `make down`.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)


def spawn(command: list[str], *, log: Path, env: dict[str, str], cwd: Path, **popen) -> subprocess.Popen:
    """``command`` in a session of its own, its output appended to ``log``, SIGTERM and SIGINT at
    their defaults."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_default_stop_signals,  # noqa: PLW1509 - only resets two signal dispositions
            **popen,
        )


def stop_group(record: Record, *, signum: int = signal.SIGTERM, grace: float = 20.0) -> bool:
    """``signum`` to the process group the record's process leads, SIGKILL to what is left after
    ``grace`` seconds; True when it needed the SIGKILL."""
    if not record.alive:
        return False
    try:
        os.killpg(record.pid, signum)
    except ProcessLookupError:
        return False
    if wait_for(lambda: not record.alive and not group_members(record.pid), grace):
        return False
    try:
        os.killpg(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_for(lambda: not group_members(record.pid), 5)
    return True


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def port_is_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports on ``host`` (held open together while they are picked)."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
