"""Features under the gap policy: trade-less minutes filled and flagged, long gaps still cut."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.candles import find_gaps
from btc_lifecycle.domain.gaps import FILLED_COLUMN
from btc_lifecycle.domain.labels import LABEL_COLUMN, label_candles, price_increase_labels
from btc_lifecycle.domain.synthetic import synthetic_candles, thin_venue_candles, without_minutes
from btc_lifecycle.modelling import (
    FEATURE_COLUMNS,
    LONGEST_WINDOW,
    TooFewTrainableCandles,
    compute_features,
    train_walk_forward,
)
from btc_lifecycle.modelling.features import EXCLUSION_REASONS, FILLED_WINDOW, training_exclusions
from btc_lifecycle.modelling.predictions import rows_to_score
from btc_lifecycle_tests.modelling.conftest import FAST_CONFIG

FLAGS = [FILLED_COLUMN, f"filled_share_{FILLED_WINDOW}"]
LIMIT = 30


def thin_venue(
    seed: int, minutes: int = 4_000, share: float = 0.62, outage: tuple[int, int] | None = None
) -> pd.DataFrame:
    """Generated candles as a thin venue prints them; optionally an exchange outage cut out."""
    thin = thin_venue_candles(synthetic_candles(minutes, seed=seed), no_trade_share=share, seed=seed)
    if outage is not None:
        start = thin["open_time"].iloc[0] + pd.Timedelta(minutes=outage[0])
        inside = (thin["open_time"] >= start) & (thin["open_time"] < start + pd.Timedelta(minutes=outage[1]))
        thin = without_minutes(thin, np.flatnonzero(inside.to_numpy()))
    return label_candles(thin, "1m")


@pytest.fixture(scope="module")
def sparse() -> pd.DataFrame:
    return thin_venue(seed=3, outage=(2_000, 120))


def test_filled_minutes_are_flagged_and_stored_candles_are_not(sparse):
    features = compute_features(sparse, "1m", max_fill_minutes=LIMIT)
    stored = features["open_time"].isin(sparse["open_time"])
    assert (features.loc[stored, FILLED_COLUMN] == 0).all()
    assert (features.loc[~stored, FILLED_COLUMN] == 1).all()
    assert (~stored).sum() > len(sparse)  # most minutes of a thin venue have no trade
    share = features[FILLED_COLUMN].rolling(FILLED_WINDOW).mean()
    complete = features["trainable"]
    np.testing.assert_allclose(features.loc[complete, FLAGS[1]], share[complete])


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("limit", [0, 3, 10, LIMIT])
def test_no_feature_window_spans_a_gap_longer_than_the_policy_allows(seed, limit):
    share = (0.55, 0.62, 0.70)[seed % 3]
    candles = thin_venue(seed, minutes=3_000, share=share, outage=(500 + 200 * seed, 40 + 20 * seed))
    features = compute_features(candles, "1m", max_fill_minutes=limit)
    # Every row is a stored candle or a minute of a stored gap no longer than the limit.
    fillable = {
        gap.after + pd.Timedelta(minutes=k)
        for gap in find_gaps(candles["open_time"], "1m")
        if gap.missing <= limit
        for k in range(1, gap.missing + 1)
    }
    invented = features.loc[~features["open_time"].isin(candles["open_time"]), "open_time"]
    assert set(invented) <= fillable
    # A scorable row's whole window is there, minute by minute, so it crosses no open gap.
    times = features["open_time"].reset_index(drop=True)
    complete = np.flatnonzero(features[list(FEATURE_COLUMNS)].notna().all(axis=1).to_numpy())
    spans = times.iloc[complete].to_numpy() - times.iloc[complete - (LONGEST_WINDOW - 1)].to_numpy()
    assert (complete >= LONGEST_WINDOW - 1).all()
    assert (spans == np.timedelta64(LONGEST_WINDOW - 1, "m")).all()


def test_a_complete_series_gives_the_same_features_with_and_without_the_policy():
    candles = label_candles(synthetic_candles(2_000, seed=6), "1m")
    without = compute_features(candles, "1m", max_fill_minutes=0)
    with_policy = compute_features(candles, "1m", max_fill_minutes=LIMIT)
    pd.testing.assert_frame_equal(with_policy, without)
    assert (with_policy.loc[with_policy["trainable"], FLAGS] == 0).all().all()
    assert int(with_policy["trainable"].sum()) == len(candles) - LONGEST_WINDOW


def test_the_target_is_the_next_minutes_direction_on_the_filled_series():
    complete = synthetic_candles(200, seed=2)
    candles = label_candles(without_minutes(complete, [100, 101, 102]), "1m")
    target = compute_features(candles, "1m", max_fill_minutes=5).set_index("open_time")["target"]
    minute = complete["open_time"]
    # The minute after candle 99 had no trade, so it closed where 99 did: not up, like a tie.
    assert target[minute[99]] == 0 and target[minute[100]] == 0 and target[minute[101]] == 0
    # The last quiet minute's target is the move of the next trade against the last one.
    assert target[minute[102]] == int(complete["close"][103] > complete["close"][99])


def test_the_stored_candles_and_their_seed_labels_are_not_touched(sparse):
    before = sparse.copy()
    compute_features(sparse, "1m", max_fill_minutes=LIMIT)
    pd.testing.assert_frame_equal(sparse, before)
    # The seed's label keeps its meaning on stored candles: none across a missing minute.
    pd.testing.assert_series_equal(sparse[LABEL_COLUMN], price_increase_labels(sparse, "1m"))
    assert sparse[LABEL_COLUMN].isna().sum() == len(find_gaps(sparse["open_time"], "1m")) + 1


def test_a_rows_features_do_not_change_when_later_candles_arrive(sparse):
    """What the champion scored live is what a later training reads for the same minute."""
    cut = len(sparse) // 2
    earlier = compute_features(sparse.iloc[:cut], "1m", max_fill_minutes=LIMIT)
    later = compute_features(sparse, "1m", max_fill_minutes=LIMIT).set_index("open_time")
    scored = rows_to_score(earlier, None, None, max_rows=len(earlier))
    pd.testing.assert_frame_equal(
        later.loc[scored["open_time"], list(FEATURE_COLUMNS)].reset_index(drop=True),
        scored[list(FEATURE_COLUMNS)].reset_index(drop=True),
    )
    # Only the newest row learns its target later: nothing is filled after the last candle.
    assert earlier["open_time"].iloc[-1] == sparse["open_time"].iloc[cut - 1]
    assert pd.isna(earlier["target"].iloc[-1])


def test_excluded_rows_are_counted_once_under_their_reason():
    candles = label_candles(without_minutes(synthetic_candles(400, seed=7), range(200, 240)), "1m")
    features = compute_features(candles, "1m", max_fill_minutes=10)
    excluded = training_exclusions(features, "1m")
    assert list(excluded) == list(EXCLUSION_REASONS)
    assert excluded == {
        "incomplete_window_start_of_history": LONGEST_WINDOW - 1,
        "incomplete_window_after_gap": LONGEST_WINDOW - 1,
        "no_next_candle": 2,  # the newest candle and the one before the 40-minute gap
    }
    assert sum(excluded.values()) == int((~features["trainable"]).sum())


def test_a_thin_venue_trains_on_most_minutes_with_the_policy_and_not_at_all_without():
    candles = thin_venue(seed=12, minutes=12_000)
    with pytest.raises(TooFewTrainableCandles, match="features.max_fill_minutes"):
        train_walk_forward(compute_features(candles, "1m", max_fill_minutes=0), FAST_CONFIG)
    features = compute_features(candles, "1m", max_fill_minutes=LIMIT)
    result = train_walk_forward(features, FAST_CONFIG)
    assert result.row_counts["trainable"] > 0.8 * len(features)
    assert len(features) > 2 * len(candles)
