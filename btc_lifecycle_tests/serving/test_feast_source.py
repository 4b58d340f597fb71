"""The service's features from the project's real Feast repository: before the first run it says
what to run, a repository applied after it started is found without a restart, and a broken online
table is an unavailable store with its reason, never a crash.

One scenario, on a repository in a temporary folder, recorded by the fixture: a source opened
before there is a registry, one opened while the registry holds no feature view, then the
repository applied and materialized, then the online table dropped."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import pandas as pd
import pytest

from btc_lifecycle.adapters.feast_repo import (
    FEATURE_VIEW,
    apply,
    export_days,
    feast_repo,
    materialize,
    open_store,
    repository_objects,
)
from btc_lifecycle.config import load_settings
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, compute_features
from btc_lifecycle.serving.feast_source import WHAT_TO_RUN, FeastFeatureSource
from btc_lifecycle.serving.online_features import OnlineFeatures, OnlineStoreUnavailable


def unavailable(source: FeastFeatureSource, symbol: str = "BTC/USDT") -> str:
    with pytest.raises(OnlineStoreUnavailable) as failure:
        source.latest(symbol, "1m")
    return str(failure.value)


@dataclass
class Scenario:
    features: pd.DataFrame
    registry: str
    online_path: str
    describe: str
    before_registry: str
    before_view: str
    opened_late: OnlineFeatures | None
    refreshed: OnlineFeatures | None
    fresh: OnlineFeatures | None
    other_market: OnlineFeatures | None
    table_dropped: str


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    root = tmp_path_factory.mktemp("feast_source")
    settings = load_settings({"FEATURE_DB_PATH": str(root / "feature_store" / "bitcoin.duckdb")})
    features = compute_features(synthetic_candles(1_600, seed=31), "1m", max_fill_minutes=30)
    repo = feast_repo(settings)

    before = FeastFeatureSource(settings)  # a service started before the first `make run`
    before_registry = unavailable(before)

    times = features["open_time"]
    export_days(repo, features, times.min().floor("D"), times.max().floor("D") + pd.Timedelta(days=1))
    store = open_store(repo)
    entity, *_ = repository_objects(repo)
    store.apply([entity])  # a registry, without the feature view yet
    early = FeastFeatureSource(settings)
    before_view = unavailable(early)

    apply(store, repo)
    materialize(store, repo)
    opened_late, refreshed = before.latest("BTC/USDT", "1m"), early.latest("BTC/USDT", "1m")
    fresh = FeastFeatureSource(settings)
    newest, other = fresh.latest("BTC/USDT", "1m"), fresh.latest("ETH/USDT", "1m")

    with sqlite3.connect(repo.online_store["path"]) as conn:
        conn.execute(f"DROP TABLE {repo.project}_{FEATURE_VIEW}")
    dropped = unavailable(fresh)
    return Scenario(
        features,
        str(repo.registry_path),
        repo.online_store["path"],
        fresh.describe(),
        before_registry,
        before_view,
        opened_late,
        refreshed,
        newest,
        other,
        dropped,
    )


def newest_candle(features: pd.DataFrame) -> OnlineFeatures:
    last = features.iloc[-1]
    return OnlineFeatures(last["open_time"].to_pydatetime(), {name: float(last[name]) for name in FEATURE_COLUMNS})


def test_before_the_first_run_a_read_names_the_missing_registry_and_what_to_run(scenario):
    assert scenario.before_registry == f"no Feast registry at {scenario.registry}: {WHAT_TO_RUN}"


def test_a_registry_without_the_feature_view_is_unavailable_saying_what_to_run(scenario):
    assert scenario.before_view == f"the Feast registry {scenario.registry} has no feature view yet: {WHAT_TO_RUN}"


def test_the_newest_materialized_candle_is_read_with_every_feature_in_order(scenario):
    expected = newest_candle(scenario.features)
    assert scenario.fresh == expected
    assert list(scenario.fresh.values) == list(FEATURE_COLUMNS)
    assert scenario.fresh.open_time.tzinfo is not None and scenario.fresh.open_time.utcoffset().total_seconds() == 0


def test_a_source_opened_before_the_registry_existed_reads_it_once_it_does(scenario):
    assert scenario.opened_late == newest_candle(scenario.features)


def test_a_source_that_cached_a_registry_without_the_view_refreshes_it(scenario):
    assert scenario.refreshed == newest_candle(scenario.features)


def test_a_market_with_nothing_online_is_none(scenario):
    assert scenario.other_market is None


def test_a_broken_online_table_is_unavailable_with_the_databases_reason(scenario):
    assert scenario.table_dropped.startswith("OperationalError: no such table")


def test_describe_names_the_online_store_and_the_registry(scenario):
    assert scenario.describe == (f"feast sqlite online store ({scenario.online_path}), registry {scenario.registry}")
    assert scenario.online_path.endswith("/feature_store/feast/online_store.db")
