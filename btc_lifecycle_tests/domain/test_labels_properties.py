"""price_increase_labels equals a minute-by-minute recomputation on any series with gaps and ties."""

from __future__ import annotations

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from btc_lifecycle.domain.candles import interval_ms
from btc_lifecycle.domain.labels import LABEL_COLUMN, price_increase_labels
from btc_lifecycle_tests.strategies import candle_frames

INTERVALS = ("1m", "5m", "1h")


def expected_labels(candles: pd.DataFrame, interval: str) -> list[int | None]:
    """The seed's rule written out: up against the previous candle, only if it is one interval before."""
    step = pd.Timedelta(milliseconds=interval_ms(interval))
    times = list(candles["open_time"])
    closes = list(candles["close"])
    labels: list[int | None] = [None]
    for i in range(1, len(candles)):
        adjacent = times[i] - times[i - 1] == step
        labels.append((1 if closes[i] > closes[i - 1] else 0) if adjacent else None)
    return labels[: len(candles)]


@st.composite
def labelled_cases(draw: st.DrawFn) -> tuple[pd.DataFrame, str]:
    interval = draw(st.sampled_from(INTERVALS))
    candles = draw(candle_frames(max_size=60, interval=interval, max_gap=5))
    # A slice of a larger frame keeps its old index: labels must not depend on 0..n-1.
    first = draw(st.integers(0, 1000))
    return candles.set_axis(range(first, first + len(candles))), interval


@given(labelled_cases())
def test_labels_equal_an_independent_recomputation_on_any_series_with_gaps_and_ties(case):
    candles, interval = case
    labels = price_increase_labels(candles, interval)
    assert [None if pd.isna(value) else int(value) for value in labels] == expected_labels(candles, interval)
    assert labels.name == LABEL_COLUMN and str(labels.dtype) == "Int8"
    assert labels.index.equals(candles.index)
