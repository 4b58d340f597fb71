"""Excluded rows are counted under the right reason (found loose by `make mutate`)."""

from __future__ import annotations

import pandas as pd

from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.modelling.features import LONGEST_WINDOW, compute_features, training_exclusions

START = pd.Timestamp("2024-01-01", tz="UTC")


def minute(n: int) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=n)


# training_exclusions


def test_rows_after_every_gap_count_under_after_gap_not_start_of_history():
    candles = synthetic_candles(600, seed=7)
    candles = label_candles(without_minutes(candles, [*range(200, 240), *range(400, 440)]), "1m")
    features = compute_features(candles, "1m", max_fill_minutes=10)
    assert training_exclusions(features, "1m") == {
        "incomplete_window_start_of_history": LONGEST_WINDOW - 1,
        "incomplete_window_after_gap": 2 * (LONGEST_WINDOW - 1),
        "no_next_candle": 3,  # the newest candle and the one before each gap
    }
