"""What Feast serves is the features table, value for value: offline for training (point in time),
online for scoring (the newest closed candle), and materialization never skips a late candle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.adapters.feast_repo import (
    FEATURE_VIEW,
    apply,
    export_days,
    feast_repo,
    historical_features,
    last_exported_open_time,
    materialize,
    online_parity,
    open_store,
    read_online,
    training_parity,
)
from btc_lifecycle.config import load_settings
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, compute_features

MAX_FILL = 30


def served_repository(root: Path, features: pd.DataFrame, columns=FEATURE_COLUMNS):
    """A Feast repository under ``root`` with ``features`` exported and applied."""
    settings = load_settings({"FEATURE_DB_PATH": str(root / "feature_store" / "bitcoin.duckdb")})
    repo = feast_repo(settings, columns)
    times = features["open_time"]
    export_days(repo, features, times.min().floor("D"), times.max().floor("D") + pd.Timedelta(days=1))
    store = open_store(repo)
    apply(store, repo)
    return repo, store


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    """Two days of features with a short gap (filled) and an outage (left open, NaN windows after)."""
    candles = synthetic_candles(2_900, seed=41)
    candles = without_minutes(candles, [*range(700, 710), *range(1_500, 1_590)])
    return compute_features(candles, "1m", max_fill_minutes=MAX_FILL)


@pytest.fixture(scope="module")
def served(tmp_path_factory, features):
    repo, store = served_repository(tmp_path_factory.mktemp("feast"), features)
    materialize(store, repo)
    return repo, store


def test_feasts_training_set_equals_the_features_table_value_for_value(served, features):
    repo, store = served
    outcome = training_parity(store, repo.series, features)
    assert outcome.passed, outcome.description
    assert outcome.metadata["candles_compared"] == int(features["trainable"].sum())
    assert outcome.metadata["columns_compared"] == len(FEATURE_COLUMNS) + 1  # the target too


def test_rows_with_missing_features_come_back_missing_not_filled_from_an_earlier_candle(served, features):
    repo, store = served
    incomplete = features.loc[features[list(FEATURE_COLUMNS)].isna().any(axis=1), ["open_time"]]
    assert len(incomplete) > 100  # the history's start and the hour after the outage
    served_rows = historical_features(store, repo.series, incomplete)
    expected = features.set_index("open_time").loc[incomplete["open_time"], list(FEATURE_COLUMNS)].to_numpy()
    np.testing.assert_array_equal(served_rows[list(FEATURE_COLUMNS)].to_numpy(dtype="float64"), expected)


def test_historical_rows_come_back_in_the_requests_order_and_nanosecond_times_are_accepted(served, features):
    repo, store = served
    picked = features.sample(50, random_state=3)[["open_time", "target"]]
    request = picked.assign(open_time=picked["open_time"] + pd.Timedelta(nanoseconds=1))  # µs-rounded away
    rows = historical_features(store, repo.series, request)
    assert list(rows.columns) == ["open_time", "target", *FEATURE_COLUMNS]
    assert rows["open_time"].tolist() == request["open_time"].tolist()
    expected = features.set_index("open_time").loc[picked["open_time"], list(FEATURE_COLUMNS)].to_numpy()
    np.testing.assert_array_equal(rows[list(FEATURE_COLUMNS)].to_numpy(dtype="float64"), expected)


def test_the_online_candle_is_the_newest_closed_one_and_equals_the_offline_one(served, features):
    repo, store = served
    online = read_online(store, repo.series)
    newest = features.iloc[-1]
    assert online.event_time == newest["open_time"] == last_exported_open_time(repo)
    assert list(online.values) == list(FEATURE_COLUMNS)  # the request's order, not Feast's
    assert online.values == {name: float(newest[name]) for name in FEATURE_COLUMNS}
    outcome = online_parity(store, repo, features)
    assert outcome.passed, outcome.description


def test_a_market_with_nothing_online_reads_as_none(served):
    _, store = served
    assert read_online(store, CandleSeries(table="candles", symbol="ETH/USDT", interval="1m")) is None


def test_a_training_mismatch_fails_naming_the_candle_the_feature_and_both_values(served, features):
    repo, store = served
    changed = features.copy()
    at = changed.index[changed["trainable"]][100]
    changed.loc[at, "rsi_14"] += 1e-9
    outcome = training_parity(store, repo.series, changed)
    assert not outcome.passed
    assert outcome.metadata["candles_differing"] == 1
    assert outcome.metadata["differences_by_feature"] == {"rsi_14": 1}
    assert changed.loc[at, "open_time"].isoformat() in outcome.description
    assert "rsi_14" in outcome.description and repr(float(changed.loc[at, "rsi_14"])) in outcome.description


def test_an_online_mismatch_fails_naming_the_feature(served, features):
    repo, store = served
    changed = features.copy()
    changed.loc[changed.index[-1], "volatility_60"] *= 2
    outcome = online_parity(store, repo, changed)
    assert not outcome.passed
    assert "volatility_60" in outcome.description
    assert features["open_time"].iloc[-1].isoformat() in outcome.description


def test_an_online_store_behind_the_offline_one_fails(tmp_path, features):
    repo, store = served_repository(tmp_path, features.iloc[:-5])
    materialize(store, repo)
    export_days(repo, features, features["open_time"].min().floor("D"), features["open_time"].max().ceil("D"))
    outcome = online_parity(store, repo, features)
    assert not outcome.passed
    assert "lags" in outcome.description
    assert outcome.metadata["online_open_time"] == features["open_time"].iloc[-6].isoformat()


def test_a_candle_that_closes_late_is_materialized_by_the_next_call(tmp_path, features):
    """At 12:01:30 the 12:01 candle is still forming: the call materializes up to 12:00. The 12:01
    candle closes, but is stored only after the next wall-clock minute: the next call still reads it,
    because each window starts where the last one ended in event time, not in wall-clock time."""
    closed, late = features.iloc[:-1], features.iloc[-1]
    repo, store = served_repository(tmp_path, closed)
    first = materialize(store, repo)
    assert read_online(store, repo.series).event_time == first.end == closed["open_time"].iloc[-1]

    day = late["open_time"].floor("D")
    export_days(repo, features.loc[features["open_time"] >= day], day, day + pd.Timedelta(days=1))
    second = materialize(store, repo)
    assert second.start == first.end  # incremental: from the previous end, not one ttl back
    assert (second.end, second.candles_read, second.online_rows) == (late["open_time"], 2, 1)
    assert read_online(store, repo.series).event_time == late["open_time"]
    assert online_parity(store, repo, features).passed


def test_ending_feasts_incremental_window_at_the_wall_clock_would_lose_that_candle(tmp_path, features):
    """Why ``materialize`` ends at the newest exported candle: Feast's own example ends at now()."""
    closed, late = features.iloc[:-1], features.iloc[-1]
    repo, store = served_repository(tmp_path, closed)
    forming_since = late["open_time"]
    store.materialize(
        (forming_since - repo.ttl).to_pydatetime(),
        (forming_since + pd.Timedelta(seconds=30)).to_pydatetime(),  # the wall clock at the first call
        feature_views=[FEATURE_VIEW],
    )
    day = late["open_time"].floor("D")
    export_days(repo, features.loc[features["open_time"] >= day], day, day + pd.Timedelta(days=1))
    store.materialize_incremental(end_date=(forming_since + pd.Timedelta(minutes=2, seconds=30)).to_pydatetime())
    assert read_online(store, repo.series).event_time == closed["open_time"].iloc[-1]  # the late candle is lost


def test_applying_a_grown_feature_list_changes_the_registered_view(tmp_path, features):
    repo, store = served_repository(tmp_path, features)
    grown_repo = feast_repo(
        load_settings({"FEATURE_DB_PATH": str(repo.repo_dir.parent / "bitcoin.duckdb")}),
        (*FEATURE_COLUMNS, "log_return_240"),
    )
    apply(store, grown_repo)
    store.refresh_registry()
    names = [feature.name for feature in store.get_feature_view(FEATURE_VIEW).features]
    assert names == [*FEATURE_COLUMNS, "log_return_240"]
