"""The launcher behind `make run`: replay a file, or explain why Binance cannot be reached."""

from __future__ import annotations

import socket
import subprocess
import sys

from btc_lifecycle_tests.e2e import REPO_ROOT


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "btc_lifecycle.launch", *args], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )


def test_an_unreachable_exchange_gets_a_short_message_naming_candles(monkeypatch):
    import os

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
