"""Features: known at the close of t, stationary, never across a gap; target is t+1's label. Each
formula pinned on hand-laid candles; under the gap policy, trade-less minutes filled and flagged
and long gaps still cut; excluded rows counted under their reason."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from btc_lifecycle.domain.candles import complete_candle_frame, find_gaps
from btc_lifecycle.domain.gaps import FILLED_COLUMN
from btc_lifecycle.domain.labels import LABEL_COLUMN, label_candles, price_increase_labels
from btc_lifecycle.domain.synthetic import synthetic_candles, thin_venue_candles, without_minutes
from btc_lifecycle.modelling.features import (
    EXCLUSION_REASONS,
    FEATURE_COLUMNS,
    FILLED_WINDOW,
    LONGEST_WINDOW,
    TARGET_COLUMN,
    TRAINABLE_COLUMN,
    compute_features,
    feature_complete,
    training_exclusions,
)
from btc_lifecycle.modelling.predictions import rows_to_score
from btc_lifecycle.modelling.walk_forward import TooFewTrainableCandles, train_walk_forward
from btc_lifecycle_tests.modelling.conftest import FAST_CONFIG
from btc_lifecycle_tests.strategies import MINUTE, candle_frames, fill_limits, gappy_cases, stored_gaps

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


def test_a_longer_horizon_compares_the_close_that_many_candles_ahead(gapped_candles):
    features = compute_features(gapped_candles, "1m", horizon=5)
    close = gapped_candles["close"].reset_index(drop=True)
    ahead = (close.shift(-5) > close).astype("Int8")
    # Known only where the five candles ahead follow without a gap.
    times = gapped_candles["open_time"].reset_index(drop=True)
    contiguous = (times.shift(-5) - times) == pd.Timedelta(minutes=5)
    expected = ahead.where(contiguous, pd.NA)
    pd.testing.assert_series_equal(features["target"], expected, check_names=False)
    assert features["target"].iloc[GAP_AT - 5 : GAP_AT].isna().all()
    assert features["target"].iloc[: GAP_AT - 5].notna().all()
    assert features["close"].tolist() == close.tolist()


def test_a_horizon_below_one_candle_is_refused(gapped_candles):
    with pytest.raises(ValueError, match="horizon must be at least 1 candle, got 0"):
        compute_features(gapped_candles, "1m", horizon=0)


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
    assert list(features.columns) == ["open_time", *FEATURE_COLUMNS, "close", "target", "trainable"]
    assert features["trainable"].dtype == bool


def test_unsorted_candles_are_refused(gapped_candles):
    with pytest.raises(ValueError, match="sorted"):
        compute_features(gapped_candles.iloc[::-1], "1m")


def test_a_complete_year_is_trainable_except_the_first_window_and_the_newest_candle():
    # Its speed is figure 5f of the bench (benchmarks/training.py), not an assertion here.
    features = compute_features(synthetic_candles(525_600, seed=1), "1m")
    assert features["trainable"].sum() == 525_600 - LONGEST_WINDOW
    assert not features["trainable"].iloc[: LONGEST_WINDOW - 1].any() and not features["trainable"].iloc[-1]


# formulas, on hand-laid candles: 120 minutes from 06:00 UTC. Closes: flat at 100 for rows 0..14,
# then seven (+2%, -1%) log-return pairs (rows 15..28), then flat again. Row 40 is a shaped candle;
# volumes are 0 up to row 59.


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


def test_a_missing_volume_leaves_the_volume_ratio_missing_for_its_whole_window():
    candles = hand_candles()
    candles.loc[80, "volume"] = np.nan
    features = compute_features(candles, "1m")
    ratio = features["log_volume_ratio_60"]
    assert not math.isnan(ratio.iloc[79])
    assert ratio.iloc[80:].isna().all()  # rows 80..119 all average over the missing volume
    assert not features["trainable"].iloc[80:].any()


# the gap policy: trade-less minutes filled and flagged, long gaps still cut


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


def test_rows_after_every_gap_count_under_after_gap_not_start_of_history():
    candles = synthetic_candles(600, seed=7)
    candles = label_candles(without_minutes(candles, [*range(200, 240), *range(400, 440)]), "1m")
    features = compute_features(candles, "1m", max_fill_minutes=10)
    assert training_exclusions(features, "1m") == {
        "incomplete_window_start_of_history": LONGEST_WINDOW - 1,
        "incomplete_window_after_gap": 2 * (LONGEST_WINDOW - 1),
        "no_next_candle": 3,  # the newest candle and the one before each gap
    }


def test_a_first_run_shorter_than_the_window_counts_under_start_of_history():
    candles = synthetic_candles(400, seed=3)
    candles = label_candles(without_minutes(candles, range(30, 100)), "1m")
    features = compute_features(candles, "1m")
    counts = training_exclusions(features, "1m")
    assert counts["incomplete_window_start_of_history"] == 30
    assert counts["incomplete_window_after_gap"] == LONGEST_WINDOW - 1


def test_a_thin_venue_trains_on_most_minutes_with_the_policy_and_not_at_all_without():
    candles = thin_venue(seed=12, minutes=12_000)
    with pytest.raises(TooFewTrainableCandles, match="features.max_fill_minutes"):
        train_walk_forward(compute_features(candles, "1m", max_fill_minutes=0), FAST_CONFIG)
    features = compute_features(candles, "1m", max_fill_minutes=LIMIT)
    result = train_walk_forward(features, FAST_CONFIG)
    assert result.row_counts["trainable"] > 0.8 * len(features)
    assert len(features) > 2 * len(candles)


# any candles


@st.composite
def earlier_and_later(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A candle series and arbitrary candles after it: after a gap or none, at any price."""
    earlier = draw(candle_frames(max_size=160))
    wait = draw(st.one_of(st.just(1), st.integers(2, 90)))
    later = draw(candle_frames(max_size=60, start=earlier["open_time"].iloc[-1] + pd.Timedelta(minutes=wait)))
    return earlier, later


@given(earlier_and_later(), fill_limits)
def test_no_feature_of_a_candle_changes_when_later_candles_arrive(case, max_fill_minutes):
    earlier, later = case
    alone = compute_features(earlier, "1m", max_fill_minutes)
    extended = compute_features(pd.concat([earlier, later], ignore_index=True), "1m", max_fill_minutes)
    known = extended.loc[extended["open_time"] <= earlier["open_time"].iloc[-1]]
    columns = ["open_time", *FEATURE_COLUMNS]
    pd.testing.assert_frame_equal(known[columns], alone[columns], check_exact=True)
    # The target of t is the direction of t + 1: only the newest row learns it later.
    settled = [TARGET_COLUMN, TRAINABLE_COLUMN]
    pd.testing.assert_frame_equal(known[settled].iloc[:-1], alone[settled].iloc[:-1], check_exact=True)
    assert pd.isna(alone[TARGET_COLUMN].iloc[-1]) and not alone[TRAINABLE_COLUMN].iloc[-1]


@given(gappy_cases(min_size=LONGEST_WINDOW))
def test_no_feature_complete_window_contains_a_stored_gap_longer_than_the_limit(case):
    candles, max_fill_minutes = case
    features = compute_features(candles, "1m", max_fill_minutes)
    stored = features["open_time"].isin(candles["open_time"])
    assert (features[FILLED_COLUMN] == (~stored).astype("float64")).all()
    ends = features.loc[feature_complete(features), "open_time"].reset_index(drop=True)
    event("has feature-complete rows" if len(ends) else "no feature-complete row")
    starts = ends - (LONGEST_WINDOW - 1) * MINUTE
    # The window t - (LONGEST_WINDOW - 1) .. t starts at or after the first stored candle ...
    assert (starts >= candles["open_time"].iloc[0]).all()
    # ... and no minute of it lies inside a stored gap the policy left open.
    for after, before, missing in stored_gaps(candles):
        if missing > max_fill_minutes:
            inside = (after < ends) & (before > starts)
            assert not inside.any(), f"the window ending {ends[inside].iloc[0]} spans the gap after {after}"
