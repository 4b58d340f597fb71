"""A warm helper process: what a run's report and Feast steps need, loaded on the second core meanwhile.

Dagster's in-process executor runs a run's steps one after another on one core, and every step
in the ``duckdb`` pool waits for the one before. Some of the last steps spend most of their time
getting ready rather than working: the ingestion report starts kaleido's Chromium (about 2 s)
and imports plotly and weasyprint; the drift report imports evidently (about 2.5 s). The
online materialization and its parity check import Feast (about 4 s). The
``report_worker`` resource (``btc_lifecycle.resources.report_worker``) starts this helper when
the run's resources are set up, before the first step: it does those on the other core while
the first steps ingest, label and train, then builds the two reports when their steps hand them
over (``run_in``): the same functions, the same arguments, the same files. The warm-ups run in
a thread of their own, so a call that arrives in the middle of one (Feast's import, when the
ingestion report's step comes) does not wait for it. Without a helper, or when it has died,
they run in the step's own process.

The helper is ``python -m btc_lifecycle.warmup FD FD WARMUP...``: it reads calls (a function by
module and name, with pickled arguments) from one pipe and writes results or exceptions to the
other, and exits when the run closes the pipe or the run's process dies.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# What the helper loads for each step of a run, in the order the steps come: a module to import,
# or "module:function" to call (kaleido's Chromium is started by a tiny render).
WARMUPS: dict[str, tuple[str, ...]] = {
    "ingestion_report": (
        "btc_lifecycle.reporting.charts",
        "btc_lifecycle.reporting.charts:start_kaleido",
        "btc_lifecycle.reporting.ingestion_report",
        "weasyprint",
    ),
    # Feast's online materialization and its parity check (about 4 s of import).
    "feast_online_features": ("btc_lifecycle.adapters.feast_repo", "feast", "feast.infra.online_stores.sqlite"),
    "drift_report": ("btc_lifecycle.monitoring.report", "evidently", "evidently.presets"),
}
# What the run's own process imports for its later in-process steps (the model step: xgboost and
# scikit-learn behind the walk-forward, MLflow behind the registry; about 2.4 s), done while a
# step waits for the helper's answer, when this process has nothing else to do.
IN_PROCESS_WARMUPS: dict[str, tuple[str, ...]] = {
    "model": ("btc_lifecycle.modelling.walk_forward", "btc_lifecycle.adapters.model_registry"),
    "predictions": ("btc_lifecycle.modelling.walk_forward",),
}
CLOSE_TIMEOUT_SECONDS = 5.0


class HelperUnavailable(Exception):
    """The helper process is gone (never started, crashed or closed): run the call locally."""


class RemoteError(RuntimeError):
    """An exception raised in the helper that could not be brought back as itself."""


def warmups_for(step_keys: Iterable[str], table: dict[str, tuple[str, ...]] = WARMUPS) -> tuple[str, ...]:
    """The warm-ups the helper should do for a run of ``step_keys`` (none: no helper needed), or,
    with ``table=IN_PROCESS_WARMUPS``, the imports the run's own process can do meanwhile."""
    keys = set(step_keys)
    return tuple(dict.fromkeys(item for step, items in table.items() if step in keys for item in items))


def import_quietly(modules: Iterable[str]) -> None:
    """Import ``modules``; one that fails is left for its step to fail on with its own error."""
    for module in modules:
        with contextlib.suppress(Exception):
            importlib.import_module(module)


class WarmHelper:
    """A helper process and the two pipes to it; one call at a time."""

    def __init__(self, warmups: Iterable[str]) -> None:
        self.warmups = tuple(warmups)
        to_child_read, to_child_write = os.pipe()
        from_child_read, from_child_write = os.pipe()
        package_root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "btc_lifecycle.warmup", str(to_child_read), str(from_child_write)]
        try:
            self.process = subprocess.Popen(
                [*command, *self.warmups],
                pass_fds=(to_child_read, from_child_write),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            for fd in (to_child_read, to_child_write, from_child_read, from_child_write):
                os.close(fd)
            raise
        os.close(to_child_read)
        os.close(from_child_write)
        self._requests = Connection(to_child_write, readable=False)
        self._replies = Connection(from_child_read, writable=False)
        self._lock = threading.Lock()
        self.alive = True

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` in the helper; its exception is raised here.

        Raises ``HelperUnavailable`` when the helper is gone before it answered.
        """
        with self._lock:
            if not self.alive:
                raise HelperUnavailable("the warm helper is closed")
            try:
                self._requests.send((function.__module__, function.__qualname__, args, kwargs))
                reply = self._replies.recv()
            except (OSError, EOFError) as error:
                self.alive = False
                raise HelperUnavailable(f"the warm helper stopped: {error!r}") from error
            except BaseException:  # interrupted mid-call, or a reply that does not unpickle here
                self.alive = False  # a late reply would answer the next call: never use it again
                raise
        status, value, remote_traceback = reply
        if status == "ok":
            return value
        if isinstance(value, BaseException):
            value.add_note(f"raised in the warm helper process (pid {self.process.pid}):\n{remote_traceback}")
            raise value
        raise RemoteError(f"{value}\n{remote_traceback}")

    def close(self) -> None:
        """Stop the helper (it stops Chromium and exits, mid-warm-up too); killed if it hangs."""
        with self._lock:
            self.alive = False
            for connection in (self._requests, self._replies):
                with contextlib.suppress(OSError):
                    connection.close()
        with contextlib.suppress(ProcessLookupError):
            # Without it, a helper still importing evidently would only see the closed pipe after.
            self.process.terminate()
        try:
            self.process.wait(timeout=CLOSE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_in(helper: WarmHelper | None, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` in ``helper`` when it is alive, else in this process.

    ``function`` must be a module-level function whose arguments and result pickle. A helper
    that dies before answering is dropped and the call runs here.
    """
    if helper is not None and helper.alive:
        try:
            return helper.call(function, *args, **kwargs)
        except HelperUnavailable:
            pass
    return function(*args, **kwargs)


# The helper's side.


def _resolve(module: str, qualname: str) -> Callable[..., Any]:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def warm(item: str) -> None:
    """One warm-up: import ``module``, or call ``module:function``."""
    module, _, function = item.partition(":")
    loaded = importlib.import_module(module)
    if function:
        getattr(loaded, function)()


def serve(requests: Connection, replies: Connection, warmups: Iterable[str]) -> None:
    """Answer calls until EOF, warming up in a thread meanwhile.

    A call never waits for a warm-up: one that arrives in the middle of an import shares the
    CPU with it (or waits only for the modules it needs itself), and no further warm-up starts
    until the call is answered. A call waiting when the helper starts is answered first.
    """
    idle = threading.Event()  # set while no call is running
    items = list(warmups)

    def warm_all() -> None:
        for item in items:
            idle.wait()
            try:
                warm(item)
            except Exception:  # noqa: BLE001 - a real call that needs it fails with its own error
                pass

    warming = threading.Thread(target=warm_all, name="warm-ups", daemon=True)
    warming.start()
    while True:
        if not requests.poll():
            idle.set()
        try:
            module, qualname, args, kwargs = requests.recv()
        except EOFError:
            return
        idle.clear()
        try:
            reply = ("ok", _resolve(module, qualname)(*args, **kwargs), "")
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the caller
            reply = ("error", error, traceback.format_exc())
        try:
            replies.send(reply)
        except Exception as error:  # noqa: BLE001 - a result or exception that does not pickle
            replies.send(("error", f"{type(error).__name__}: {error}", traceback.format_exc()))


def _shutdown_kaleido() -> None:
    scope = getattr(sys.modules.get("plotly.io._kaleido"), "scope", None)
    if scope is not None:
        with contextlib.suppress(Exception):
            scope._shutdown_kaleido()  # noqa: SLF001 - kaleido 0.2.1's own exit handler


def _exit() -> None:
    _shutdown_kaleido()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    # No interpreter teardown: its final garbage collection over evidently's and plotly's objects
    # takes seconds, and nothing is left to flush.
    os._exit(0)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, lambda _signum, _frame: _exit())  # the run is over: stop now
    requests = Connection(int(argv[0]), writable=False)
    replies = Connection(int(argv[1]), readable=False)
    try:
        serve(requests, replies, argv[2:])
    finally:
        _exit()


if __name__ == "__main__":
    main(sys.argv[1:])
