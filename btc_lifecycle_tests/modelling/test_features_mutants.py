"""Excluded rows are counted under the right reason (found loose by `make mutate`)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.candles import complete_candle_frame
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.modelling.features import (
    FEATURE_COLUMNS,
    LONGEST_WINDOW,
    compute_features,
    feature_complete,
    training_exclusions,
)

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


# compute_features: each feature's formula pinned on hand-laid candles.
# 120 minutes from 06:00 UTC. Closes: flat at 100 for rows 0..14, then seven (+2%, -1%) log-return
# pairs (rows 15..28), then flat again. Row 40 is a shaped candle; volumes are 0 up to row 59.
ROWS = 120
UP, DOWN = 0.02, -0.01


def hand_candles() -> pd.DataFrame:
    returns = np.zeros(ROWS)
    returns[15:29] = [UP, DOWN] * 7
    close = 100 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[100.0], close[:-1]])
    high, low = np.maximum(open_, close), np.minimum(open_, close)
    open_[40], high[40], low[40], close[40] = 100.0, 103.0, 98.0, 101.0
    open_[41] = 101.0
    volume = np.where(np.arange(ROWS) < 60, 0.0, 0.5)
    volume[100] = 0.8
    frame = pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01 06:00", periods=ROWS, freq="min", tz="UTC"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )
    return complete_candle_frame(frame, "1m")


@pytest.fixture(scope="module")
def hand_features() -> pd.DataFrame:
    return compute_features(hand_candles(), "1m")


def test_candle_shape_features_are_ratios_of_the_candles_prices(hand_features):
    row = hand_features.iloc[40]
    assert row["range_to_close"] == pytest.approx(5 / 101, rel=1e-12)
    assert row["body_to_open"] == pytest.approx(1 / 100, rel=1e-12)
    assert row["upper_wick_to_close"] == pytest.approx(2 / 101, rel=1e-12)
    assert row["lower_wick_to_close"] == pytest.approx(2 / 101, rel=1e-12)


def test_rsi_is_the_share_of_gains_in_the_mean_absolute_move(hand_features):
    rsi = hand_features["rsi_14"]
    assert math.isnan(rsi.iloc[13])
    assert rsi.iloc[14] == 0.5  # a flat window is neutral
    assert rsi.iloc[28] == pytest.approx(2 / 3, rel=1e-9)  # gains 7 * 0.02, losses 7 * 0.01
    assert rsi.iloc[29] == pytest.approx(0.02 * 6 / (0.02 * 6 + 0.01 * 7), rel=1e-9)


def test_a_window_of_zero_volume_has_a_volume_ratio_of_one(hand_features):
    ratio = hand_features["log_volume_ratio_60"]
    assert math.isnan(ratio.iloc[58])
    assert ratio.iloc[59] == 0.0  # mean volume 0: ratio 1, not 0 / 0
    assert ratio.iloc[60] == pytest.approx(math.log(0.5 / (0.5 / 60)), rel=1e-9)
    assert ratio.iloc[100] == pytest.approx(math.log(0.8 / ((40 * 0.5 + 0.8) / 60)), rel=1e-9)
    assert ratio.iloc[119] == pytest.approx(math.log(0.5 / (0.5 * 59 / 60 + 0.8 / 60)), rel=1e-9)


def test_minute_of_day_is_encoded_on_the_unit_circle(hand_features):
    row = hand_features.iloc[30]  # 06:30 is minute 390 of 1440
    assert row["minute_of_day_sin"] == pytest.approx(math.sin(2 * math.pi * 390 / 1440), abs=1e-12)
    assert row["minute_of_day_cos"] == pytest.approx(math.cos(2 * math.pi * 390 / 1440), abs=1e-12)
    assert hand_features.iloc[0]["minute_of_day_sin"] == pytest.approx(1.0, abs=1e-12)  # 06:00


def test_flat_zero_volume_candles_compute_without_numpy_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features = compute_features(hand_candles(), "1m")
    assert features["rsi_14"].iloc[14] == 0.5


def test_the_filled_flag_is_a_float_column():
    features = compute_features(hand_candles(), "1m")
    assert features["filled"].dtype == np.float64
    assert features["filled_share_60"].iloc[59] == 0.0


def test_prices_and_volumes_held_in_object_columns_give_the_same_features(hand_features):
    candles = hand_candles().astype({name: object for name in ("open", "high", "low", "close", "volume")})
    pd.testing.assert_frame_equal(compute_features(candles, "1m"), hand_features)


def test_by_default_a_one_minute_gap_is_not_filled():
    candles = hand_candles().drop(index=70).reset_index(drop=True)
    features = compute_features(candles, "1m")
    assert len(features) == ROWS - 1
    assert features["filled"].sum() == 0


def test_feature_completeness_reads_object_columns_as_numbers(hand_features):
    untyped = hand_features.astype({name: object for name in FEATURE_COLUMNS})
    np.testing.assert_array_equal(feature_complete(untyped), feature_complete(hand_features))


def test_a_first_run_shorter_than_the_window_counts_under_start_of_history():
    candles = synthetic_candles(400, seed=3)
    candles = label_candles(without_minutes(candles, range(30, 100)), "1m")
    features = compute_features(candles, "1m")
    counts = training_exclusions(features, "1m")
    assert counts["incomplete_window_start_of_history"] == 30
    assert counts["incomplete_window_after_gap"] == LONGEST_WINDOW - 1


def test_a_missing_volume_leaves_the_volume_ratio_missing_for_its_whole_window():
    candles = hand_candles()
    candles.loc[80, "volume"] = np.nan
    features = compute_features(candles, "1m")
    ratio = features["log_volume_ratio_60"]
    assert not math.isnan(ratio.iloc[79])
    assert ratio.iloc[80:].isna().all()  # rows 80..119 all average over the missing volume
    assert not features["trainable"].iloc[80:].any()
