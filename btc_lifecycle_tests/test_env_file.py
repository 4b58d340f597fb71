"""The .env file: settings a person keeps beside the checkout, under the real environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from btc_lifecycle.config import ConfigError, load_settings, read_env_file


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


def test_comments_blank_lines_export_and_quotes_are_understood(tmp_path):
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


@pytest.mark.parametrize("line", ["not a setting", "1KEY=value", "KEY='unclosed"])
def test_a_malformed_line_is_one_error_naming_the_file_and_the_line(tmp_path, line):
    path = env_file(tmp_path, f"# ok\nFEATURE_DB_PATH=/tmp/x.duckdb\n{line}\n")
    with pytest.raises(ConfigError, match=rf"^{path}, line 3: ") as caught:
        load_settings({"BTC_ENV_FILE": str(path)})
    assert "\n" not in str(caught.value)
    assert line not in str(caught.value)  # a malformed line may hold a secret: never echoed


def test_the_suite_never_reads_the_developers_env_file():
    import os

    assert not Path(os.environ["BTC_ENV_FILE"]).exists()


def test_the_committed_example_sets_nothing():
    example = Path(__file__).resolve().parents[1] / ".env.example"
    assert read_env_file(example) == {}
