"""The configuration is read once, validated, and every problem is one line naming the file (or
environment variable) and the field; the .env file sits under the real environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from btc_lifecycle.config import ConfigError, load_settings, read_env_file
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
        ("exchange", "Kraken"),
        ("exchange", "binance us"),
        ("more_markets", {"exchange": "binanceus"}),
        ("more_markets", [{"exchange": "binanceus", "symbol": "BTCUSD", "interval": "1m"}]),
        ("more_markets", [{"exchange": "binanceus", "symbol": "BTC/USD"}]),
        ("more_markets", [{"exchange": "binance", "symbol": "BTC/USDT", "interval": "1m"}]),
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
        ("features", {"horizon_minutes": 0}),
        ("costs", {"taker_fee_bps": -1}),
        ("costs", {"fills": "limit"}),
        ("model", {"gate_metric": "accuracy"}),
    ],
)
def test_a_wrong_value_is_one_line_naming_its_file_and_field(write_config, field, value):
    path = write_config(**{field: value})
    with pytest.raises(ConfigError, match=rf"^{path}: .*'{field}") as caught:
        settings_for(path)
    assert "\n" not in str(caught.value)  # pydantic's own report never reaches the user


def test_the_gap_policy_is_read_from_the_features_section(write_config):
    assert load_settings({}).features.max_fill_minutes == 30  # the shipped default
    assert settings_for(write_config(features={"max_fill_minutes": 0})).features.max_fill_minutes == 0
    assert settings_for(write_config(features=REMOVE)).features.max_fill_minutes == 30


def test_costs_horizon_and_gate_default_to_binance_taker_fees_the_next_minute_and_log_loss(write_config):
    settings = settings_for(write_config(costs=REMOVE))
    assert (settings.costs.taker_fee_bps, settings.costs.slippage_bps, settings.costs.fills) == (10.0, 0.0, "taker")
    assert (settings.features.horizon_minutes, settings.horizon_candles) == (None, 1)  # the next candle
    assert settings_for(write_config(interval="3m")).horizon_candles == 1
    assert settings.model.gate_metric == "log_loss"
    hourly = settings_for(write_config(interval="1h", features={"horizon_minutes": 120}))
    assert hourly.horizon_candles == 2


def test_a_horizon_that_is_not_whole_candles_is_named(write_config):
    path = write_config(interval="1h", features={"horizon_minutes": 90})
    with pytest.raises(ConfigError, match=rf"^{path}: field 'features.horizon_minutes' must be a whole number of 1h"):
        settings_for(path)


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


def test_settings_are_frozen_and_hashable_as_a_dagster_resource_value(write_config):
    settings = settings_for(write_config())
    assert hash(settings) == hash(settings_for(write_config()))
    with pytest.raises(ValueError):
        settings.ingest.limit = 5


# The .env file: settings a person keeps beside the checkout, under the real environment.


def env_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def test_a_feature_db_path_in_the_env_file_moves_the_store(tmp_path):
    path = env_file(tmp_path, f"# where the store lives\nFEATURE_DB_PATH={tmp_path / 'store.duckdb'}\n")
    assert load_settings({"BTC_ENV_FILE": str(path)}).feature_db_path == tmp_path / "store.duckdb"


def test_the_real_environment_wins_over_the_env_file(tmp_path):
    path = env_file(tmp_path, f"FEATURE_DB_PATH={tmp_path / 'from_file.duckdb'}\n")
    settings = load_settings({"BTC_ENV_FILE": str(path), "FEATURE_DB_PATH": str(tmp_path / "from_env.duckdb")})
    assert settings.feature_db_path == tmp_path / "from_env.duckdb"


def test_comments_blank_lines_export_and_quotes_are_understood_in_the_env_file(tmp_path):
    path = env_file(
        tmp_path,
        (
            "# a comment\n\n"
            "export BINANCE_API_URL=http://127.0.0.1:8080   # trailing comment\n"
            'MLFLOW_UI_URL="http://127.0.0.1:5001"\n'
            "BTC_REPORT_DIR='/reports with spaces'\n"
            "INGEST_BACKFILL_DAYS=\n"
        ),
    )
    assert read_env_file(path) == {
        "BINANCE_API_URL": "http://127.0.0.1:8080",
        "MLFLOW_UI_URL": "http://127.0.0.1:5001",
        "BTC_REPORT_DIR": "/reports with spaces",
        "INGEST_BACKFILL_DAYS": "",
    }


def test_a_missing_env_file_is_an_empty_one(tmp_path):
    assert read_env_file(tmp_path / "absent.env") == {}


@pytest.mark.parametrize("line", ["not a setting", "1KEY=value", "KEY='unclosed", "A_KEY_WITHOUT_VALUE"])
def test_a_malformed_env_line_is_one_error_naming_the_file_and_the_line(tmp_path, line):
    path = env_file(tmp_path, f"# ok\nFEATURE_DB_PATH=/tmp/x.duckdb\n{line}\n")
    with pytest.raises(ConfigError, match=rf"^{path}, line 3: ") as caught:
        load_settings({"BTC_ENV_FILE": str(path)})
    assert "\n" not in str(caught.value)
    assert line not in str(caught.value)  # a malformed line may hold a secret: never echoed


def test_the_suite_never_reads_the_developers_env_file():
    assert not Path(os.environ["BTC_ENV_FILE"]).exists()


def test_the_committed_env_example_sets_nothing():
    example = Path(__file__).resolve().parents[1] / ".env.example"
    assert read_env_file(example) == {}
