"""The Feast repository is generated from the project's definitions and configured by its settings:
the feature view follows FEATURE_COLUMNS, the online store is a configuration change, and the
offline source is one Parquet file per UTC day."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from btc_lifecycle.adapters.feast_repo import (
    FEATURE_VIEW,
    export_days,
    exported_days,
    feast_repo,
    market_key,
    render_feature_store_yaml,
    repository_objects,
)
from btc_lifecycle.config import ConfigError, load_settings
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, compute_features

REPO_ROOT = Path(__file__).resolve().parents[2]


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
