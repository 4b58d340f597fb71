"""Hostile and malformed input: one clear error naming the file and the field or line, and
nothing already stored changes.

Already specified elsewhere, not repeated here: every config field missing, of the wrong type
or out of range, a table name with SQL in it (test_config.py, test_feature_store.py); wrong
headers, non-numeric values, zero or negative prices, high below low, conflicting duplicate
timestamps, truncated zips (test_candle_files.py); bad exchange data mid-backfill
(test_exchange_faults.py: corrupt candle, two different candles for one minute).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import duckdb
import pytest

from btc_lifecycle.adapters.feature_store import upsert_candles
from btc_lifecycle.config import ConfigError, load_settings
from btc_lifecycle.domain.candle_files import CandleFileError, read_candle_file
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle_tests.e2e.reliability.conftest import (
    Store,
    assert_same_snapshot,
    step_failure,
    write_ingest_config,
)
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT

HEADER = "open_time,open,high,low,close,volume"
GOOD = "2023-03-01T00:00:00Z,23000,23010,22990,23005,1.5"


@pytest.mark.parametrize(
    "row, message",
    [
        ("2023-03-01T00:00:00Z,23000,23010,22990,23005,nan", r"line 2, field volume: missing value"),
        ("2023-03-01T00:00:00Z,23000,inf,22990,23005,1.5", r"line 2: non-finite"),
        ("2023-03-01T00:00:00Z,23000,1e400,22990,23005,1.5", r"line 2, field high: non-numeric '1e400'"),
        ("2023-03-01T00:00:00Z,23000,23010,22990,23005,-1", r"line 2: negative volume"),
        ("2023-03-01T00:00:00Z,23100,23010,22990,23005,1.5", r"line 2: open or close outside the high-low range"),
        (
            "99999999999999999999,23000,23010,22990,23005,1.5",
            r"line 2, field open_time: epoch time beyond the year 2262",
        ),
        ("9999999999999999,23000,23010,22990,23005,1.5", r"line 2, field open_time: epoch time beyond the year 2262"),
        ("-1677628800000,23000,23010,22990,23005,1.5", r"line 2, field open_time: epoch time too small"),
        ("=cmd|' /C calc'!A0,23000,23010,22990,23005,1.5", r"line 2, field open_time: unparseable"),
        ("2023-03-01T00:00:00Z,23000,23010,22990,23005,1.5,7", r"line 2: 7 fields, but the first line has 6"),
    ],
)
def test_a_hostile_candle_row_is_refused_naming_the_file_and_its_line(tmp_path, row, message):
    path = tmp_path / "hostile.csv"
    path.write_text(f"{HEADER}\n{row}\n")
    with pytest.raises(CandleFileError, match=rf"^{re.escape(str(path))}, {message}"):
        read_candle_file(path)


def test_a_binary_file_is_refused_as_not_text(tmp_path):
    path = tmp_path / "candles.csv"
    path.write_bytes(b"\x00\xff\xfe\x00garbage")
    with pytest.raises(CandleFileError, match=rf"^{re.escape(str(path))}, line 1: not UTF-8 text"):
        read_candle_file(path)


def test_an_api_key_in_the_config_file_is_refused_without_echoing_it(write_config):
    path = write_config(api_key="PLANTED-SECRET-1234")
    with pytest.raises(ConfigError) as error:
        load_settings({"INGEST_CONFIG": str(path)})
    assert "unknown field 'api_key'" in str(error.value)
    assert "PLANTED-SECRET-1234" not in str(error.value)


@pytest.mark.e2e
def test_a_bad_candle_file_given_to_the_launcher_stops_before_anything_runs(tmp_path, candles):
    db = tmp_path / "feature_store" / "bitcoin.duckdb"
    db.parent.mkdir()
    with duckdb.connect(str(db)) as conn:
        upsert_candles(conn, CandleSeries("candles", "BTC/USDT", "1m"), candles.iloc[:100])
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEADER}\n{GOOD}\n2023-03-01T00:01:00Z,23000,abc,22990,23005,1.5\n")
    marker = tmp_path / "ran"
    result = subprocess.run(
        [sys.executable, "-m", "btc_lifecycle.launch", "--candles", str(bad), "--", "touch", str(marker)],
        cwd=REPO_ROOT,
        env={
            "FEATURE_DB_PATH": str(db),
            "PATH": "/usr/bin:/bin",
            "BTC_LOG_DIR": str(tmp_path / "logs"),
            "BTC_ENV_FILE": str(tmp_path / "no.env"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert f"{bad}, line 3, field high: non-numeric 'abc'" in result.stderr
    assert not marker.exists()  # the command never ran
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


@pytest.mark.parametrize(
    "changes, served_interval, message",
    [
        ({"symbol": "ETH/USDT"}, "1m", r"does not list the symbol 'ETH/USDT'"),
        # The replay serves every interval coarser than its file, as Binance serves every interval
        # the config accepts: an exchange holding hourly candles only refuses the minutes.
        ({}, "1h", r"failed: BadRequest: .*Invalid interval"),
    ],
)
def test_a_symbol_or_interval_the_exchange_refuses_fails_clearly_and_changes_nothing(
    tmp_path, candles, changes, served_interval, message
):
    store = Store(tmp_path)
    with ReplayExchange(candles, speed=0, start=candles["open_time"].iloc[300]) as exchange:
        assert store.ingest(exchange.base_url).success
        before = store.snapshot()
    served = candles if served_interval == "1m" else candles.loc[candles["open_time"].dt.minute == 0]
    with ReplayExchange(served.reset_index(drop=True), interval=served_interval, speed=0) as exchange:
        (tmp_path / "other").mkdir()
        store.config = write_ingest_config(tmp_path / "other", **changes)
        result = store.ingest(exchange.base_url)
    assert not result.success
    assert re.search(message, step_failure(result)), step_failure(result)
    assert_same_snapshot(before, store.snapshot())
