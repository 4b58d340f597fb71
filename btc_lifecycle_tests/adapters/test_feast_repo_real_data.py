"""Both parities on the real March 2023 candles (BTC_SHARED_CANDLES): the 30,240 minutes of the
SVB crash, exported, materialized and served back by Feast exactly as the features table holds them."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from btc_lifecycle.adapters.feast_repo import (
    apply,
    export_days,
    feast_repo,
    materialize,
    online_parity,
    open_store,
    read_online,
    training_parity,
)
from btc_lifecycle.config import load_settings
from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, compute_features
from btc_lifecycle_tests.conftest import shared_candles_file

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def served_march(tmp_path_factory):
    """Module-scoped, so the month is exported and materialized once (conftest's
    ``shared_candles_path`` is per test)."""
    features = compute_features(read_candle_file(shared_candles_file()), "1m", max_fill_minutes=30)
    root = tmp_path_factory.mktemp("feast_march")
    repo = feast_repo(load_settings({"FEATURE_DB_PATH": str(root / "feature_store" / "bitcoin.duckdb")}))
    seconds = {}
    started = time.perf_counter()
    export_days(repo, features, pd.Timestamp("2023-03-01", tz="UTC"), pd.Timestamp("2023-03-22", tz="UTC"))
    seconds["export"] = time.perf_counter() - started
    store = open_store(repo)
    apply(store, repo)
    started = time.perf_counter()
    materialized = materialize(store, repo)
    seconds["materialize"] = time.perf_counter() - started
    return features, repo, store, materialized, seconds


def test_feasts_training_set_for_the_real_month_equals_the_features_table(served_march):
    features, repo, store, _, seconds = served_march
    assert len(features) == 30_240
    started = time.perf_counter()
    outcome = training_parity(store, repo.series, features)
    seconds["training_parity"] = time.perf_counter() - started
    print(f"\nFeast on 30,240 real candles, seconds: {seconds}")
    assert outcome.passed, outcome.description
    assert outcome.metadata["candles_compared"] == int(features["trainable"].sum()) > 30_000


def test_the_real_months_last_candle_is_online_and_equals_the_offline_one(served_march):
    features, repo, store, materialized, _ = served_march
    assert materialized.end == pd.Timestamp("2023-03-21 23:59", tz="UTC")
    assert read_online(store, repo.series).event_time == materialized.end
    outcome = online_parity(store, repo, features.tail(5))
    assert outcome.passed, outcome.description
    assert len(read_online(store, repo.series).values) == len(FEATURE_COLUMNS)
