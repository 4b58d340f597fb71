"""raw_candles with Binance's archives, as Dagster runs it: the metadata says which days came from
which archive, a republished archive is replaced and named, and a bad one fails the run by name
with the store untouched."""

from __future__ import annotations

import json
import urllib.request

import pandas as pd
import pytest

from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle_tests.e2e.reliability.conftest import Store

DAYS = "2024-01-01...2024-01-05"  # the replay clock stops at the end of 5 January


@pytest.fixture(scope="module")
def five_days() -> pd.DataFrame:
    return synthetic_candles(5 * 1440, start="2024-01-01T00:00:00Z", seed=17)


def archive_fault(exchange: ReplayExchange, *specs: str) -> None:
    body = json.dumps({"clear": True, "add": list(specs)}).encode()
    request = urllib.request.Request(f"{exchange.base_url}/replay/archives", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass


def raw_metadata(result) -> dict:
    materializations = result.asset_materializations_for_node("raw_candles")
    return {name: value.value for name, value in materializations[-1].metadata.items()}


def test_days_before_yesterday_come_from_archives_and_say_which(tmp_path, five_days):
    store = Store(tmp_path, limit=1000)
    with ReplayExchange(five_days, speed=0) as exchange:
        result = store.ingest(exchange.base_url, DAYS)
    assert result.success
    metadata = raw_metadata(result)
    # The exchange's today is 6 January (its clock stands at the end of the 5th): archives for
    # 1-4 January, ccxt for the 5th (yesterday).
    assert metadata["archived_days"] == 4
    assert metadata["pages"] == 2  # 1,440 candles of the 5th at 1,000 a page
    assert [f"BTCUSDT-1m-2024-01-0{day}.zip" in metadata["archives"] for day in range(1, 6)] == [True] * 4 + [False]
    assert metadata["revised_archives"] == [] and metadata["archive_fallbacks"] == []
    assert len(store.table()) == len(five_days)


def ingest_twice(tmp_path, candles: pd.DataFrame, fault: str):
    """The days ingested, then again once ``fault`` holds: the store before, and the second run."""
    store = Store(tmp_path)
    with ReplayExchange(candles, speed=0) as exchange:
        store.ingest(exchange.base_url, DAYS)
        before = store.table()
        archive_fault(exchange, fault)
        return store, before, store.ingest(exchange.base_url, DAYS)


def test_a_republished_archive_replaces_its_day_and_the_metadata_names_it(tmp_path, five_days):
    store, before, result = ingest_twice(tmp_path, five_days, "revise@2024-01-02")
    assert result.success
    assert raw_metadata(result)["revised_archives"] == ["BTCUSDT-1m-2024-01-02.zip"]
    after = store.table()
    on_the_2nd = after["open_time"].dt.strftime("%Y-%m-%d") == "2024-01-02"
    assert (after.loc[on_the_2nd, "volume"] > before.loc[on_the_2nd, "volume"]).all()
    pd.testing.assert_frame_equal(after.loc[~on_the_2nd], before.loc[~on_the_2nd])


def test_a_checksum_mismatch_fails_the_run_by_name_and_changes_nothing(tmp_path, five_days):
    store, before, result = ingest_twice(tmp_path, five_days, "checksum@2024-01-03")
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "BTCUSDT-1m-2024-01-03.zip: checksum mismatch" in failure.description
    assert "Nothing stored was changed" in failure.description
    pd.testing.assert_frame_equal(store.table(), before)
