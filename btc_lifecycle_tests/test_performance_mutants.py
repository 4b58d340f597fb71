"""The judged window of predictions: its columns and index (found loose by `make mutate`)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.modelling.baselines import HARD_VOTE_CLIP
from btc_lifecycle.monitoring.performance import judged_predictions, realized_by_version, realized_performance

START = pd.Timestamp("2024-01-01", tz="UTC")


def minute(n: int) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=n)


# judged_predictions


def test_no_stored_predictions_gives_an_empty_window_with_the_prediction_columns():
    window = judged_predictions(None, START, "1", START)
    assert window.empty
    assert list(window.columns) == ["open_time", "up_probability", "model_version", "realized_label"]


def test_the_judged_window_is_renumbered_from_zero():
    rows = pd.DataFrame(
        {
            "open_time": [minute(n) for n in range(6)],
            "up_probability": 0.5,
            "model_version": "2",
            "predicted_at": minute(10),
            "realized_label": pd.array([1, 0, 1, 0, 1, 0], dtype="Int8"),
        }
    )
    window = judged_predictions(rows, minute(1), champion_version="2", champion_validated_until=minute(2))
    assert list(window.index) == [0, 1, 2]
    assert list(window.columns) == ["open_time", "up_probability", "model_version", "realized_label"]
    assert list(window["open_time"]) == [minute(3), minute(4), minute(5)]


# RealizedPerformance.as_dict


def test_realized_performance_as_a_dict_holds_every_field():
    performance = realized_performance(np.array([0.9, 0.2, 0.4, 0.6]), np.array([1, 0, 1, 0]))
    assert performance.as_dict() == {field.name: getattr(performance, field.name) for field in fields(performance)}
    assert performance.as_dict()["n"] == 4


# realized_by_version


def realized_rows(version: str, probabilities: list[float], labels: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open_time": [minute(n) for n in range(len(labels))],
            "up_probability": probabilities,
            "model_version": version,
            "realized_label": pd.array(labels, dtype="Int8"),
        }
    )


def test_versions_come_back_in_order_each_named_after_itself():
    rows = pd.concat([realized_rows("2", [0.6, 0.4], [1, 0]), realized_rows("1", [0.7, 0.3], [1, 0])])
    judged = realized_by_version(rows, {})
    assert list(judged) == ["1", "2"]
    assert [entry.version for entry in judged.values()] == ["1", "2"]


def test_a_version_without_a_usable_prediction_does_not_hide_the_next():
    rows = pd.concat([realized_rows("1", [np.nan, np.nan], [1, 0]), realized_rows("2", [0.6, 0.4], [1, 0])])
    assert list(realized_by_version(rows, {})) == ["2"]


def test_two_realized_candles_are_enough_for_the_paired_test_and_one_is_not():
    assert realized_by_version(realized_rows("1", [0.6, 0.4], [1, 0]), {})["1"].versus_prior is not None
    assert realized_by_version(realized_rows("1", [0.6], [1]), {})["1"].versus_prior is None


def test_a_prior_of_one_half_votes_down():
    judged = realized_by_version(realized_rows("1", [0.6, 0.4], [1, 1]), {"1": 0.5})["1"]
    # The majority vote of a 0.5 prior is "down": both up candles are scored as clipped misses.
    assert judged.majority_log_loss == pytest.approx(-np.log(HARD_VOTE_CLIP))
