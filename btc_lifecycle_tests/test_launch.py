"""The launcher behind `make run`: replay a file, or explain why Binance cannot be reached; back-fill
the days from the exchange's first candle (or the last backfill_days) to its today, the daily assets
as one ranged run and the rest as one unpartitioned run; fail the runs a killed process left behind;
show the progress of the command's runs, and one line when it fails."""

from __future__ import annotations

import io
import json
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

import pandas as pd
import psutil
import pytest

from btc_lifecycle.config import ConfigError
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.launch import (
    OFFLINE_HINT,
    history_commands,
    history_partition_range,
    progress_bar,
    replay_sources,
    where_to_look,
    with_history,
)
from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG
from btc_lifecycle_tests.e2e.workspace import BIN, GRAPH_ASSETS, REPO_ROOT, materialize_command


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


# Several markets: --candles SYMBOL=FILE (make run CANDLES="BTC/USDT=a.csv BTC/USD=b.csv").


def test_candles_pairs_name_their_markets_and_a_bare_file_is_the_configured_market(tmp_path):
    env = env_with(tmp_path, symbol="ETH/USDT")
    sources = replay_sources(["a.csv", "BTC/USD=b.csv"], env)
    assert sources == {"ETH/USDT": Path("a.csv").resolve(), "BTC/USD": Path("b.csv").resolve()}


@pytest.mark.parametrize(
    "values, problem",
    [
        (["BTCUSD=b.csv"], "--candles BTCUSD=b.csv: 'BTCUSD' is not a symbol BASE/QUOTE"),
        (["a.csv", "BTC/USDT=b.csv"], "--candles BTC/USDT=b.csv: the market BTC/USDT is given twice (also by a.csv)"),
        (["BTC/USD=b.csv"], "--candles BTC/USD=b.csv: no file for the configured market BTC/USDT (ingest.symbol)"),
    ],
)
def test_a_bad_candles_value_is_a_config_error_naming_it(tmp_path, values, problem):
    with pytest.raises(ConfigError) as error:
        replay_sources(values, env_with(tmp_path))
    assert str(error.value).startswith(problem)


def test_every_configured_market_needs_a_file_and_a_file_no_market_names_is_served_only(tmp_path):
    usd = {"exchange": "binanceus", "symbol": "BTC/USD", "interval": "1m"}
    env = env_with(tmp_path, more_markets=[usd])
    with pytest.raises(ConfigError) as error:
        replay_sources(["a.csv"], env)
    assert str(error.value) == (
        "--candles a.csv: no file for the configured market BTC/USD (more_markets[0]), a market the graph "
        "ingests; add BTC/USD=FILE"
    )
    assert set(replay_sources(["a.csv", "BTC/USD=b.csv", "ETH/BTC=c.csv"], env)) == {"BTC/USDT", "BTC/USD", "ETH/BTC"}


def test_a_bad_candles_pair_stops_with_one_line_naming_it_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    result = launch("--candles", "BTCUSDT=a.csv", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    line, _ = one_line_refusal(result)
    assert line.startswith("error: --candles BTCUSDT=a.csv: 'BTCUSDT' is not a symbol BASE/QUOTE")
    assert not marker.exists()


def test_every_candle_file_is_checked_before_anything_starts(tmp_path, generated_candles):
    from btc_lifecycle_tests.conftest import write_generic_csv

    good = write_generic_csv(generated_candles.iloc[:100], tmp_path / "good.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("open_time,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,abc,1,1,1\n")
    marker = tmp_path / "ran"
    run = ["--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    missing = launch("--progress", "--candles", str(good), "--candles", f"BTC/USD={tmp_path / 'nope.csv'}", *run)
    assert f"{tmp_path / 'nope.csv'}: candle file not found" in one_line_refusal(missing)[0]
    broken = launch("--progress", "--candles", str(good), "--candles", f"BTC/USD={bad}", *run)
    assert f"{bad}, line 2, field high: non-numeric 'abc'" in one_line_refusal(broken)[0]
    assert not marker.exists()


def test_two_files_are_replayed_at_once_each_as_its_market(tmp_path, generated_candles):
    from btc_lifecycle_tests.conftest import write_generic_csv

    usdt = write_generic_csv(generated_candles.iloc[:100], tmp_path / "usdt.csv")
    usd = write_generic_csv(generated_candles.iloc[:40], tmp_path / "usd.csv")
    show = (
        "import json, os, urllib.request\n"
        "url = os.environ['BINANCE_API_URL'] + '/api/v3/klines?interval=1m&limit=1000&symbol='\n"
        "counts = [len(json.load(urllib.request.urlopen(url + s))) for s in ('BTCUSDT', 'BTCUSD')]\n"
        "print(*counts, os.environ['REPLAY_CANDLES'])"
    )
    result = launch("--candles", f"BTC/USDT={usdt}", "--candles", f"BTC/USD={usd}", "--", sys.executable, "-c", show)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"100 40 {usdt}"


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


def shadowed_dagster(folder: Path) -> Path:
    """A package folder whose ``dagster`` fails to import exactly as an uninstalled one does."""
    (folder / "dagster").mkdir(parents=True)
    (folder / "dagster" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'dagster'\", name='dagster')\n"
    )
    return folder


def test_a_missing_dependency_inside_the_command_stops_with_one_line_naming_it(tmp_path):
    shadow = shadowed_dagster(tmp_path / "shadow")
    result = launch(
        "--progress",
        "--offline-ok",
        "--",
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {str(shadow)!r}); import btc_lifecycle.definitions",
        env={**os.environ, "BINANCE_API_URL": f"http://127.0.0.1:{closed_port()}"},
    )
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    # The offline note comes first (no exchange here); then the one error line.
    assert lines[0].startswith("Binance is unreachable")
    line, log = one_line_refusal(subprocess.CompletedProcess(result.args, result.returncode, lines[-1], ""))
    assert "missing dependency: No module named 'dagster'" in line and "make install" in line
    assert "Traceback" in log and "import btc_lifecycle.definitions" in log


def test_a_dependency_the_launcher_itself_misses_stops_with_one_line_naming_it(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(shadowed_dagster(tmp_path / "shadow")),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),  # the launcher opens the instance to follow runs
    }
    result = launch("--progress", "--", sys.executable, "-c", "pass", env=env)
    line, log = one_line_refusal(result)
    assert "missing dependency: No module named 'dagster'" in line and "make install" in line
    assert "ModuleNotFoundError" in log


def test_a_malformed_env_file_line_stops_with_one_line_naming_file_and_line(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# settings\nFEATURE_DB_PATH=/tmp/x.duckdb\nthis is not a setting\n")
    result = launch("--progress", "--", sys.executable, "-c", "pass", env={**os.environ, "BTC_ENV_FILE": str(env_file)})
    line, _log = one_line_refusal(result)
    assert f"{env_file}, line 3: expected KEY=VALUE" in line


# A quiet console and the .env file in the command's environment.


def test_dagster_supersession_warnings_are_silenced_in_the_command_and_other_categories_are_not(
    tmp_path, generated_candles
):
    from btc_lifecycle_tests.conftest import write_generic_csv

    path = write_generic_csv(generated_candles.iloc[:100], tmp_path / "c.csv")
    script = (
        "import warnings\n"
        "from dagster_shared.utils.warnings import supersession_warning\n"
        "supersession_warning('Function `asset_materialize_command`', \"Use 'dg launch' instead.\")\n"
        "supersession_warning('Function `dev_command`', \"Use 'dg dev' instead.\")\n"
        "warnings.warn('a warning of our own', UserWarning)\n"
        "warnings.warn('a runtime warning', RuntimeWarning)\n"
    )
    result = launch("--candles", str(path), "--", sys.executable, "-c", script)
    assert result.returncode == 0, result.stderr
    assert "superseded" not in result.stdout + result.stderr
    assert "a warning of our own" in result.stdout + result.stderr
    assert "a runtime warning" in result.stdout + result.stderr


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


# The days `make run` back-fills (`launch --history`): from the exchange's first candle (or the last
# backfill_days) to its today, asked the same way of a replay exchange and of Binance's API.


FIVE_DAYS = synthetic_candles(5 * 1440 - 300, start="2024-03-01T00:00:00Z", seed=3)  # last candle 5 March 18:59


def env_with(tmp_path, **config) -> dict[str, str]:
    path = tmp_path / "bitcoin_ingest.json"
    path.write_text(json.dumps({**DEFAULT_CONFIG, **config}))
    return {"INGEST_CONFIG": str(path)}


@pytest.fixture(scope="module")
def exchange():
    with ReplayExchange(FIVE_DAYS, speed=0) as replay:
        yield replay


@pytest.mark.parametrize("replay", [True, False], ids=["replay clock", "Binance REST"])
def test_every_day_from_the_first_candle_to_the_exchanges_today(tmp_path, exchange, replay):
    env = {**env_with(tmp_path, backfill_days="all")}
    assert history_partition_range(exchange.base_url, env, replay=replay) == "2024-03-01...2024-03-05"


@pytest.mark.parametrize("replay", [True, False], ids=["replay clock", "Binance REST"])
def test_backfill_days_keeps_only_the_last_days(tmp_path, exchange, replay):
    env = env_with(tmp_path, backfill_days=2)
    # The replay clock stands just after the last candle (5 March 19:00): two days back.
    now = FIVE_DAYS["open_time"].iloc[-1] + pd.Timedelta(minutes=1)
    first = (now - pd.Timedelta(days=2)).strftime("%Y-%m-%d")
    assert history_partition_range(exchange.base_url, env, replay=replay) == f"{first}...{now:%Y-%m-%d}"


def test_the_environment_overrides_backfill_days(tmp_path, exchange):
    env = {**env_with(tmp_path, backfill_days=2), "INGEST_BACKFILL_DAYS": "all"}
    assert history_partition_range(exchange.base_url, env, replay=True).startswith("2024-03-01...")


def test_history_start_cuts_earlier_candles(tmp_path, exchange):
    env = env_with(tmp_path, backfill_days="all", history_start="2024-03-03")
    assert history_partition_range(exchange.base_url, env, replay=False) == "2024-03-03...2024-03-05"


def test_the_range_is_appended_to_another_command_and_noted_in_the_log(tmp_path, exchange):
    log = io.StringIO()
    commands = with_history(["dg", "launch", "--assets", "*"], exchange.base_url, env_with(tmp_path), log, replay=True)
    assert commands == [["dg", "launch", "--assets", "*", "--partition-range", "2024-03-01...2024-03-05"]]
    assert "history: --partition-range 2024-03-01...2024-03-05" in log.getvalue()


# With the history, `dagster asset materialize` runs its daily assets as one ranged run, then the
# rest as one unpartitioned run: Dagster plans each unpartitioned asset of a ranged run once per day.

DAYS = "2024-03-01...2024-03-05"
FORCE_RETRAIN = '{"ops": {"model": {"config": {"force_retrain": true}}}}'


def test_make_run_runs_the_daily_assets_over_the_days_then_the_rest_with_the_run_config():
    command = materialize_command("*", extra=["--config-json", FORCE_RETRAIN])  # make run RETRAIN=1
    prefix = materialize_command("*")[:5]
    assert history_commands(command, DAYS) == [
        [*prefix, "--select", "(*) and not partitions:none", "--partition-range", DAYS],
        [*prefix, "--select", "(*) and partitions:none", "--config-json", FORCE_RETRAIN],
    ]


def test_the_two_halves_select_the_daily_assets_and_the_rest_of_the_code_location():
    halves = [command[command.index("--select") + 1] for command in history_commands(materialize_command("*"), DAYS)]
    listed = [
        subprocess.run(
            [str(BIN / "dagster"), "asset", "list", "-m", "btc_lifecycle.definitions", "--select", half],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_ROOT,
        ).stdout.split()
        for half in halves
    ]
    assert sorted(listed[0]) == ["feast_offline_features", "features", "labeled_candles", "raw_candles"]
    assert sorted(listed[0] + listed[1]) == sorted(GRAPH_ASSETS)


def test_since_ranges_the_command_as_it_is_from_that_day(tmp_path, exchange):
    log = io.StringIO()
    command = materialize_command("key:*raw_candles or key:*labeled_candles")  # the Makefile's selection
    commands = with_history(command, exchange.base_url, env_with(tmp_path), log, replay=True, since="2024-03-03")
    assert commands == [[*command, "--partition-range", "2024-03-03...2024-03-05"]]
    # Empty: from history_start (the file's first day here), backfill_days aside.
    whole = with_history(command, exchange.base_url, env_with(tmp_path, backfill_days=1), log, replay=True, since="")
    assert whole == [[*command, "--partition-range", "2024-03-01...2024-03-05"]]


@pytest.mark.parametrize(
    ("since", "problem"), [("2024-3-1", "not a day written YYYY-MM-DD"), ("2017-01-01", "before ingest.history_start")]
)
def test_a_bad_since_is_refused_by_name(tmp_path, exchange, since, problem):
    with pytest.raises(ConfigError, match=f"SINCE={since}.*{problem}"):
        history_partition_range(exchange.base_url, env_with(tmp_path), replay=True, since=since)


def test_another_command_gets_the_range_appended():
    assert history_commands(["dg", "launch", "--assets", "*"], DAYS) == [
        ["dg", "launch", "--assets", "*", "--partition-range", DAYS]
    ]


def test_archive_progress_is_a_bar():
    assert progress_bar(0, 4, width=8) == "[........] 0/4"
    assert progress_bar(3, 4, width=8) == "[######..] 3/4"
    assert progress_bar(4, 4, width=8) == "[########] 4/4"


# Runs a killed process left behind, and the progress of the command's runs, in the instance.


@pytest.fixture
def dagster_home(tmp_path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "config" / "dagster.yaml").read_text())
    return home


def offline(**env: str) -> dict[str, str]:
    return {**os.environ, "BINANCE_API_URL": f"http://127.0.0.1:{closed_port()}", **env}


def test_a_run_whose_process_was_killed_is_failed_and_its_slot_freed_before_the_command(dagster_home):
    import dagster as dg
    from dagster._core.events import DagsterEvent

    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", run_id="killed-run", status=dg.DagsterRunStatus.STARTED))
        start = DagsterEvent("PIPELINE_START", job_name="__ASSET_JOB", pid=killed.pid)
        instance.report_dagster_event(start, "killed-run")
        instance.event_log_storage.set_concurrency_slots("duckdb", 1)  # the pool's limit, as a step sets it
        assert instance.event_log_storage.claim_concurrency_slot("duckdb", "killed-run", "raw_candles").is_claimed
    show = (
        "import dagster as dg\n"
        "instance = dg.DagsterInstance.get()\n"
        "slots = instance.event_log_storage.get_concurrency_info('duckdb').active_slot_count\n"
        "print('seen by the command:', instance.get_run_by_id('killed-run').status.value, slots)\n"
    )
    result = launch("--offline-ok", "--", sys.executable, "-c", show, env=offline(DAGSTER_HOME=str(dagster_home)))
    assert result.returncode == 0, result.stderr
    assert "run killed-run: its process is gone; marked failed and its pool slots freed" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "seen by the command: FAILURE 0"


TWO_ASSETS = """
import dagster as dg
from btc_lifecycle.config import ConfigError

@dg.asset
def candles():
    return 1

@dg.asset_check(asset=candles)
def candles_are_there():
    return dg.AssetCheckResult(passed=True)

@dg.asset(deps=[candles])
def labels():
    raise ConfigError("tiny.json: field 'horizon' must be a positive integer, got 0")

defs = dg.Definitions(assets=[candles, labels], asset_checks=[candles_are_there])
"""


def test_progress_lines_come_from_the_runs_events_and_a_failed_step_ends_as_one_line(tmp_path, dagster_home):
    (tmp_path / "two_assets.py").write_text(TWO_ASSETS)
    command = [str(BIN / "dagster"), "asset", "materialize", "-f", str(tmp_path / "two_assets.py"), "--select", "*"]
    result = launch("--progress", "--offline-ok", "--", *command, env=offline(DAGSTER_HOME=str(dagster_home)))
    out = result.stdout.strip().splitlines()
    assert out[0].startswith("Binance is unreachable")
    progress = [re.sub(r" in [\d.]+m?s\.$", " in T.", line) for line in out[1:]]
    assert sorted(progress[:-1]) == sorted(
        [
            '  Finished execution of step "candles" in T.',
            "  Asset check 'candles_are_there' on 'candles' passed.",
            '  Finished execution of step "candles_candles_are_there" in T.',
            '  Execution of step "labels" failed.',
        ]
    )
    assert progress[-1] == "  Execution of run for \"__ASSET_JOB\" failed. Steps failed: ['labels']."
    line, log = one_line_refusal(subprocess.CompletedProcess(result.args, result.returncode, "", result.stderr))
    assert line.startswith("error: tiny.json: field 'horizon' must be a positive integer, got 0 (details: ")
    assert 'raise ConfigError("tiny.json' in log  # the command's whole output, in the log
    assert "Warning" not in result.stdout + result.stderr and "Traceback" not in result.stdout + result.stderr


DAILY_AND_REST = """
import os
import dagster as dg

@dg.asset(
    partitions_def=dg.DailyPartitionsDefinition(start_date="2024-01-01"),
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def candles() -> None:  # None: the default IO manager stores no output of a range of days
    if os.environ.get("FAIL_CANDLES"):
        raise ValueError("no candles for these days")

@dg.asset(deps=[candles], config_schema={"note": str})
def summary(context) -> None:
    context.log.info(context.op_config["note"])

defs = dg.Definitions(assets=[candles, summary])
"""


def launch_history(tmp_path, dagster_home, **env: str) -> subprocess.CompletedProcess:
    """``launch --progress --history`` of a daily asset and an unpartitioned one that needs run config."""
    from btc_lifecycle_tests.conftest import write_generic_csv

    (tmp_path / "daily_and_rest.py").write_text(DAILY_AND_REST)
    candles = write_generic_csv(FIVE_DAYS, tmp_path / "five_days.csv")
    command = [str(BIN / "dagster"), "asset", "materialize", "-f", str(tmp_path / "daily_and_rest.py")]
    config = '{"ops": {"summary": {"config": {"note": "configured"}}}}'
    return launch(
        "--progress",
        "--history",
        "--candles",
        str(candles),
        "--",
        *command,
        "--select",
        "*",
        "--config-json",
        config,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home), **env},
    )


def test_with_history_the_daily_asset_runs_over_the_days_then_the_rest_in_a_run_of_its_own(tmp_path, dagster_home):
    import dagster as dg

    result = launch_history(tmp_path, dagster_home)
    assert result.returncode == 0, result.stdout + result.stderr
    progress = [re.sub(r" in [\d.]+m?s\.$", " in T.", line) for line in result.stdout.splitlines()]
    assert progress[:-1] == [
        '  Finished execution of step "candles" in T.',
        '  Finished execution of run for "__ASSET_JOB".',
        '  Finished execution of step "summary" in T.',
        '  Finished execution of run for "__ASSET_JOB".',
    ]
    assert progress[-1].startswith("done (log: ")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        second, first = instance.get_runs()  # newest first
    assert first.asset_selection == {dg.AssetKey("candles")}
    assert (first.tags["dagster/asset_partition_range_start"], first.tags["dagster/asset_partition_range_end"]) == (
        "2024-03-01",
        "2024-03-05",
    )
    assert second.asset_selection == {dg.AssetKey("summary")}
    assert not any(tag.startswith("dagster/asset_partition_range") for tag in second.tags)
    assert second.run_config == {"ops": {"summary": {"config": {"note": "configured"}}}}


def test_with_history_a_failed_ranged_run_ends_as_one_line_and_starts_no_second_run(tmp_path, dagster_home):
    import dagster as dg

    result = launch_history(tmp_path, dagster_home, FAIL_CANDLES="1")
    line, log = one_line_refusal(subprocess.CompletedProcess(result.args, result.returncode, "", result.stderr))
    assert line.startswith("error: ValueError: no candles for these days (details: ")
    assert "--partition-range 2024-03-01...2024-03-05" in log
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (run,) = instance.get_runs()
    assert run.asset_selection == {dg.AssetKey("candles")} and run.status == dg.DagsterRunStatus.FAILURE


# `make dev` stops cleanly: nothing it started outlives a SIGTERM to the launcher.


def process_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, session id, status) of every process."""
    table = {}
    for process in psutil.process_iter(["ppid", "status"]):
        try:
            table[process.pid] = (process.info["ppid"], os.getsid(process.pid), process.info["status"])
        except ProcessLookupError:  # ended meanwhile
            continue
    return table


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
        pid
        for pid, (_ppid, sid, status) in process_table().items()
        if (pid in pids or sid in sessions) and status != psutil.STATUS_ZOMBIE
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


# `make history`: the days since SINCE from the replay exchange's archives, a bar per archive.


def launch_history_since(tmp_path, dagster_home, *replay_args: str) -> subprocess.CompletedProcess:
    from btc_lifecycle_tests.conftest import write_generic_csv

    candles = write_generic_csv(FIVE_DAYS, tmp_path / "five_days.csv")
    state = {
        "DAGSTER_HOME": str(dagster_home),
        "FEATURE_DB_PATH": str(tmp_path / "store" / "bitcoin.duckdb"),
        "BTC_REPORT_DIR": str(tmp_path / "reports"),
        **env_with(tmp_path),
    }
    replay = [f"--replay-arg={arg}" for arg in replay_args]
    command = materialize_command("key:*raw_candles or key:*labeled_candles")  # the Makefile's selection
    return launch(
        "--progress",
        "--since",
        "2024-03-02",
        "--candles",
        str(candles),
        *replay,
        "--",
        *command,
        env={**os.environ, **state},
    )


def test_make_history_fills_the_days_since_from_archives_with_a_bar_per_archive(tmp_path, dagster_home):
    import duckdb

    result = launch_history_since(tmp_path, dagster_home)
    assert result.returncode == 0, result.stdout + result.stderr
    # The replay clock stands at 5 March 19:00: 2 and 3 March from their archives, the 4th
    # (yesterday) and the 5th through ccxt.
    assert "  [############............] 1/2 BTCUSDT-1m-2024-03-02.zip" in result.stdout.splitlines()
    assert "  [########################] 2/2 BTCUSDT-1m-2024-03-03.zip" in result.stdout.splitlines()
    with duckdb.connect(str(tmp_path / "store" / "bitcoin.duckdb"), read_only=True) as conn:
        first, count = conn.execute("SELECT min(open_time), count(*) FROM candles").fetchone()
        archived = conn.execute("SELECT count(*) FROM candles_archives").fetchone()[0]
    assert (str(first), count, archived) == ("2024-03-02 00:00:00", len(FIVE_DAYS) - 1440, 2)


def test_make_history_ends_with_one_line_naming_a_bad_archive(tmp_path, dagster_home):
    result = launch_history_since(tmp_path, dagster_home, "--archive-fault=checksum@2024-03-03")
    line, _ = one_line_refusal(subprocess.CompletedProcess(result.args, result.returncode, "", result.stderr))
    assert "BTCUSDT-1m-2024-03-03.zip: checksum mismatch" in line and "Nothing stored was changed" in line


def test_after_a_run_of_several_markets_the_summary_names_the_comparison(tmp_path):
    usd = {"exchange": "binanceus", "symbol": "BTC/USD", "interval": "1m"}
    reports = tmp_path / "reports"
    env = {**env_with(tmp_path, more_markets=[usd]), "BTC_REPORT_DIR": str(reports)}
    assert "market comparison: (none yet)" in where_to_look(env)
    page = reports / "markets" / "20240101T000000Z" / "report.pdf"
    page.parent.mkdir(parents=True)
    page.write_bytes(b"%PDF-")
    assert f"market comparison: {page}" in where_to_look(env)
    (tmp_path / "one").mkdir()
    assert "market comparison" not in where_to_look({**env_with(tmp_path / "one"), "BTC_REPORT_DIR": str(reports)})
