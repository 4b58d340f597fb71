"""The launcher behind `make run`: replay a file, or explain why Binance cannot be reached."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from btc_lifecycle.launch import OFFLINE_HINT
from btc_lifecycle.production.processes import process_stats
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "btc_lifecycle.launch", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unreachable_exchange_gets_a_short_message_naming_candles():
    env = {**os.environ, "BINANCE_API_URL": f"http://127.0.0.1:{closed_port()}"}
    result = launch("--", sys.executable, "-c", "print('should not run')", env=env)
    assert result.returncode == 2
    assert "Binance is unreachable" in result.stderr
    assert "make run CANDLES=" in result.stderr
    assert "should not run" not in result.stdout
    assert "Traceback" not in result.stderr


def test_a_missing_candle_file_is_named(tmp_path):
    result = launch("--candles", str(tmp_path / "nope.csv"), "--", sys.executable, "-c", "pass")
    assert result.returncode == 2 and "nope.csv: candle file not found" in result.stderr


def test_the_command_runs_with_the_replay_exchange_in_its_environment(tmp_path, generated_candles):
    from btc_lifecycle_tests.conftest import write_generic_csv

    path = write_generic_csv(generated_candles.iloc[:100], tmp_path / "c.csv")
    show = "import os; print(os.environ['BINANCE_API_URL'], os.environ['INGEST_BACKFILL_DAYS'])"
    result = launch("--candles", str(path), "--", sys.executable, "-c", show)
    assert result.returncode == 0, result.stderr
    url, backfill = result.stdout.strip().splitlines()[-1].split()
    assert url.startswith("http://127.0.0.1:") and backfill == "all"


# One line at the front door: what is wrong, where; the traceback in the log it names.


def one_line_refusal(result: subprocess.CompletedProcess) -> tuple[str, str]:
    """The single console line of a refused launch, and the log file it points at."""
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(lines) == 1, lines
    match = re.search(r"\(details: (.+\.log)\)$", lines[0])
    assert match, lines[0]
    return lines[0], Path(match.group(1)).read_text()


def test_a_table_name_with_sql_in_it_stops_with_one_line_naming_file_and_field(write_config, tmp_path):
    config = write_config(table="candles; DROP TABLE x")
    marker = tmp_path / "ran"
    env = {**os.environ, "INGEST_CONFIG": str(config)}
    result = launch("--progress", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')", env=env)
    line, log = one_line_refusal(result)
    assert str(config) in line and "field 'table' must be a plain SQL identifier" in line
    assert "Traceback" in log and "ConfigError" in log
    assert not marker.exists()  # nothing started


def test_a_bad_candle_file_stops_with_one_line_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "open_time,open,high,low,close,volume\n"
        "2023-03-01T00:00:00Z,23000,23010,22990,23005,1.5\n"
        "2023-03-01T00:01:00Z,23000,abc,22990,23005,1.5\n"
    )
    result = launch("--progress", "--candles", str(bad), "--", sys.executable, "-c", "pass")
    line, log = one_line_refusal(result)
    assert f"{bad}, line 3, field high: non-numeric 'abc'" in line
    assert "Traceback" in log and "CandleFileError" in log


def test_a_missing_dependency_inside_the_command_stops_with_one_line_naming_it(tmp_path):
    # A stand-in package that fails to import exactly as an uninstalled one does.
    (tmp_path / "shadow" / "dagster").mkdir(parents=True)
    (tmp_path / "shadow" / "dagster" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'dagster'\", name='dagster')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    result = launch(
        "--progress",
        "--offline-ok",
        "--",
        sys.executable,
        "-c",
        "import btc_lifecycle.definitions",
        env={**env, "BINANCE_API_URL": f"http://127.0.0.1:{closed_port()}"},
    )
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    # The offline note comes first (no exchange here); then the one error line.
    assert lines[0].startswith("Binance is unreachable")
    line, log = one_line_refusal(subprocess.CompletedProcess(result.args, result.returncode, lines[-1], ""))
    assert "missing dependency: No module named 'dagster'" in line and "make install" in line
    assert "Traceback" in log and "import btc_lifecycle.definitions" in log


def test_a_malformed_env_file_line_stops_with_one_line_naming_file_and_line(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# settings\nFEATURE_DB_PATH=/tmp/x.duckdb\nthis is not a setting\n")
    result = launch("--progress", "--", sys.executable, "-c", "pass", env={**os.environ, "BTC_ENV_FILE": str(env_file)})
    line, _log = one_line_refusal(result)
    assert f"{env_file}, line 3: expected KEY=VALUE" in line


# A quiet console and the .env file in the command's environment.


def test_dagster_supersession_warnings_are_silenced_in_the_command_and_other_warnings_are_not(
    tmp_path, generated_candles
):
    from btc_lifecycle_tests.conftest import write_generic_csv

    path = write_generic_csv(generated_candles.iloc[:100], tmp_path / "c.csv")
    script = (
        "import warnings\n"
        "from dagster_shared.utils.warnings import supersession_warning\n"
        "supersession_warning('Function `asset_materialize_command`', \"Use 'dg launch' instead.\")\n"
        "supersession_warning('Function `dev_command`', \"Use 'dg dev' instead.\")\n"
        "warnings.warn('a warning of our own', FutureWarning)\n"
    )
    result = launch("--candles", str(path), "--", sys.executable, "-c", script)
    assert result.returncode == 0, result.stderr
    assert "superseded" not in result.stdout + result.stderr
    assert "a warning of our own" in result.stdout + result.stderr


def test_the_env_file_reaches_the_command_and_the_real_environment_wins(tmp_path, generated_candles):
    from btc_lifecycle_tests.conftest import write_generic_csv

    path = write_generic_csv(generated_candles.iloc[:100], tmp_path / "c.csv")
    env_file = tmp_path / ".env"
    env_file.write_text("BTC_REPORT_DIR=/from/env/file\nMLFLOW_UI_URL='http://127.0.0.1:5999'\n")
    show = "import os; print(os.environ['BTC_REPORT_DIR'], os.environ['MLFLOW_UI_URL'])"
    env = {**os.environ, "BTC_ENV_FILE": str(env_file), "BTC_REPORT_DIR": "/from/environment"}
    result = launch("--candles", str(path), "--", sys.executable, "-c", show, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "/from/environment http://127.0.0.1:5999"


def test_offline_ok_starts_the_command_when_binance_is_unreachable(tmp_path):
    env = {**os.environ, "BINANCE_API_URL": f"http://127.0.0.1:{closed_port()}"}
    result = launch("--offline-ok", "--", sys.executable, "-c", "print('started')", env=env)
    assert result.returncode == 0, result.stderr
    assert "Binance is unreachable" in result.stdout and "make dev CANDLES=FILE" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "started"


def test_the_offline_hint_names_make_demo():
    assert "make demo" in OFFLINE_HINT


# `make dev` stops cleanly: nothing it started outlives a SIGTERM to the launcher.


def process_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, session id, state) of every process, from /proc."""
    return {pid: (int(fields[1]), int(fields[3]), fields[0]) for pid, fields in process_stats()}


def descendants(root: int) -> set[int]:
    table = process_table()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (ppid, _sid, _state) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int], sessions: set[int]) -> set[int]:
    """The processes of ``pids``, or of the given sessions, that still run (zombies do not)."""
    return {
        pid for pid, (_ppid, sid, state) in process_table().items() if (pid in pids or sid in sessions) and state != "Z"
    }


def poll_until(condition, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def server_info_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.mark.e2e
def test_sigterm_to_the_launcher_stops_dagster_dev_and_every_child_within_15_seconds(tmp_path, generated_candles):
    from btc_lifecycle_tests.conftest import write_generic_csv
    from btc_lifecycle_tests.e2e.workspace import BIN, Workspace

    workspace = Workspace(tmp_path / "state")
    path = write_generic_csv(generated_candles.iloc[:500], tmp_path / "c.csv")
    url = f"http://127.0.0.1:{closed_port()}"
    command = [
        sys.executable,
        "-m",
        "btc_lifecycle.launch",
        "--candles",
        str(path),
        "--",
        str(BIN / "dagster"),
        "dev",
        "-w",
        "workspace.yaml",
        "-h",
        "127.0.0.1",
        "-p",
        url.rsplit(":", 1)[1],
    ]
    with (tmp_path / "dev.log").open("w") as log:
        # Its own session, as a shell's background job or a supervisor would start it; SIGINT
        # ignored, as a non-interactive shell's `make dev &` leaves it.
        launcher = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=workspace.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    family: set[int] = set()
    try:
        assert poll_until(lambda: launcher.poll() is not None or server_info_answers(url), timeout=180), (
            tmp_path / "dev.log"
        ).read_text()[-4000:]
        assert launcher.poll() is None, (tmp_path / "dev.log").read_text()[-4000:]
        family = descendants(launcher.pid)
        sessions = {process_table()[pid][1] for pid in family if pid in process_table()} | {launcher.pid}
        assert len(family) >= 4  # replay exchange, dagster dev, webserver, daemon (and code servers)
        launcher.send_signal(signal.SIGTERM)
        assert poll_until(lambda: launcher.poll() is not None and not alive(family, sessions), timeout=15), (
            f"still alive 15 s after SIGTERM: {alive(family | {launcher.pid}, sessions)}"
        )
    finally:
        for pid in alive(family | {launcher.pid}, set()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        launcher.wait(timeout=10)
