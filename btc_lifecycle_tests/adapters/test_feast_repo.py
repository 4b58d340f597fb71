"""The Feast repository: generated from the project's definitions and configured by its settings
(the feature view follows FEATURE_COLUMNS, the online store is a configuration change, the offline
source is one Parquet file per UTC day), and serving the features table value for value, offline
for training and online for scoring, on synthetic candles and on the real March 2023 month."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from btc_lifecycle.adapters.feast_repo import (
    FEATURE_VIEW,
    apply,
    export_days,
    exported_days,
    feast_repo,
    historical_features,
    last_exported_open_time,
    market_key,
    materialize,
    online_parity,
    open_store,
    read_online,
    render_feature_store_yaml,
    repository_objects,
    training_parity,
)
from btc_lifecycle.config import ConfigError, load_settings
from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, compute_features
from btc_lifecycle_tests.conftest import shared_candles_file

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_FILL = 30


def settings_in(folder: Path, config: Path | None = None, **env: str):
    """Settings whose stores all live under ``folder``."""
    return load_settings(
        {
            **({"INGEST_CONFIG": str(config)} if config else {}),
            "FEATURE_DB_PATH": str(folder / "feature_store" / "bitcoin.duckdb"),
            **env,
        }
    )


def view_features(repo) -> list[str]:
    *_, view = repository_objects(repo)
    return [feature.name for feature in view.features]


@pytest.fixture(scope="module")
def day_and_a_half() -> pd.DataFrame:
    """Feature rows over a day and a half: two UTC days."""
    candles = synthetic_candles(2_160, seed=5)
    return compute_features(candles, "1m", max_fill_minutes=30)


def test_the_feature_view_declares_feature_columns_in_order(tmp_path):
    repo = feast_repo(settings_in(tmp_path))
    assert view_features(repo) == list(FEATURE_COLUMNS)
    entity, source, view = repository_objects(repo)
    assert view.name == FEATURE_VIEW
    assert entity.join_key == "market"
    assert source.path == str(
        tmp_path / "feature_store" / "feast" / "offline" / "candles_features" / "day=*" / "part.parquet"
    )


def test_adding_a_feature_to_feature_columns_changes_the_feature_view(tmp_path):
    grown = (*FEATURE_COLUMNS, "log_return_240")
    assert view_features(feast_repo(settings_in(tmp_path), grown)) == list(grown)


def test_the_market_is_one_key_of_symbol_and_interval():
    assert market_key(CandleSeries(table="candles", symbol="BTC/USDT", interval="1m")) == "BTC/USDT@1m"


def test_the_defaults_are_a_file_registry_and_a_sqlite_online_store_beside_the_feature_store(tmp_path):
    config = yaml.safe_load(render_feature_store_yaml(feast_repo(settings_in(tmp_path))))
    feast_dir = tmp_path / "feature_store" / "feast"
    assert config["registry"] == {"registry_type": "file", "path": str(feast_dir / "registry.db")}
    assert config["online_store"] == {"type": "sqlite", "path": str(feast_dir / "online_store.db")}
    assert config["offline_store"] == {"type": "duckdb"}
    assert config["project"] == "btc_lifecycle"


def test_the_repository_folder_can_be_moved_by_the_environment(tmp_path):
    repo = feast_repo(settings_in(tmp_path, FEAST_REPO_DIR=str(tmp_path / "elsewhere")))
    assert repo.registry_path == tmp_path / "elsewhere" / "registry.db"


def test_moving_the_online_store_to_postgres_is_a_configuration_change(tmp_path):
    from feast.infra.utils.postgres.postgres_config import PostgreSQLConfig

    settings = settings_in(
        tmp_path,
        FEAST_ONLINE_STORE="postgres",
        FEAST_ONLINE_STORE_URL="postgresql://feast:s%40cret@127.0.0.1:5433/features",
    )
    section = yaml.safe_load(render_feature_store_yaml(feast_repo(settings)))["online_store"]
    assert section["type"] == "postgres"
    # Feast's own model of the section accepts every other field as rendered.
    parsed = PostgreSQLConfig(**{key: value for key, value in section.items() if key != "type"})
    assert (parsed.host, parsed.port, parsed.database, parsed.user, parsed.password) == (
        "127.0.0.1",
        5433,
        "features",
        "feast",
        "s@cret",
    )
    assert parsed.sslmode == "prefer"  # what the URL means to psql
    assert "s%40cret" not in repr(settings) and "s@cret" not in repr(settings)


def test_moving_the_online_store_to_redis_is_a_configuration_change(tmp_path, write_config):
    config = write_config(feast={"online_store": "redis"})
    settings = settings_in(tmp_path, config, FEAST_ONLINE_STORE_URL="redis://:pw@cache.local:6380/2")
    section = yaml.safe_load(render_feature_store_yaml(feast_repo(settings)))["online_store"]
    assert section == {"type": "redis", "redis_type": "redis", "connection_string": "cache.local:6380,db=2,password=pw"}


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"online_store": "mysql"}, "feast.online_store"),
        ({"ttl_minutes": 0}, "feast.ttl_minutes"),
        ({"ttl_minutes": "5"}, "feast.ttl_minutes"),
        ({"project": "btc-lifecycle"}, "feast.project"),
        ({"online": "sqlite"}, "feast.online"),
    ],
)
def test_a_bad_feast_setting_names_the_field(tmp_path, write_config, section, field):
    with pytest.raises(ConfigError, match=rf"'{field}'"):
        settings_in(tmp_path, write_config(feast=section))


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FEAST_ONLINE_STORE": "cassandra"}, "FEAST_ONLINE_STORE"),
        ({"FEAST_ONLINE_STORE": "postgres"}, "FEAST_ONLINE_STORE_URL is required"),
        ({"FEAST_ONLINE_STORE": "postgres", "FEAST_ONLINE_STORE_URL": "redis://h:1"}, "FEAST_ONLINE_STORE_URL"),
        ({"FEAST_ONLINE_STORE": "postgres", "FEAST_ONLINE_STORE_URL": "postgresql://u:p@h:5432"}, "name the database"),
        ({"FEAST_ONLINE_STORE": "redis", "FEAST_ONLINE_STORE_URL": "redis://:p@h:port"}, "FEAST_ONLINE_STORE_URL"),
        ({"FEAST_ONLINE_STORE_URL": "postgresql://u:p@h/db"}, "file path for feast.online_store 'sqlite'"),
    ],
)
def test_a_bad_online_store_environment_names_the_variable_without_echoing_it(tmp_path, env, named):
    with pytest.raises(ConfigError, match=named) as raised:
        settings_in(tmp_path, **env)
    assert "environment" in str(raised.value)
    assert ":p@" not in str(raised.value)  # a password stays out of the message


def test_each_utc_day_is_one_parquet_file_holding_that_days_rows(tmp_path, day_and_a_half):
    repo = feast_repo(settings_in(tmp_path))
    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC")
    assert export_days(repo, day_and_a_half, start, end) == len(day_and_a_half)
    assert exported_days(repo) == ["2024-01-01", "2024-01-02"]
    second = pq.read_table(repo.day_file(pd.Timestamp("2024-01-02"))).to_pandas()
    assert len(second) == 720
    assert second["open_time"].min() == pd.Timestamp("2024-01-02", tz="UTC")
    assert str(second["open_time"].dtype) == "datetime64[us, UTC]"
    assert set(second["market"]) == {"BTC/USDT@1m"}
    assert [name for name in second.columns if name in FEATURE_COLUMNS] == list(FEATURE_COLUMNS)


def test_exporting_a_day_again_replaces_it_and_leaves_no_temporary_file(tmp_path, day_and_a_half):
    repo = feast_repo(settings_in(tmp_path))
    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC")
    export_days(repo, day_and_a_half, start, end)
    second_day = start + pd.Timedelta(days=1)
    shorter = day_and_a_half.loc[day_and_a_half["open_time"] >= second_day].head(100)
    assert export_days(repo, shorter, second_day, end) == 100
    assert len(pq.read_table(repo.day_file(second_day))) == 100
    assert len(pq.read_table(repo.day_file(start))) == 1440  # the other day untouched
    assert (
        sorted(p.name for p in repo.offline_dir.rglob("*"))
        == ["day=2024-01-01", "day=2024-01-02"] + ["part.parquet"] * 2
    )


def test_a_day_exported_without_rows_loses_its_file(tmp_path, day_and_a_half):
    repo = feast_repo(settings_in(tmp_path))
    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC")
    export_days(repo, day_and_a_half, start, end)
    assert export_days(repo, day_and_a_half.iloc[:0], start + pd.Timedelta(days=1), end) == 0
    assert exported_days(repo) == ["2024-01-01"]


def test_rows_outside_the_days_exported_are_refused(tmp_path, day_and_a_half):
    repo = feast_repo(settings_in(tmp_path))
    with pytest.raises(ValueError, match="outside the days"):
        export_days(repo, day_and_a_half, pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC"))


def test_loading_the_code_location_does_not_import_feast():
    code = (
        "import sys, json, btc_lifecycle.definitions; "
        "print(json.dumps([m for m in ('feast', 'ibis') if m in sys.modules]))"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


# Parity: what Feast serves is the features table, value for value: offline for training (point in
# time), online for scoring (the newest closed candle), and materialization never skips a late candle.


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


# Real data (BTC_SHARED_CANDLES): both parities on the 30,240 minutes of March 2023 (the SVB crash),
# exported, materialized and served back by Feast exactly as the features table holds them.


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


@pytest.mark.real_data
def test_feasts_training_set_for_the_real_month_equals_the_features_table(served_march):
    features, repo, store, _, seconds = served_march
    assert len(features) == 30_240
    started = time.perf_counter()
    outcome = training_parity(store, repo.series, features)
    seconds["training_parity"] = time.perf_counter() - started
    print(f"\nFeast on 30,240 real candles, seconds: {seconds}")
    assert outcome.passed, outcome.description
    assert outcome.metadata["candles_compared"] == int(features["trainable"].sum()) > 30_000


@pytest.mark.real_data
def test_the_real_months_last_candle_is_online_and_equals_the_offline_one(served_march):
    features, repo, store, materialized, _ = served_march
    assert materialized.end == pd.Timestamp("2023-03-21 23:59", tz="UTC")
    assert read_online(store, repo.series).event_time == materialized.end
    outcome = online_parity(store, repo, features.tail(5))
    assert outcome.passed, outcome.description
    assert len(read_online(store, repo.series).values) == len(FEATURE_COLUMNS)
