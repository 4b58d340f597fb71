"""The profile's process bookkeeping on real processes: a pidfile remembers a process by pid and
start time (a recycled pid or a dead one is not ours), a spawned service runs in a session of its
own with its output in its log, and stopping it takes its whole process group, with SIGKILL for
what ignores SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from btc_lifecycle.production.processes import (
    ProfileError,
    Record,
    group_members,
    live_record,
    log_line,
    port_is_free,
    quiet_warnings,
    read_record,
    spawn,
    start_time,
    stop_group,
    wait_for,
    write_record,
)

STAMPED = re.compile(r"^=== \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z btc_lifecycle\.production: (.*)$")


def environment() -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}


def spawned(tmp_path: Path, script: str, log_name: str = "service.log") -> tuple[subprocess.Popen, Path]:
    """``sh -c script`` as the profile spawns a service; its log."""
    log = tmp_path / "logs" / log_name
    return spawn(["sh", "-c", script], log=log, env=environment(), cwd=tmp_path), log


def log_says(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text()


@pytest.fixture
def reaped():
    """Popen objects the test started: waited for (or killed) at the end, whatever happened."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_a_log_line_is_stamped_in_utc_milliseconds_and_appended(tmp_path):
    log = tmp_path / "deep" / "folder" / "profile.log"
    log_line(log, "up (profile folder /x)")
    log_line(log, "down")
    lines = log.read_text().splitlines()
    assert [STAMPED.match(line).group(1) for line in lines] == ["up (profile folder /x)", "down"]


def test_the_start_time_of_this_process_is_its_creation_time_and_a_missing_pid_has_none():
    mine = start_time(os.getpid())
    assert mine == str(psutil.Process(os.getpid()).create_time())
    assert start_time(os.getpid()) == mine  # the same every time it is read
    assert start_time(2**22 + 1) is None  # above the kernel's pid_max: never a process


def test_a_zombie_has_no_start_time_and_its_record_is_not_alive(tmp_path, reaped):
    process = subprocess.Popen(["sh", "-c", "exit 0"])
    reaped.append(process)
    assert wait_for(lambda: psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE, 10)
    assert start_time(process.pid) is None
    assert Record(process.pid, "1", None, "2024-01-01T00:00:00.000Z").alive is False


def test_a_spawned_process_leads_a_group_of_its_own_and_is_its_only_member(reaped, tmp_path):
    process, _ = spawned(tmp_path, "exec sleep 30")
    reaped.append(process)
    assert wait_for(lambda: group_members(process.pid) == [process.pid], 10)
    assert process.pid not in group_members(os.getpgid(0))  # not in ours


def test_a_written_record_reads_back_and_is_alive_while_its_process_runs(tmp_path, reaped):
    process, _ = spawned(tmp_path, "exec sleep 30")
    reaped.append(process)
    pidfile = tmp_path / "state" / "service.pid"
    record = write_record(pidfile, process.pid, 5000)
    assert read_record(pidfile) == record
    assert json.loads(pidfile.read_text())["port"] == 5000
    assert record.start_time == start_time(process.pid) and record.alive
    assert not pidfile.with_suffix(".tmp").exists()
    assert live_record(pidfile) == record
    process.kill()
    process.wait()
    assert not record.alive


def test_a_pidfile_whose_process_is_gone_is_stale_and_removed(tmp_path, reaped):
    process = subprocess.Popen(["sleep", "30"])
    reaped.append(process)
    pidfile = tmp_path / "service.pid"
    write_record(pidfile, process.pid, None)
    process.kill()
    process.wait()
    assert live_record(pidfile) is None
    assert not pidfile.exists()


def test_a_recycled_pid_with_another_start_time_is_not_taken_for_ours(tmp_path):
    pidfile = tmp_path / "service.pid"
    alive = Record(os.getpid(), start_time(os.getpid()), None, "t")
    assert alive.alive
    pidfile.write_text(json.dumps({**alive.__dict__, "start_time": "1"}))
    assert live_record(pidfile) is None
    assert not pidfile.exists()


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[1, 2]", json.dumps({"pid": 1}), json.dumps({"pid": "x", "start_time": "1", "started_at": "t"})],
)
def test_an_unreadable_pidfile_reads_as_no_record_and_live_record_removes_it(tmp_path, content):
    pidfile = tmp_path / "service.pid"
    pidfile.write_text(content)
    assert read_record(pidfile) is None
    assert live_record(pidfile) is None
    assert not pidfile.exists()


def test_a_missing_pidfile_reads_as_no_record(tmp_path):
    assert read_record(tmp_path / "none.pid") is None
    assert live_record(tmp_path / "none.pid") is None


def test_a_process_that_is_gone_before_its_record_is_written_is_an_error(tmp_path, reaped):
    process = subprocess.Popen(["sh", "-c", "exit 0"])
    reaped.append(process)
    process.wait()
    # A ProfileError: `python -m btc_lifecycle.production up` prints it as its one error line.
    with pytest.raises(ProfileError) as raised:
        write_record(tmp_path / "service.pid", process.pid, None)
    assert str(raised.value) == f"service: process {process.pid} exited as soon as it started (its log says why)"
    assert not (tmp_path / "service.pid").exists()


def test_a_spawned_service_runs_in_its_own_session_with_output_and_errors_in_its_log(tmp_path, reaped):
    log = tmp_path / "logs" / "service.log"
    log.parent.mkdir()
    log.write_text("earlier line\n")
    process = spawn(
        [
            sys.executable,
            "-c",
            "import os, sys; print(os.getsid(0), os.getcwd(), flush=True); print('oops', file=sys.stderr)",
        ],
        log=log,
        env={**environment(), "MARK": "1"},
        cwd=tmp_path,
    )
    reaped.append(process)
    assert process.wait(timeout=30) == 0
    earlier, out, err = log.read_text().splitlines()
    assert earlier == "earlier line"  # appended, never truncated
    assert out == f"{process.pid} {tmp_path}"  # session leader: its session id is its pid
    assert err == "oops"


def test_stopping_a_group_ends_the_leader_and_its_children(tmp_path, reaped):
    process, log = spawned(tmp_path, "sleep 30 & echo child $!; wait")
    reaped.append(process)
    record = write_record(tmp_path / "service.pid", process.pid, None)
    assert wait_for(lambda: log_says(log, "child "), 10)
    child = int(log.read_text().split()[1])
    assert sorted(group_members(process.pid)) == sorted([process.pid, child])
    assert stop_group(record, grace=10) is False  # SIGTERM was enough
    assert group_members(process.pid) == []
    assert not record.alive


def test_a_service_stops_on_sigterm_even_when_its_starter_ignores_it(tmp_path, reaped):
    # What a background shell and Dagster's in-process runs leave behind: SIGTERM ignored.
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        process, log = spawned(tmp_path, "sleep 30 & echo child $!; wait")
    finally:
        signal.signal(signal.SIGTERM, previous)
    reaped.append(process)
    record = write_record(tmp_path / "service.pid", process.pid, None)
    assert wait_for(lambda: log_says(log, "child "), 10)
    assert stop_group(record, grace=10) is False
    assert group_members(process.pid) == []


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace(tmp_path, reaped):
    process, log = spawned(tmp_path, "trap '' TERM; echo ready; sleep 30 & wait; wait")
    reaped.append(process)
    record = write_record(tmp_path / "service.pid", process.pid, None)
    assert wait_for(lambda: log_says(log, "ready") and len(group_members(process.pid)) == 2, 10)
    assert stop_group(record, grace=0.3) is True
    assert group_members(process.pid) == []


def test_stopping_a_record_that_is_not_alive_does_nothing(tmp_path):
    dead = Record(2**22 + 1, "1", None, "t")
    assert stop_group(dead) is False


def test_quiet_warnings_silences_future_warnings_beside_the_callers_own_filters():
    assert quiet_warnings({"PATH": "/bin"}) == {"PATH": "/bin", "PYTHONWARNINGS": "ignore::FutureWarning"}
    assert quiet_warnings({"PYTHONWARNINGS": "error"})["PYTHONWARNINGS"] == "error,ignore::FutureWarning"


def test_wait_for_says_whether_the_condition_held_in_time():
    calls = []

    def third_time() -> bool:
        calls.append(1)
        return len(calls) == 3

    assert wait_for(third_time, 5, interval=0.001) is True and len(calls) == 3
    assert wait_for(lambda: False, 0.05, interval=0.01) is False


def test_a_port_someone_listens_on_is_not_free():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_is_free("127.0.0.1", port) is False
    assert port_is_free("127.0.0.1", port) is True
