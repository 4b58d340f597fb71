"""Run a command against live Binance, or against a replay exchange serving a candle file.

``python -m btc_lifecycle.launch [--candles FILE] -- dagster asset materialize ...`` reads the
``.env`` file under the real environment, checks the configuration, the candle files and the
installed dependencies before starting anything, starts the replay exchange on a free loopback
port when ``--candles`` is given (pointing ccxt at it through ``BINANCE_API_URL``), runs the
command in a process group of its own, and stops the command and the server whatever happens.

``--candles`` repeats, one market each: ``--candles BTC/USDT=a.csv --candles BTC/USD=b.csv``
replays both files on one replay exchange (``make run CANDLES="BTC/USDT=a.csv BTC/USD=b.csv"``);
a bare ``FILE`` is the main market (``ingest.symbol``). Every configured market (the main one and
``more_markets``) needs its file: the graph ingests each of them. A file of a market no config
names is served for clients that ask for it.

With ``--history`` a ``dagster asset materialize --select SEL`` runs as two runs, one after the
other: the selection's daily-partitioned assets (``(SEL) and not partitions:none``) as one
``--partition-range`` run over the history, then its other assets (``(SEL) and partitions:none``)
as one unpartitioned run with the command's ``--config-json``. Dagster plans every unpartitioned
asset of a ranged run once per day of the range; in a run of their own they are planned once.
Both halves must select something: ``make run``, ``make demo`` and ``make ingest`` do.
``--since DAY`` appends the range from DAY instead, to the command as it is (``make history``).

Before the command, the runs of the Dagster instance (``DAGSTER_HOME``) whose process was killed
are marked failed and their pool slots freed: ``make run`` has no daemon to do it.

The command's whole output goes to ``data/logs/<stamp>.log`` (``BTC_LOG_DIR``) and to the
console, or with ``--progress`` only the progress of its runs, read from the instance, to the
console (``make run``); a failure ends with one line that says what is wrong and where the log
is. SIGINT, SIGTERM and SIGHUP are forwarded to the command's group.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from btc_lifecycle.config import PROJECT_ROOT, ConfigError, is_day, load_settings, with_env_file
from btc_lifecycle.production.processes import group_members, quiet_warnings

if TYPE_CHECKING:  # imported where used: the launcher first checks that it is installed
    import dagster as dg

OFFLINE_HINT = (
    "Binance is unreachable from this machine ({error}).\n"
    "To run offline, try the shipped sample (`make demo`) or replay a candle file:\n"
    "    make run CANDLES=path/to/candles.csv"
)
DEFAULT_LOG_DIR = PROJECT_ROOT / "data" / "logs"
KEEP_LOGS = 50  # launcher logs kept in the log folder
STOP_GRACE_SECONDS = 10.0  # after forwarding a signal, then SIGKILL for what is left
# The project's errors say what is wrong and where in their message: shown without their class.
OWN_ERRORS = ("ConfigError", "CandleFileError", "CandleDataError")
# The last line of a Python traceback raising one of them, or a missing module, before any run.
_TRACEBACK_ERROR = re.compile(
    r"^\s*(?:[\w.]+\.)?(ConfigError|CandleFileError|CandleDataError|TooFewTrainableCandles"
    r"|ModuleNotFoundError|ImportError): (.+)$"
)
KILLED = (
    "it was killed (SIGKILL, out of memory) or its machine stopped; the launcher marked it failed "
    "and freed its pool slots before the next command"
)


class MissingDependency(Exception):
    """An installed requirement of btc-lifecycle is absent."""


Candles = Path | dict[str, Path]  # one file (the replay exchange's default market) or {symbol: file}


def candles_arguments(candles: Candles) -> list[str]:
    """The replay exchange's ``--candles`` arguments for one file or ``{symbol: file}``."""
    if isinstance(candles, dict):
        return [argument for symbol, path in candles.items() for argument in ("--candles", f"{symbol}={path}")]
    return ["--candles", str(candles)]


def describe_candles(candles: Candles) -> str:
    if isinstance(candles, dict):
        return ", ".join(f"{symbol}={path}" for symbol, path in candles.items())
    return str(candles)


def replay_sources(values: list[str], env: dict[str, str]) -> dict[str, Path]:
    """``{symbol: file}`` (resolved) from ``--candles`` values, ``SYMBOL=FILE`` or a bare ``FILE``
    (the main market); a ``ConfigError`` names the value that is wrong, or the configured market
    that has no file (the graph ingests every configured market, and would find nothing for it).
    A file of a market no config names is served for clients only."""
    from btc_lifecycle.replay_exchange.markets import candle_sources, pair

    markets = load_settings(env).ingest.markets
    try:
        sources = candle_sources(values, markets[0].symbol)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    replayed = {pair(each).id for each in sources}
    for number, configured in enumerate(markets):
        if pair(configured.symbol).id not in replayed:
            field = "ingest.symbol" if number == 0 else f"more_markets[{number - 1}]"
            raise ConfigError(
                f"--candles {' '.join(values)}: no file for the configured market {configured.symbol} ({field}), "
                f"a market the graph ingests; add {configured.symbol}=FILE"
                + (" or give its file bare" if number == 0 else "")
            )
    return {each: path.resolve() for each, path in sources.items()}


def configured_file(candles: dict[str, Path], env: dict[str, str]) -> Path:
    """The file of the configured market among ``candles`` (``replay_sources`` made sure of one)."""
    from btc_lifecycle.replay_exchange.markets import pair

    configured = pair(load_settings(env).ingest.symbol).id
    return next(path for symbol, path in candles.items() if pair(symbol).id == configured)


def start_replay_exchange(
    candles: Candles, extra_args: list[str] | None = None, *, env: dict[str, str] | None = None, stderr=None
) -> subprocess.Popen:
    """The replay exchange process for ``candles`` (a file or ``{symbol: file}``), starting
    (``replay_exchange_serving`` yields its URL)."""
    command = [sys.executable, "-m", "btc_lifecycle.replay_exchange", *candles_arguments(candles), "--port", "0"]
    # Under the production profile, on the profile's address: the worker pool's hosts call it too.
    command += ["--host", (env or os.environ).get("PROFILE_HOST") or "127.0.0.1"]
    return subprocess.Popen([*command, *(extra_args or [])], stdout=subprocess.PIPE, text=True, env=env, stderr=stderr)


def stop_replay_exchange(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


@contextmanager
def replay_exchange_serving(
    server: subprocess.Popen, candles: Candles, announce: TextIO | None = sys.stdout
) -> Iterator[str]:
    """Wait for a started replay exchange's banner; yields its base URL; stops it afterwards."""
    try:
        banner = server.stdout.readline() if server.stdout else ""
        match = re.search(r"http://[\d.]+:\d+", banner)
        if not match:
            server.wait(timeout=10)
            raise SystemExit(
                f"the replay exchange did not start for {describe_candles(candles)} (exit code {server.returncode})"
            )
        if announce is not None:
            print(banner.strip(), file=announce, flush=True)
        yield match.group(0)
    finally:
        stop_replay_exchange(server)


@contextmanager
def replay_exchange(
    candles: Candles,
    extra_args: list[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    announce: TextIO | None = sys.stdout,
) -> Iterator[str]:
    """A replay exchange subprocess serving ``candles`` (a file or ``{symbol: file}``); yields its base URL."""
    with replay_exchange_serving(start_replay_exchange(candles, extra_args, env=env), candles, announce) as url:
        yield url


def binance_unreachable(api_url: str | None = None) -> str | None:
    """Why Binance (or the host at ``api_url``) cannot be reached, or None when it answers."""
    # Imported here: ccxt (and pandas behind the client) are heavy imports that a replay run never
    # needs in this process.
    import ccxt

    from btc_lifecycle.adapters.exchange import make_ccxt_client

    try:
        make_ccxt_client(api_url=api_url, timeout_seconds=5).fetch_time()
    except (ccxt.NetworkError, ccxt.ExchangeError) as error:
        return f"{type(error).__name__}: {str(error)[:160]}"
    return None


LIVE_BINANCE = "https://api.binance.com"


def history_partition_range(
    api_url: str | None, env: dict[str, str], replay: bool = False, since: str | None = None
) -> str:
    """``FIRST...LAST``: the UTC days ``make run`` backfills, as ``--partition-range`` takes them.

    From the exchange's first candle on or after ``ingest.history_start`` (Binance answers a start
    time with the first candle after it), or the last ``backfill_days`` (config, or
    ``INGEST_BACKFILL_DAYS``) if later, to the exchange's today. ``since`` (a day, or empty for
    ``history_start``) replaces both: the first candle on or after it. A replay exchange says its
    file's span and its clock on ``/replay/clock``; Binance is asked over its REST API.
    """
    import json
    import urllib.parse
    import urllib.request

    settings = load_settings(env)
    base = (api_url or LIVE_BINANCE).rstrip("/")

    def get(path: str, **params) -> object:
        url = f"{base}/api/v3/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        with urllib.request.urlopen(url, timeout=settings.ingest.request_timeout_seconds) as response:  # noqa: S310
            return json.load(response)

    day_ms = 86_400_000
    start_ms = int(first_history_day(since, settings.ingest.history_start).timestamp() * 1000)
    market_id = settings.ingest.symbol.replace("/", "")
    if replay:
        with urllib.request.urlopen(f"{base}/replay/clock", timeout=10) as response:  # noqa: S310
            clock = json.load(response)
        now_ms = int(clock["now"])
        span = clock["symbols"].get(market_id)
        first_ms = max(start_ms, int(span["first_open"])) if span else now_ms
    else:
        now_ms = int(get("time")["serverTime"])
        first = get("klines", symbol=market_id, interval=settings.ingest.interval, startTime=start_ms, limit=1)
        first_ms = int(first[0][0]) if first else now_ms
    if settings.ingest.backfill_days is not None and since is None:
        first_ms = max(first_ms, now_ms - settings.ingest.backfill_days * day_ms)

    def day(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")

    return f"{day(min(first_ms, now_ms))}...{day(now_ms)}"


def first_history_day(since: str | None, history_start: str) -> datetime:
    """``since`` (``make history``'s SINCE; empty or None: ``history_start``) as a UTC midnight."""
    day = since or history_start
    if not is_day(day):
        raise ConfigError(f"SINCE={day} is not a day written YYYY-MM-DD")
    if day < history_start:
        raise ConfigError(f"SINCE={day} is before ingest.history_start ({history_start}): no partition holds it")
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def history_commands(command: list[str], days: str) -> list[list[str]]:
    """The commands that run ``command`` over ``days`` (``FIRST...LAST``), one after the other:
    for ``dagster asset materialize --select SEL``, its daily assets over the days, then the rest
    with the run config; any other command once, with the range appended."""
    ranged = [*command, "--partition-range", days]
    if "materialize" not in command or "--select" not in command:
        return [ranged]
    at = command.index("--select")
    selection, rest = command[at + 1], command[:at] + command[at + 2 :]
    config = []
    if "--config-json" in rest:
        at = rest.index("--config-json")
        config, rest = rest[at : at + 2], rest[:at] + rest[at + 2 :]
    return [
        [*rest, "--select", f"({selection}) and not partitions:none", "--partition-range", days],
        [*rest, "--select", f"({selection}) and partitions:none", *config],
    ]


def with_exchange_config(command: list[str], api_url: str, replay_file: Path) -> list[str]:
    """``dagster asset materialize`` with the replay exchange's address in the run's config.

    The worker pool's hosts build the exchange resource from their own environment, which knows
    nothing of this process's replay: the run's config travels with the run to every host."""
    if "materialize" not in command:
        return command
    exchange = {"exchange": {"config": {"api_url": api_url, "replay_file": str(replay_file)}}}
    if "--config-json" not in command:
        return [*command, "--config-json", json.dumps({"resources": exchange})]
    at = command.index("--config-json")
    config = json.loads(command[at + 1])
    config["resources"] = {**config.get("resources", {}), **exchange}
    return [*command[: at + 1], json.dumps(config), *command[at + 2 :]]


def with_history(
    command: list[str],
    api_url: str | None,
    env: dict[str, str],
    log: TextIO,
    replay: bool = False,
    since: str | None = None,
) -> list[list[str]]:
    """The commands that run ``command`` over the history, noted in the log: split in two
    (``history_commands``), or from ``since`` as one ranged command."""
    days = history_partition_range(api_url, env, replay, since)
    log.write(f"history: --partition-range {days}\n")
    log.flush()
    return [[*command, "--partition-range", days]] if since is not None else history_commands(command, days)


def check_dependencies() -> None:
    """Every requirement btc-lifecycle was installed with is present (a cheap metadata look-up)."""
    from importlib import metadata

    try:
        requirements = metadata.requires("btc-lifecycle") or []
    except metadata.PackageNotFoundError:
        return  # not installed as a distribution (a bare checkout): the command will tell
    for requirement in requirements:
        if ";" in requirement:  # extras (test tools) are not needed to run
            continue
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            raise MissingDependency(
                f"missing dependency: {name} (btc-lifecycle requires {requirement}); "
                "install the pinned dependencies with `make install`"
            ) from None


def preflight(env: dict[str, str], candles: Candles | None) -> None:
    """Refuse, before anything starts, a bad config, a bad candle file (every one of them) or a
    missing dependency."""
    check_dependencies()
    settings = load_settings(env)
    files = [] if candles is None else list(candles.values()) if isinstance(candles, dict) else [candles]
    for path in files:
        if not path.is_file():
            raise ConfigError(f"{path}: candle file not found")
    from btc_lifecycle.domain.candle_files import read_candle_file

    for path in files:
        read_candle_file(path, settings.ingest.interval)


def where_to_look(env: dict[str, str]) -> str:
    """After a whole-graph run: the newest reports, and the commands that show the rest."""
    from btc_lifecycle.reporting.retention import completed_report_folders  # after the run: pandas comes along

    settings = load_settings(env)
    lines = ["Where to look:"]
    reports = [
        ("ingestion report", "ingestion", "report.pdf"),
        ("model report", "model", "report.pdf"),
        ("drift report", "drift", "*.html"),
    ]
    if len(settings.ingest.markets) > 1:  # the further markets' own reports are in folders named after them
        reports.append(("market comparison", "markets", "report.pdf"))
    for kind, folder, pattern in reports:
        # Oldest first, by the time in the folder's name (a model report's starts with its version).
        reports = completed_report_folders(settings.report_dir / folder)
        found = [path for report in reports for path in sorted(report.glob(pattern))]
        lines.append(f"  {kind + ':':<19}{found[-1] if found else '(none yet)'}")
    lines.append(f"  runs, assets, checks: make dev        (then http://127.0.0.1:{env.get('DAGSTER_PORT') or 3000})")
    lines.append(f"  models and metrics:   make mlflow-ui  (then {settings.mlflow_ui_url})")
    return "\n".join(lines)


def one_line(kind: str, message: str) -> str:
    """An error of class ``kind`` as the launcher's one line."""
    if kind in ("ModuleNotFoundError", "ImportError"):
        return f"missing dependency: {message} (install the pinned dependencies with `make install`)"
    return message if kind in OWN_ERRORS else f"{kind}: {message}"


def traceback_error(output: str) -> str | None:
    """The project's error (or a missing module) a command's traceback ends with, or None."""
    for line in output.splitlines():
        if match := _TRACEBACK_ERROR.match(line):
            return one_line(match.group(1), match.group(2).strip())
    return None


def run_failure(instance: dg.DagsterInstance, run_ids: list[str]) -> str | None:
    """What failed the first failed run of ``run_ids``: its first failed step's exception (the
    cause under Dagster's step wrapper), or the run's own failure message; None if none failed."""
    import dagster as dg

    for run_id in run_ids:
        kinds = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
        failures = instance.all_logs(run_id, of_type=kinds)
        for entry in failures:
            data = entry.dagster_event.step_failure_data if entry.dagster_event else None
            if data is not None and data.error is not None:
                error = data.error.cause or data.error
                return one_line(error.cls_name, error.message.strip().split(": ", 1)[-1])  # "module.Class: text"
        if failures:
            return failures[-1].message
    return None


# raw_candles logs "archive 3/14: BTCUSDT-1m-2024-03.zip" as it reads each archive.
ARCHIVE_PROGRESS = re.compile(r"^archive (?P<done>\d+)/(?P<total>\d+): (?P<name>\S+)$")


def progress_bar(done: int, total: int, width: int = 24) -> str:
    filled = width * done // max(total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


class CommandRuns:
    """The runs a command's process executes, and their progress, read from the Dagster instance."""

    EVENTS = ("STEP_SUCCESS", "STEP_FAILURE", "ASSET_CHECK_EVALUATION", "RUN_SUCCESS", "RUN_FAILURE")

    def __init__(self, instance: dg.DagsterInstance, pid: int, since: datetime) -> None:
        self.instance, self.pid, self.since = instance, pid, since
        self.run_ids: list[str] = []
        self._others: set[str] = set()
        self._shown: dict[str, int] = {}
        self._cursors: dict[str, str] = {}

    def ids(self) -> list[str]:
        """Ours: created since the command started, and started in its process (``dagster asset
        materialize`` executes in process); runs that others launch meanwhile are left out."""
        import dagster as dg

        for run in reversed(self.instance.get_runs(dg.RunsFilter(created_after=self.since))):
            if run.run_id in self.run_ids or run.run_id in self._others:
                continue
            starts = self.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)
            if not starts:  # not started yet: looked at again next time
                continue
            if starts[0].dagster_event.pid == self.pid:
                self.run_ids.append(run.run_id)
            else:
                self._others.add(run.run_id)
        return self.run_ids

    def show_new(self) -> None:
        """The runs' new step and check results, and raw_candles' archive progress as a bar."""
        import dagster as dg

        kinds = {dg.DagsterEventType[name] for name in self.EVENTS}
        for run_id in self.ids():
            entries = self.instance.all_logs(run_id, of_type=kinds)
            for entry in entries[self._shown.get(run_id, 0) :]:
                print(f"  {entry.message}", flush=True)
            self._shown[run_id] = len(entries)
            new = self.instance.get_records_for_run(run_id, cursor=self._cursors.get(run_id))
            for record in new.records:
                entry = record.event_log_entry
                if entry.dagster_event is None and (archive := ARCHIVE_PROGRESS.match(entry.user_message)):
                    print(
                        f"  {progress_bar(int(archive['done']), int(archive['total']))} {archive['name']}", flush=True
                    )
            self._cursors[run_id] = new.cursor

    def follow(self, done: threading.Event, log: TextIO) -> None:
        """Show progress every half second until ``done``, then once more."""
        try:
            while not done.wait(0.5):
                self.show_new()
            self.show_new()
        except Exception:  # noqa: BLE001 - progress is a courtesy; the log keeps the command's output
            log.write(f"launcher: progress stopped: {traceback.format_exc()}")


def open_instance(env: dict[str, str]) -> dg.DagsterInstance | None:
    """The Dagster instance ``DAGSTER_HOME`` names, or None without one (the command then uses
    a temporary instance)."""
    if not env.get("DAGSTER_HOME"):
        return None
    import dagster as dg

    return dg.DagsterInstance.get()


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail the runs whose process is gone, freeing their pool slots (without a daemon a killed
    run would hold the 'duckdb' slot for ever); their ids. Only where every run is on this machine."""
    from btc_lifecycle.production.runs import fail_runs_without_a_process, runs_stored_on_this_machine

    return fail_runs_without_a_process(instance, KILLED) if runs_stored_on_this_machine(instance) else []


def new_log_path(env: dict[str, str]) -> Path:
    folder = Path(env.get("BTC_LOG_DIR") or DEFAULT_LOG_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for old in sorted(folder.glob("*T*Z-*.log"))[: -(KEEP_LOGS - 1)]:  # only our own; the newest stay
        old.unlink(missing_ok=True)
    return folder / f"{stamp}-{os.getpid()}.log"


def fail(message: str, log_path: Path, code: int = 2) -> int:
    """One console line: what is wrong, and where the details are."""
    first = " ".join(message.split("\n", 1)[0].split())
    print(f"error: {first} (details: {log_path})", file=sys.stderr, flush=True)
    return code


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_group(pgid: int, grace: float) -> None:
    """SIGTERM what is left of the group, SIGKILL it after ``grace`` seconds."""
    if not group_members(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and group_members(pgid):
        time.sleep(0.05)
    if group_members(pgid):
        _signal_group(pgid, signal.SIGKILL)


def run_command(
    command: list[str], env: dict[str, str], log: TextIO, *, stream: bool, instance: dg.DagsterInstance | None = None
) -> tuple[int, bool, CommandRuns | None]:
    """Run ``command`` in its own process group, its output to ``log`` and, with ``stream``, to the
    console; without, the progress of its runs in ``instance``. The exit code, whether a signal
    asked us to stop, and its runs; the group is gone on return."""
    stop_requested: list[float] = []
    child: subprocess.Popen | None = None
    since = datetime.now(UTC)

    def forward(signum, _frame) -> None:
        if not stop_requested:
            stop_requested.append(time.monotonic())
        # Dagster shuts its services down cleanly on SIGINT (it maps SIGTERM to the same).
        if child is not None:
            _signal_group(child.pid, signal.SIGINT)

    # Handlers first: the child then starts with SIGINT at its default. Started in the background
    # (`make dev &`, CI, a supervisor), a process inherits SIGINT *ignored*; Python keeps it
    # ignored and Dagster maps SIGTERM to that same disposition, so `dagster dev` would ignore
    # both and outlive everything.
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in handled}
    # A group of its own: a terminal's Ctrl-C and a SIGTERM to this launcher both reach every
    # process the command starts (webserver, daemon, code servers) through one forwarded signal,
    # and nothing outlives the launcher.
    try:
        child = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except BaseException:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        raise
    if stop_requested:  # a signal arrived while the child was starting
        _signal_group(child.pid, signal.SIGINT)

    def pump() -> None:
        for raw in iter(child.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            log.write(line)
            log.flush()
            if stream:
                sys.stdout.write(line)
                sys.stdout.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    runs = CommandRuns(instance, child.pid, since) if instance is not None else None
    done = threading.Event()
    watcher = None
    if runs is not None and not stream:
        watcher = threading.Thread(target=runs.follow, args=(done, log), daemon=True)
        watcher.start()
    try:
        while child.poll() is None:
            if stop_requested and time.monotonic() - stop_requested[0] > STOP_GRACE_SECONDS:
                _signal_group(child.pid, signal.SIGKILL)
            try:
                child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
    finally:
        _stop_group(child.pid, grace=5.0)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        reader.join(timeout=5)
        done.set()
        if watcher is not None:
            watcher.join(timeout=30)
    return child.returncode, bool(stop_requested), runs


def ranged(
    command: list[str], args: argparse.Namespace, api_url: str | None, env: dict[str, str], log: TextIO, replay=False
) -> list[list[str]]:
    """The commands to run for ``command``: over the history (``--history``, ``--since``) or as it is."""
    if args.since is None and not args.history:
        return [command]
    return with_history(command, api_url, env, log, replay, since=args.since)


def run_commands(
    commands: list[list[str]], env: dict[str, str], log: TextIO, *, stream: bool, instance: dg.DagsterInstance | None
) -> tuple[list[str], int, bool, CommandRuns | None]:
    """``run_command`` for each command in turn, until one fails or a signal stops it: the last
    command run, its exit code, whether a signal asked us to stop, and its runs."""
    for command in commands:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        code, stopped, runs = run_command(command, env, log, stream=stream, instance=instance)
        if code != 0 or stopped:
            break
    return command, code, stopped, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--candles",
        action="append",
        metavar="[SYMBOL=]FILE",
        help="candle file to replay instead of live Binance; SYMBOL=FILE replays it as the market SYMBOL "
        "(BASE/QUOTE, e.g. BTC/USD=b.csv), a bare FILE as the configured market (ingest.symbol); repeatable, "
        "one file per market. Every configured market (ingest.symbol, more_markets) needs its file; a file "
        "of a market no config names is served for clients that ask for it",
    )
    parser.add_argument("--replay-start", help="replay clock start (ISO time); default: the end of the file")
    parser.add_argument("--replay-speed", type=float, help="replay seconds per wall second (0 freezes the clock)")
    parser.add_argument(
        "--replay-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="passed to the replay exchange as is, e.g. --replay-arg=--fault=klines:503:2",
    )
    parser.add_argument(
        "--offline-ok", action="store_true", help="without --candles, start even when Binance is unreachable (make dev)"
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="only progress lines on the console, the whole output in the log (make run)",
    )
    parser.add_argument(
        "--history",
        action="store_true",
        help="append --partition-range FIRST...LAST: every day the exchange has since ingest.history_start "
        "(at most backfill_days) up to its today (make run, make demo)",
    )
    parser.add_argument(
        "--since",
        metavar="DAY",
        help="append --partition-range DAY...TODAY to the command as it is (empty DAY: ingest.history_start; "
        "backfill_days does not apply) (make history)",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="after success, print where the reports are and how to browse them (make run, make demo)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")

    replay_args = [
        *(["--start", args.replay_start] if args.replay_start else []),
        *(["--speed", str(args.replay_speed)] if args.replay_speed is not None else []),
        *args.replay_arg,
    ]
    env, log_path, server, instance, failed_runs = dict(os.environ), None, None, None, []
    try:
        try:
            env = with_env_file(env)
        finally:  # a malformed .env is logged where the real environment says
            log_path = new_log_path(env)
        candles = replay_sources(args.candles, env) if args.candles else None
        if candles is not None and all(path.is_file() for path in candles.values()):
            # Started now, so that it reads the file on the other core while the checks below
            # read it here (about a second saved); stopped if they refuse. Its errors go to the log.
            with log_path.open("a", encoding="utf-8") as server_log:
                server = start_replay_exchange(candles, replay_args, env=quiet_warnings(env), stderr=server_log)
        preflight(env, candles)
        if args.since is not None:
            first_history_day(args.since, load_settings(env).ingest.history_start)
        os.environ.update(env)  # the instance's dagster.yaml may read addresses from it, as the command's does
        instance = open_instance(env)
        if instance is not None:
            failed_runs = fail_dead_runs(instance)
    except Exception as error:  # noqa: BLE001 - every refusal ends as one line, the rest in the log
        if server is not None:
            stop_replay_exchange(server)
        if log_path is None:  # the log folder itself cannot be made
            print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
            return 2
        log_path.write_text("".join(traceback.format_exception(error)))
        own = isinstance(error, (ConfigError, ValueError, MissingDependency))
        return fail(str(error) if own else one_line(type(error).__name__, str(error)), log_path)

    env = quiet_warnings(env)
    with log_path.open("a", encoding="utf-8") as log, instance or nullcontext():
        for run_id in failed_runs:
            note = f"run {run_id}: its process is gone; marked failed and its pool slots freed"
            print(note, flush=True)
            log.write(note + "\n")
        if candles is None:
            if problem := binance_unreachable(env.get("BINANCE_API_URL")):
                if not args.offline_ok:
                    print(OFFLINE_HINT.format(error=problem), file=sys.stderr)
                    return 2
                print(
                    f"Binance is unreachable ({problem.split(':')[0]}): browsing works; runs that "
                    "fetch candles will fail (offline: make dev CANDLES=FILE)",
                    flush=True,
                )
            commands = ranged(command, args, env.get("BINANCE_API_URL"), env, log)
            command, code, stopped, runs = run_commands(commands, env, log, stream=not args.progress, instance=instance)
        else:
            with replay_exchange_serving(server, candles, announce=log if args.progress else sys.stdout) as url:
                env = {
                    **env,
                    "BINANCE_API_URL": url,
                    "REPLAY_CANDLES": str(configured_file(candles, env)),
                    # A replayed file is backfilled whole unless the caller says otherwise.
                    "INGEST_BACKFILL_DAYS": env.get("INGEST_BACKFILL_DAYS", "all"),
                }
                commands = ranged(command, args, url, env, log, replay=True)
                if env.get("CELERY_BROKER_URL"):  # steps run on the worker pool's hosts
                    commands = [with_exchange_config(c, url, Path(env["REPLAY_CANDLES"])) for c in commands]
                command, code, stopped, runs = run_commands(
                    commands, env, log, stream=not args.progress, instance=instance
                )
        if stopped:
            return code if code else 130
        if code != 0:
            found = (runs and run_failure(instance, runs.ids())) or traceback_error(
                log_path.read_text(encoding="utf-8", errors="replace")
            )
            return fail(found or f"`{' '.join(command[:3])} ...` failed with exit code {code}", log_path, code)
    if args.progress:
        print(f"done (log: {log_path})", flush=True)
    if args.summary:
        print(where_to_look(env), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
