"""The configuration is read once, validated, and every problem names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from btc_lifecycle.config import ConfigError, load_settings
from btc_lifecycle_tests.conftest import REMOVE


def settings_for(path: Path, **env):
    return load_settings({"INGEST_CONFIG": str(path), **env})


def test_the_shipped_config_is_valid():
    settings = load_settings({})
    assert settings.ingest.symbol == "BTC/USDT"
    assert settings.ingest.limit <= 1000
    assert settings.feature_db_path.name == "bitcoin.duckdb"


@pytest.mark.parametrize("field", ["exchange", "symbol", "interval", "limit", "table", "backfill_days"])
def test_a_missing_required_field_is_named(write_config, field):
    path = write_config(**{field: REMOVE})
    with pytest.raises(ConfigError, match=rf"{path}.*'{field}' is missing"):
        settings_for(path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("exchange", "kraken"),
        ("exchange", 3),
        ("symbol", "BTCUSDT"),
        ("symbol", ["BTC/USDT"]),
        ("interval", "7m"),
        ("limit", 0),
        ("limit", 1001),
        ("limit", "1000"),
        ("limit", True),
        ("table", "candles; DROP TABLE candles"),
        ("table", "1candles"),
        ("backfill_days", 0),
        ("backfill_days", "forever"),
        ("request_timeout_seconds", 0),
        ("max_retries", -1),
        ("max_retries", 2.5),
        ("retry_initial_seconds", "fast"),
        ("retry_max_seconds", 1000),
        ("report", {"keep_last": 0}),
        ("report", {"keep": 3}),
        ("model", {"promotion_margin": -0.1}),
        ("model", {"n_folds": 0}),
        ("model", {"heldout_fraction": "a lot"}),
        ("model", {"name": "bad name!"}),
        ("features", {"max_fill_minutes": -1}),
        ("features", {"max_fill_minutes": 2.5}),
        ("features", {"max_fill_minutes": True}),
        ("features", {"max_fill": 30}),
    ],
)
def test_a_wrong_value_is_named_with_its_file_and_field(write_config, field, value):
    path = write_config(**{field: value})
    with pytest.raises(ConfigError, match=rf"{path}.*'{field}"):
        settings_for(path)


def test_the_gap_policy_is_read_from_the_features_section(write_config):
    assert load_settings({}).features.max_fill_minutes == 30  # the shipped default
    assert settings_for(write_config(features={"max_fill_minutes": 0})).features.max_fill_minutes == 0
    assert settings_for(write_config(features=REMOVE)).features.max_fill_minutes == 30


def test_an_unknown_field_is_refused(write_config):
    path = write_config(symbl="BTC/USDT")
    with pytest.raises(ConfigError, match="unknown field 'symbl'"):
        settings_for(path)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "exchange": "binance",\n  "symbol": \n}')
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON at line 4"):
        settings_for(path)


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.json: config file not found"):
        settings_for(tmp_path / "nowhere.json")


def test_backfill_all_means_everything_the_exchange_has(write_config):
    assert settings_for(write_config(backfill_days="all")).ingest.backfill_days is None


def test_environment_overrides_paths_and_backfill(write_config, tmp_path):
    settings = settings_for(
        write_config(),
        FEATURE_DB_PATH=str(tmp_path / "store.duckdb"),
        BTC_REPORT_DIR=str(tmp_path / "reports"),
        MLFLOW_TRACKING_URI="sqlite:///tmp/x.db",
        BINANCE_API_URL="http://127.0.0.1:9999/",
        INGEST_BACKFILL_DAYS="all",
    )
    assert settings.feature_db_path == tmp_path / "store.duckdb"
    assert settings.report_dir == tmp_path / "reports"
    assert settings.mlflow_tracking_uri == "sqlite:///tmp/x.db"
    assert settings.mlflow_registry_uri == "sqlite:///tmp/x.db"
    assert settings.binance_api_url == "http://127.0.0.1:9999"
    assert settings.ingest.backfill_days is None


def test_default_mlflow_store_is_sqlite_under_data(write_config):
    settings = settings_for(write_config())
    assert settings.mlflow_tracking_uri.startswith("sqlite:///")
    assert settings.mlflow_tracking_uri.endswith("data/mlflow/mlflow.db")


@pytest.mark.parametrize(("name", "value"), [("INGEST_BACKFILL_DAYS", "-3"), ("BINANCE_API_URL", "ftp://x")])
def test_a_bad_environment_override_is_named(write_config, name, value):
    with pytest.raises(ConfigError, match=name):
        settings_for(write_config(), **{name: value})
