"""Online predictions reach the realized-performance judging like batch ones, each candle once per
version; the log they are kept in; the serving section of the config."""

from __future__ import annotations

import json
import threading

import pandas as pd
import pytest

from btc_lifecycle.config import ConfigError, load_settings
from btc_lifecycle.monitoring.performance import (
    SOURCE_COLUMN,
    judged_predictions,
    realized_by_version,
    with_online_predictions,
)
from btc_lifecycle.serving.prediction_log import PredictionLog, ServedPrediction, read_online_predictions
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG

START = pd.Timestamp("2024-03-10 12:00", tz="UTC")


def minute(n: int) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=n)


def features(minutes: int) -> pd.DataFrame:
    """A features frame whose target alternates 1, 0, 1, ...; the newest candle has none yet."""
    target = pd.array([(n + 1) % 2 for n in range(minutes)], dtype="Int8")
    target[-1] = pd.NA
    return pd.DataFrame({"open_time": [minute(n) for n in range(minutes)], "target": target})


def batch(minutes: range, version: str = "1", probability: float = 0.6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open_time": [minute(n) for n in minutes],
            "up_probability": probability,
            "model_version": version,
            "predicted_at": minute(100),
            "realized_label": pd.array([(n + 1) % 2 for n in minutes], dtype="Int8"),
        }
    )


def online(rows: list[tuple[int, str, float, int]]) -> pd.DataFrame:
    """Served answers: (candle minute, version, probability, served second)."""
    return pd.DataFrame(
        {
            "served_at": [minute(n) + pd.Timedelta(seconds=second) for n, _, _, second in rows],
            "symbol": "BTC/USDT",
            "interval": "1m",
            "open_time": [minute(n) for n, *_ in rows],
            "model_name": "btc_direction",
            "model_version": [version for _, version, _, _ in rows],
            "up_probability": [probability for _, _, probability, _ in rows],
        }
    )


def test_a_candle_served_many_times_by_one_version_is_judged_once_with_the_first_answer():
    served = online([(5, "1", 0.7, 20), (5, "1", 0.9, 10), (5, "1", 0.8, 30)])
    combined = with_online_predictions(None, served, features(10))
    assert len(combined) == 1
    assert combined["up_probability"].iloc[0] == 0.9  # served at second 10, the first
    assert combined[SOURCE_COLUMN].iloc[0] == "online"


def test_a_candle_the_same_version_also_scored_in_batch_counts_once_as_the_batch_row():
    combined = with_online_predictions(batch(range(0, 5)), online([(3, "1", 0.9, 5), (6, "1", 0.9, 5)]), features(10))
    assert len(combined) == 6
    assert combined.loc[combined["open_time"] == minute(3), SOURCE_COLUMN].tolist() == ["batch"]
    assert combined.loc[combined["open_time"] == minute(6), SOURCE_COLUMN].tolist() == ["online"]
    assert combined["open_time"].is_monotonic_increasing


def test_a_candle_scored_by_two_versions_stays_one_row_per_version():
    combined = with_online_predictions(batch(range(3, 4), version="1"), online([(3, "2", 0.4, 5)]), features(10))
    assert sorted(zip(combined["model_version"], combined[SOURCE_COLUMN], strict=True)) == [
        ("1", "batch"),
        ("2", "online"),
    ]


def test_online_predictions_get_the_realized_label_of_their_candle_once_known():
    combined = with_online_predictions(None, online([(2, "1", 0.6, 1), (9, "1", 0.6, 1)]), features(10))
    labels = dict(zip(combined["open_time"], combined["realized_label"], strict=True))
    assert labels[minute(2)] == 1  # (2 + 1) % 2
    assert pd.isna(labels[minute(9)])  # the newest candle: its next one has not closed


def test_without_online_predictions_the_batch_ones_are_judged_as_before():
    stored = batch(range(0, 5))
    combined = with_online_predictions(stored, None, features(10))
    pd.testing.assert_frame_equal(combined.drop(columns=SOURCE_COLUMN), stored)
    assert set(combined[SOURCE_COLUMN]) == {"batch"}
    assert with_online_predictions(None, None, features(10)) is None


def test_the_judged_window_keeps_the_source_so_online_judgements_can_be_counted():
    combined = with_online_predictions(batch(range(0, 4)), online([(6, "1", 0.9, 1), (7, "1", 0.9, 1)]), features(10))
    window = judged_predictions(combined, minute(1), champion_version="1", champion_validated_until=minute(0))
    assert window[SOURCE_COLUMN].tolist() == ["batch", "batch", "batch", "online", "online"]
    judged = realized_by_version(window, {"1": 0.5})
    assert judged["1"].performance.n == 5


def served_prediction(candle: int, version: str = "1", probability: float = 0.55, symbol="BTC/USDT"):
    return ServedPrediction(
        served_at=minute(candle + 1).to_pydatetime(),
        symbol=symbol,
        interval="1m",
        open_time=minute(candle).to_pydatetime(),
        model_name="btc_direction",
        model_version=version,
        up_probability=probability,
    )


def test_the_log_reads_back_what_was_served_for_the_market(tmp_path):
    log = PredictionLog(tmp_path / "log" / "online_predictions.sqlite")
    log.append(served_prediction(1, "1", 0.25))
    log.append(served_prediction(2, "2", 0.75))
    log.append(served_prediction(2, symbol="ETH/USDT"))
    log.close()
    frame = read_online_predictions(tmp_path / "log" / "online_predictions.sqlite", "BTC/USDT", "1m")
    assert frame["open_time"].tolist() == [minute(1), minute(2)]
    assert frame["served_at"].tolist() == [minute(2), minute(3)]
    assert frame["model_version"].tolist() == ["1", "2"]
    assert frame["up_probability"].tolist() == [0.25, 0.75]


def test_no_log_file_means_nothing_was_served(tmp_path):
    assert read_online_predictions(tmp_path / "missing.sqlite", "BTC/USDT", "1m") is None


def test_the_log_is_in_wal_mode_and_readable_while_the_service_holds_it_open(tmp_path):
    log = PredictionLog(tmp_path / "online_predictions.sqlite")
    log.append(served_prediction(1))
    assert log._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(read_online_predictions(tmp_path / "online_predictions.sqlite", "BTC/USDT", "1m")) == 1
    log.append(served_prediction(2))
    assert len(read_online_predictions(tmp_path / "online_predictions.sqlite", "BTC/USDT", "1m")) == 2
    log.close()


def test_appends_from_many_threads_are_all_kept(tmp_path):
    log = PredictionLog(tmp_path / "online_predictions.sqlite")
    threads = [threading.Thread(target=lambda: [log.append(served_prediction(n)) for n in range(50)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.count() == 200
    log.close()


def settings_with(tmp_path, serving=None, **env):
    config = {**DEFAULT_CONFIG, **({"serving": serving} if serving is not None else {})}
    path = tmp_path / "bitcoin_ingest.json"
    path.write_text(json.dumps(config))
    return load_settings(
        {"INGEST_CONFIG": str(path), "FEATURE_DB_PATH": str(tmp_path / "store" / "bitcoin.duckdb"), **env}
    )


def test_the_serving_defaults_bind_loopback_and_log_beside_the_feature_store(tmp_path):
    settings = settings_with(tmp_path)
    assert (settings.serving.host, settings.serving.port) == ("127.0.0.1", 8765)
    assert settings.serving.reload_interval_seconds == 30
    assert settings.serving.allow_remote is False
    assert settings.online_predictions_path == tmp_path / "store" / "online_predictions.sqlite"


def test_the_serving_section_and_environment_set_port_interval_and_log(tmp_path):
    settings = settings_with(
        tmp_path,
        {"port": 9000, "reload_interval_seconds": 5},
        SERVING_PORT="9100",
        SERVING_PREDICTIONS_DB=str(tmp_path / "elsewhere.sqlite"),
    )
    assert settings.serving.port == 9100
    assert settings.serving.reload_interval_seconds == 5
    assert settings.online_predictions_path == tmp_path / "elsewhere.sqlite"


@pytest.mark.parametrize(
    ("serving", "env", "message"),
    [
        ({"port": 70000}, {}, "field 'serving.port' must be between 1 and 65535"),
        ({"reload_interval_seconds": -1}, {}, "field 'serving.reload_interval_seconds' must be between 0 and 86400"),
        ({"allow_remote": "yes"}, {}, "field 'serving.allow_remote' must be true or false"),
        ({"predictions_db": "/x"}, {}, "unknown field 'serving.predictions_db'"),
        ({"host": " "}, {}, "field 'serving.host' must not be empty"),
        (None, {"SERVING_PORT": "http"}, "SERVING_PORT must be a port number from 1 to 65535, got 'http'"),
    ],
)
def test_a_bad_serving_setting_names_the_field(tmp_path, serving, env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings_with(tmp_path, serving, **env)
