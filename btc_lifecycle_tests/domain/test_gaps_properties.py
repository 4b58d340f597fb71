"""The gap policy fills exactly the short gaps, flags them, and no feature window spans a long one."""

from __future__ import annotations

import pandas as pd
from hypothesis import event, given
from hypothesis import strategies as st

from btc_lifecycle.domain.candles import EXTRA_COLUMNS, PRICE_COLUMNS
from btc_lifecycle.domain.gaps import FILLED_COLUMN, fill_trade_less_minutes
from btc_lifecycle.modelling.features import LONGEST_WINDOW, compute_features, feature_complete
from btc_lifecycle_tests.strategies import candle_frames

MINUTE = pd.Timedelta(minutes=1)
fill_limits = st.one_of(st.just(0), st.integers(1, 60))
# Long enough for windows of LONGEST_WINDOW candles between gaps of up to 90 minutes.
gappy_candles = candle_frames(min_size=LONGEST_WINDOW, max_size=250, max_gap=90)


@st.composite
def gappy_cases(draw: st.DrawFn) -> tuple[pd.DataFrame, int]:
    """Candles and a fill limit: none, any, or exactly a stored gap's length or one less (the edges)."""
    candles = draw(gappy_candles)
    edges = sorted({n for _, _, missing in stored_gaps(candles) for n in (missing, missing - 1)})
    return candles, draw(st.one_of(fill_limits, st.sampled_from(edges)) if edges else fill_limits)


def stored_gaps(candles: pd.DataFrame) -> list[tuple[pd.Timestamp, pd.Timestamp, int]]:
    """(previous stored minute, next stored minute, minutes missing between them), written out."""
    times = list(candles["open_time"])
    return [(a, b, (b - a) // MINUTE - 1) for a, b in zip(times, times[1:], strict=False) if b - a > MINUTE]


@given(gappy_cases())
def test_the_fill_adds_flat_flagged_candles_for_exactly_the_short_gaps_and_keeps_the_stored_ones(case):
    candles, max_fill_minutes = case
    before = candles.copy()
    filled = fill_trade_less_minutes(candles, "1m", max_fill_minutes)
    pd.testing.assert_frame_equal(candles, before)  # the input frame is not touched
    flags = filled[FILLED_COLUMN]
    assert flags.dtype == bool and filled["open_time"].is_monotonic_increasing
    pd.testing.assert_frame_equal(
        filled.loc[~flags].drop(columns=FILLED_COLUMN).reset_index(drop=True), candles, check_exact=True
    )
    expected = [
        (after + k * MINUTE, close)
        for after, before_, missing in stored_gaps(candles)
        if missing <= max_fill_minutes
        for k in range(1, missing + 1)
        for close in [candles.loc[candles["open_time"] == after, "close"].item()]
    ]
    invented = filled.loc[flags]
    assert list(invented["open_time"]) == [moment for moment, _ in expected]
    for name in PRICE_COLUMNS:  # flat at the previous stored close
        assert list(invented[name]) == [close for _, close in expected]
    assert (invented[["volume", *EXTRA_COLUMNS]] == 0).all().all()


@given(gappy_cases())
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
