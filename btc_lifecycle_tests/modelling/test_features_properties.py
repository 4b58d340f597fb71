"""compute_features never looks ahead: a row's features are fixed once its candle has closed."""

from __future__ import annotations

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from btc_lifecycle.modelling.features import FEATURE_COLUMNS, TARGET_COLUMN, TRAINABLE_COLUMN, compute_features
from btc_lifecycle_tests.strategies import candle_frames

# 0 is the default (no fill); the rest fill gaps shorter and longer than the generated ones.
fill_limits = st.one_of(st.just(0), st.integers(1, 60))


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
