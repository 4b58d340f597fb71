"""`dagster dev` against a replay exchange, in its own process group, for browser tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from btc_lifecycle.production.processes import free_ports
from btc_lifecycle.production.processes import group_members as live_group_members
from btc_lifecycle_tests.e2e.workspace import BIN, REPO_ROOT, Workspace

READY_QUERY = """{
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } }
}"""


class DagsterDev:
    """``python -m btc_lifecycle.launch --candles FILE -- dagster dev ...``: webserver, daemon, replay exchange."""

    def __init__(self, workspace: Workspace, candles: Path, log_path: Path) -> None:
        self.workspace = workspace
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [
            sys.executable,
            "-m",
            "btc_lifecycle.launch",
            "--candles",
            str(candles),
            "--",
            str(BIN / "dagster"),
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
        ]
        self._log = log_path.open("w")
        # A session of its own, so that teardown reaches the daemon, the code servers, the run
        # workers and the replay exchange with one signal.
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=workspace.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, chars: int = 6000) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def graphql(self, query: str, timeout: float = 5) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())["data"]

    def _code_location_state(self) -> str | None:
        """None until the webserver answers; then LOADING, LOADED or the load error."""
        try:
            entries = self.graphql(READY_QUERY)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError, TypeError):
            return None
        if not entries or any(entry["loadStatus"] != "LOADED" for entry in entries):
            return "LOADING"
        errors = [
            entry["locationOrLoadError"]
            for entry in entries
            if entry["locationOrLoadError"]["__typename"] != "RepositoryLocation"
        ]
        return f"code location failed to load: {errors}" if errors else "LOADED"

    def wait_until_ready(self, timeout: float = 90, interval: float = 0.25) -> None:
        """Poll the GraphQL endpoint until every code location is loaded (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"dagster dev exited with {self.process.returncode}:\n{self.log_tail()}")
            state = self._code_location_state()
            if state == "LOADED":
                return
            if state and state.startswith("code location failed"):
                raise AssertionError(f"{state}\n{self.log_tail()}")
            time.sleep(interval)
        raise AssertionError(f"dagster dev was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, grace: float = 15) -> None:
        """SIGTERM to the whole process group, SIGKILL whatever is left after ``grace`` seconds."""
        pgid = self.process.pid  # the session leader: its pid is the group id
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and live_group_members(pgid):
            self.process.poll()  # reap the launcher so that it does not count as alive
            time.sleep(0.1)
        if live_group_members(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=5)
        finally:
            self._log.close()
