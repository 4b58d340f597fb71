"""The windows drift is measured on, pinned down where `make mutate` found no fast test (their
callers are the Dagster asset tests; docs/mutation.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.modelling.features import compute_features, feature_complete
from btc_lifecycle.monitoring import MonitoringConfig
from btc_lifecycle.monitoring.drift import current_window, reference_window


def features(count: int) -> pd.DataFrame:
    return compute_features(synthetic_candles(count, seed=4), "1m")


def test_the_reference_is_the_feature_complete_tail_of_the_training_data():
    training = features(300)
    complete = training.loc[feature_complete(training)]
    window = reference_window(training, MonitoringConfig(reference_window=50))
    assert window["open_time"].tolist() == complete["open_time"].tail(50).tolist()


def test_without_a_reference_length_all_feature_complete_training_rows_are_the_reference():
    training = features(300)
    window = reference_window(training, MonitoringConfig(reference_window=None))
    assert window["open_time"].tolist() == training.loc[feature_complete(training), "open_time"].tolist()
    assert len(window) < len(training)  # the first hour has incomplete windows


def test_the_current_window_is_the_newest_feature_complete_candles():
    recent = features(300)
    recent.loc[recent.index[-1], "rsi_14"] = np.nan  # the newest row is not complete
    window = current_window(recent, MonitoringConfig(current_window=20))
    expected = recent.loc[feature_complete(recent), "open_time"].tail(20)
    assert window["open_time"].tolist() == expected.tolist()
    assert window["open_time"].iloc[-1] == recent["open_time"].iloc[-2]
