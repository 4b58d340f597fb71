"""Features: known at the close of t, stationary, never across a gap; target is t+1's label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.labels import price_increase_labels
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.modelling import FEATURE_COLUMNS, LONGEST_WINDOW, compute_features

GAP_AT, GAP_MINUTES = 300, 20


@pytest.fixture(scope="module")
def gapped_candles() -> pd.DataFrame:
    candles = synthetic_candles(800, seed=5)
    return without_minutes(candles, range(GAP_AT, GAP_AT + GAP_MINUTES))


def _future_rewritten(candles: pd.DataFrame, t: int, rng: np.random.Generator) -> pd.DataFrame:
    """The same candles up to t; after t, other prices and volumes, and a few candles missing."""
    changed = candles.copy()
    later = changed.index > t
    factor = rng.uniform(0.8, 1.25, later.sum())
    for column in ("open", "high", "low", "close"):
        changed.loc[later, column] *= factor
    changed.loc[later, "volume"] = rng.gamma(1.0, 5.0, later.sum())
    dropped = rng.choice(np.flatnonzero(later), size=min(5, later.sum()), replace=False)
    return changed.drop(index=changed.index[dropped])


def test_features_of_candle_t_ignore_every_later_candle(gapped_candles):
    rng = np.random.default_rng(0)
    original = compute_features(gapped_candles, "1m")
    for t in [0, 59, 60, 150, GAP_AT - 1, GAP_AT, GAP_AT + 61, 500, 700, len(gapped_candles) - 2]:
        changed = compute_features(_future_rewritten(gapped_candles, t, rng), "1m")
        pd.testing.assert_frame_equal(changed.loc[:t, list(FEATURE_COLUMNS)], original.loc[:t, list(FEATURE_COLUMNS)])


def test_target_is_the_next_candles_label(gapped_candles):
    features = compute_features(gapped_candles, "1m")
    next_label = price_increase_labels(gapped_candles, "1m").shift(-1)
    pd.testing.assert_series_equal(features["target"], next_label.astype("Int8"), check_names=False)


def test_last_row_and_rows_near_a_gap_are_not_trainable(gapped_candles):
    features = compute_features(gapped_candles, "1m")
    assert features["target"].isna().iloc[-1] and not features["trainable"].iloc[-1]
    # The candle before the hole has no next minute; the run after it needs a full window.
    assert pd.isna(features["target"].iloc[GAP_AT - 1])
    assert not features["trainable"].iloc[GAP_AT - 1]
    assert not features["trainable"].iloc[GAP_AT : GAP_AT + LONGEST_WINDOW - 1].any()
    assert features["trainable"].iloc[GAP_AT + LONGEST_WINDOW - 1]
    assert not features["trainable"].iloc[: LONGEST_WINDOW - 1].any()
    assert features.loc[features["trainable"], list(FEATURE_COLUMNS)].notna().all().all()


def test_windows_after_a_gap_see_only_their_own_run(gapped_candles):
    features = compute_features(gapped_candles, "1m")
    run_after_gap = gapped_candles.iloc[GAP_AT:]
    alone = compute_features(run_after_gap, "1m")
    pd.testing.assert_frame_equal(
        features.loc[GAP_AT:, list(FEATURE_COLUMNS)].reset_index(drop=True), alone[list(FEATURE_COLUMNS)]
    )


def test_features_do_not_depend_on_the_price_level(gapped_candles):
    scaled = gapped_candles.copy()
    scaled[["open", "high", "low", "close"]] *= 7.3
    scaled["volume"] *= 3.0
    original = compute_features(gapped_candles, "1m")[list(FEATURE_COLUMNS)]
    rescaled = compute_features(scaled, "1m")[list(FEATURE_COLUMNS)]
    pd.testing.assert_frame_equal(original, rescaled, rtol=1e-6, atol=1e-9)


def test_output_has_one_row_per_candle_in_time_order_with_a_fresh_index(gapped_candles):
    shifted = gapped_candles.set_index(gapped_candles.index + 1000)
    features = compute_features(shifted, "1m")
    assert features.index.equals(pd.RangeIndex(len(shifted)))
    assert features["open_time"].tolist() == shifted["open_time"].tolist()
    assert list(features.columns) == ["open_time", *FEATURE_COLUMNS, "target", "trainable"]
    assert features["trainable"].dtype == bool


def test_unsorted_candles_are_refused(gapped_candles):
    with pytest.raises(ValueError, match="sorted"):
        compute_features(gapped_candles.iloc[::-1], "1m")


def test_a_complete_year_is_trainable_except_the_first_window_and_the_newest_candle():
    # Its speed is figure 5f of the bench (benchmarks/training.py), not an assertion here.
    features = compute_features(synthetic_candles(525_600, seed=1), "1m")
    assert features["trainable"].sum() == 525_600 - LONGEST_WINDOW
    assert not features["trainable"].iloc[: LONGEST_WINDOW - 1].any() and not features["trainable"].iloc[-1]
