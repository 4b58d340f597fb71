"""Exchange faults through the real ccxt client and the replay exchange, into the real assets.

Each fault either is recovered from (bounded, logged retries; exactly the right candles stored;
the run's metadata and ingestion_stats.json say what happened) or fails the step with a clear
message and leaves the store as it was. Backoff waits are 0 s (config and Retry-After 0).
"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from btc_lifecycle.domain.synthetic import without_minutes
from btc_lifecycle.replay_exchange import Fault, ReplayExchange
from btc_lifecycle_tests.conftest import write_generic_csv
from btc_lifecycle_tests.e2e.reliability.conftest import (
    Store,
    assert_same_snapshot,
    assert_stored,
    materialization,
    materialize_command,
    ms,
    step_failure,
    write_ingest_config,
)
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT, Workspace

# Fault, retries it costs, the ccxt (or client) error each retry reports.
RECOVERABLE = {
    "429 with Retry-After": (Fault("klines", "status:429", count=2, after=3, retry_after_s=0), {"DDoSProtection": 2}),
    "418 ban": (Fault("klines", "status:418", count=1, after=1, retry_after_s=0), {"DDoSProtection": 1}),
    "500": (Fault("klines", "status:500", count=2, after=4), {"ExchangeNotAvailable": 2}),
    "502": (Fault("klines", "status:502", count=2, after=4), {"ExchangeNotAvailable": 2}),
    "503": (Fault("klines", "status:503", count=3, after=4), {"ExchangeNotAvailable": 3}),
    "503 on the server time": (Fault("time", "status:503", count=1), {"ExchangeNotAvailable": 1}),
    "slow beyond the timeout": (Fault("klines", "delay:3", count=1, after=2), {"RequestTimeout": 1}),
    "truncated JSON body": (Fault("klines", "truncate", count=2, after=5), {"IncompleteResponse": 2}),
    "empty page mid-range": (Fault("klines", "empty", count=1, after=5), {"EmptyPage": 1}),
}


@pytest.mark.parametrize("name", list(RECOVERABLE))
def test_a_transient_fault_is_retried_and_exactly_the_right_candles_are_stored(tmp_path, candles, name):
    fault, reasons = RECOVERABLE[name]
    store = Store(tmp_path, request_timeout_seconds=0.5)
    with ReplayExchange(candles, speed=0, faults=[fault]) as exchange:
        result = store.ingest(exchange.base_url)
        klines_requests = exchange.request_counts["/api/v3/klines"]
    assert result.success
    assert_stored(store.table(), candles)
    metadata = materialization(result, "raw_candles")
    retries = sum(reasons.values())
    assert (metadata["retries"], metadata["retry_reasons"], metadata["complete"]) == (retries, reasons, True)
    assert (store.stats["retries"], store.stats["retry_reasons"], store.stats["new_rows"]) == (
        retries,
        reasons,
        len(candles),
    )
    expected_klines = 11 + (retries if fault.endpoint == "klines" else 0)
    assert klines_requests == expected_klines  # bounded: one extra request per retry, no more
    assert store.stats["total_rows"] == len(candles)


@pytest.mark.parametrize(
    "kind, pages_hit, duplicates",
    [
        ("overlap:5", 3, 15),  # three pages each start 5 candles early
        ("duplicate", 1, 100),  # one page carries each of its 100 candles twice
    ],
)
def test_overlapping_and_repeated_candles_are_stored_once_and_counted(tmp_path, candles, kind, pages_hit, duplicates):
    store = Store(tmp_path)
    with ReplayExchange(candles, speed=0, faults=[Fault("klines", kind, count=pages_hit, after=2)]) as exchange:
        result = store.ingest(exchange.base_url)
    assert result.success
    assert_stored(store.table(), candles)
    assert materialization(result, "raw_candles")["duplicates_dropped"] == duplicates
    assert store.stats["duplicates_dropped"] == duplicates
    assert store.stats["new_rows"] == len(candles)


def test_candles_out_of_order_within_pages_are_stored_in_time_order(tmp_path, candles):
    store = Store(tmp_path)
    with ReplayExchange(candles, speed=0, faults=[Fault("klines", "shuffle", count=11)]) as exchange:
        result = store.ingest(exchange.base_url)
    assert result.success
    assert_stored(store.table(), candles)
    labeled = store.table("candles_labeled")
    assert labeled["price_increase_label"].isna().sum() == 1  # only the first candle: no false gaps


def test_missing_minutes_across_a_page_boundary_are_reported_as_gaps_not_invented(tmp_path, candles):
    holed = without_minutes(candles, [99, 100, 101, 500])  # 3 straddle the first page boundary
    store = Store(tmp_path)
    with ReplayExchange(holed, speed=0) as exchange:
        result = store.ingest(exchange.base_url)
    assert result.success
    assert_stored(store.table(), holed)
    assert materialization(result, "raw_candles")["missing_minutes"] == 4
    assert store.stats["missing_minutes"] == 4 and len(store.stats["gaps"]) == 2


def test_an_exchange_that_stays_empty_mid_range_ends_the_fetch_there_and_the_next_run_resumes(tmp_path, candles):
    store = Store(tmp_path)
    with ReplayExchange(candles, speed=0, faults=[Fault("klines", "empty", count=4, after=5)]) as exchange:
        first = store.ingest(exchange.base_url)  # pages 1-5 arrive, then 4 empty answers (1 + 3 retries)
        second = store.ingest(exchange.base_url)
    assert first.success and second.success
    metadata = materialization(first, "raw_candles")
    assert metadata["complete"] is False and metadata["new_rows"] == 500
    assert metadata["stopped_at"] == candles["open_time"].iloc[500].isoformat()
    assert materialization(second, "raw_candles")["complete"] is True
    assert_stored(store.table(), candles)
    assert store.stats["new_rows"] == len(candles) - 500


def test_a_stretch_without_candles_longer_than_a_page_does_not_end_the_backfill(tmp_path, candles):
    thin = without_minutes(candles, range(300, 550))  # 250 quiet minutes; pages are 100 candles
    store = Store(tmp_path)
    with ReplayExchange(thin, speed=0) as exchange:
        result = store.ingest(exchange.base_url)
        trades_requests = exchange.request_counts["/api/v3/trades"]
    assert result.success
    assert_stored(store.table(), thin)
    metadata = materialization(result, "raw_candles")
    assert (metadata["complete"], metadata["retries"], metadata["missing_minutes"]) == (True, 0, 250)
    assert trades_requests == 0  # no page came back empty


def test_a_market_quiet_since_its_last_candle_ends_the_fetch_complete_without_retries(tmp_path, candles):
    quiet_since = candles["open_time"].iloc[-1] + pd.Timedelta(minutes=1)
    store = Store(tmp_path, retry_initial_seconds=0.5, retry_max_seconds=5)
    with ReplayExchange(candles, start=ms(quiet_since + pd.Timedelta(minutes=40)), speed=0) as exchange:
        result = store.ingest(exchange.base_url)
        requests = dict(exchange.request_counts)
    assert result.success
    assert_stored(store.table(), candles)
    metadata = materialization(result, "raw_candles")
    assert (metadata["complete"], metadata["retries"], metadata["stopped_at"]) == (True, 0, "none")
    # 11 pages, then one empty page, explained by the last trade: before the cursor.
    assert (requests["/api/v3/klines"], requests["/api/v3/trades"]) == (12, 1)


# --- failures: a clear message, and the store exactly as it was ---------------------------

FATAL = {
    "503 beyond the retries": (
        Fault("klines", "status:503", count=50),
        r"still failing after 4 attempts: ExchangeNotAvailable",
    ),
    "truncated beyond the retries": (
        Fault("klines", "truncate", count=50),
        r"still failing after 4 attempts: IncompleteResponse",
    ),
    "Retry-After beyond retry_max_seconds": (
        Fault("klines", "status:429", retry_after_s=120),
        r"Retry-After 120 s, longer than retry_max_seconds",
    ),
    "corrupt candle mid-backfill": (
        Fault("klines", "corrupt", after=3),
        r"klines page from .*: high below low at candle",
    ),
    "two different candles for one minute": (
        Fault("klines", "conflict", after=3),
        r"different candles share the open time",
    ),
}


@pytest.mark.parametrize("name", list(FATAL))
def test_a_fault_that_cannot_be_recovered_fails_the_step_and_changes_nothing_stored(tmp_path, candles, name):
    fault, message = FATAL[name]
    store = Store(tmp_path)
    with ReplayExchange(candles, speed=0, start=candles["open_time"].iloc[300]) as exchange:
        assert store.ingest(exchange.base_url).success  # 300 candles stored before the trouble
        before = store.snapshot()
        exchange.clock.set_now(ms(candles["open_time"].iloc[-1]) + 60_000)
        exchange.faults.add(fault)
        result = store.ingest(exchange.base_url)
    assert not result.success
    assert pd.Series([step_failure(result)]).str.contains(message).all(), step_failure(result)
    assert_same_snapshot(before, store.snapshot())
    assert len(before["candles"]) == 300


# --- end to end: `dagster asset materialize` through the launcher ---------------------------


@pytest.mark.e2e
def test_end_to_end_faults_passed_through_the_launcher_are_recovered_and_counted(tmp_path, candles):
    path = write_generic_csv(candles, tmp_path / "candles.csv")
    workspace = Workspace(tmp_path / "state")
    config = write_ingest_config(tmp_path)
    faults = ["--replay-arg=--fault=klines:503:2:3", "--replay-arg=--fault=klines:overlap=4:2:6"]
    workspace.materialize(path, selection="group:ingestion", replay=faults, INGEST_CONFIG=str(config))
    assert_stored(workspace.stored(), candles)
    stats = workspace.stats
    assert (stats["retries"], stats["retry_reasons"]) == (2, {"ExchangeNotAvailable": 2})
    assert (stats["duplicates_dropped"], stats["new_rows"], stats["complete"]) == (8, len(candles), True)


@pytest.mark.e2e
def test_end_to_end_an_exchange_down_for_good_fails_the_run_and_leaves_the_store_as_it_was(tmp_path, candles):
    path = write_generic_csv(candles, tmp_path / "candles.csv")
    workspace = Workspace(tmp_path / "state")
    config = write_ingest_config(tmp_path)
    half = ["--replay-start", candles["open_time"].iloc[500].isoformat(), "--replay-speed", "0"]
    workspace.materialize(path, selection="group:ingestion", replay=half, INGEST_CONFIG=str(config))
    before_stats = (workspace.feature_db.parent / "ingestion_stats.json").read_bytes()
    before = workspace.stored()
    command = [
        sys.executable,
        "-m",
        "btc_lifecycle.launch",
        "--candles",
        str(path),
        "--replay-arg=--fault=klines:503:100",
        "--history",
        "--",
        *materialize_command(None),
    ]
    failed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=workspace.env(INGEST_CONFIG=str(config)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode != 0
    assert "still failing after 4 attempts: ExchangeNotAvailable" in failed.stdout + failed.stderr
    pd.testing.assert_frame_equal(before, workspace.stored())
    assert len(before) == 500
    assert (workspace.feature_db.parent / "ingestion_stats.json").read_bytes() == before_stats
