"""The days `make run` back-fills (`launch --history`): from the exchange's first candle (or the
last backfill_days) to its today, asked the same way of a replay exchange and of Binance's API."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.launch import history_partition_range, with_history
from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG

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


def test_the_range_is_appended_to_the_command_and_noted_in_the_log(tmp_path, exchange):
    log = io.StringIO()
    command = with_history(["dg", "launch", "--assets", "*"], exchange.base_url, env_with(tmp_path), log, replay=True)
    assert command[-2:] == ["--partition-range", "2024-03-01...2024-03-05"]
    assert "history: --partition-range 2024-03-01...2024-03-05" in log.getvalue()
