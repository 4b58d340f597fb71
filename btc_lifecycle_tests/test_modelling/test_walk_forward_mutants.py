"""The training-input fingerprint (a stored hash that says "nothing new to train"): stable for
the same inputs, changed by each of them. Only the Dagster model asset called it, so `make
mutate` found no fast test of it (docs/mutation.md)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from btc_lifecycle.modelling.features import FEATURE_COLUMNS
from btc_lifecycle.modelling.walk_forward import TooFewTrainableCandles, WalkForwardConfig, input_fingerprint

# Pinned: a hash stored beside a champion must mean the same inputs after an upgrade.
KNOWN = "03852d4ed89c678e1b5c2bb5eff642e79f94844a4cba87da86a86b61bd287a25"


def inputs() -> pd.DataFrame:
    frame = pd.DataFrame({"open_time": pd.date_range("2024-01-01", periods=3, freq="min", tz="UTC")})
    for position, name in enumerate(FEATURE_COLUMNS):
        frame[name] = [position + 0.5, position * 2.0, -position - 0.25]
    frame["target"] = pd.array([1, 0, pd.NA], dtype="Int8")
    frame["trainable"] = [True, True, False]
    return frame


def test_the_fingerprint_of_known_inputs_is_pinned():
    assert input_fingerprint(inputs(), WalkForwardConfig()) == KNOWN


def test_the_same_inputs_give_the_same_fingerprint():
    assert input_fingerprint(inputs(), WalkForwardConfig()) == input_fingerprint(inputs(), WalkForwardConfig())


def changed(column: str, value) -> pd.DataFrame:
    frame = inputs()
    frame.loc[1, column] = value
    return frame


@pytest.mark.parametrize(
    "frame",
    [
        changed("open_time", pd.Timestamp("2024-01-01 00:05", tz="UTC")),
        changed(FEATURE_COLUMNS[0], 9.0),
        changed(FEATURE_COLUMNS[-1], 9.0),
        changed("target", 1),
        changed("trainable", False),
    ],
    ids=["time", "first feature", "last feature", "target", "trainable"],
)
def test_each_input_column_changes_the_fingerprint(frame):
    assert input_fingerprint(frame, WalkForwardConfig()) != KNOWN


def test_a_setting_changes_the_fingerprint():
    assert input_fingerprint(inputs(), replace(WalkForwardConfig(), n_folds=WalkForwardConfig().n_folds + 1)) != KNOWN


# TooFewTrainableCandles: the message a person reads when a training cannot start


def test_too_few_trainable_candles_says_what_how_many_and_which_settings():
    error = TooFewTrainableCandles("fold 2", 10, 5, 1, 1000, 900, WalkForwardConfig())
    assert (error.what, error.train_rows, error.test_rows) == ("fold 2", 10, 5)
    assert (error.train_classes, error.candles, error.trainable) == (1, 1000, 900)
    assert str(error) == (
        "fold 2: too few trainable candles (10 to train with a single target class, 5 to test; 900 of 1000 "
        "feature rows are trainable) for n_folds=5, heldout_fraction=0.15, embargo_candles=62. Ingest more "
        "history, or change the settings: features.max_fill_minutes (fill the trade-less minutes of a thin "
        "market so that feature windows run through them), model.n_folds (fewer, larger folds), "
        "model.heldout_fraction, model.train_window_days (null trains on all history)"
    )


def test_no_training_rows_is_not_called_a_single_class():
    error = TooFewTrainableCandles("held-out window", 0, 5, 0, 1000, 900, WalkForwardConfig())
    assert str(error).startswith("held-out window: too few trainable candles (0 to train, 5 to test;")
