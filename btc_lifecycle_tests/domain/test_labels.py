"""price_increase_label: up against the previous adjacent candle; never across a gap."""

from __future__ import annotations

import itertools

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from btc_lifecycle.domain.candles import complete_candle_frame, interval_ms
from btc_lifecycle.domain.labels import LABEL_COLUMN, label_balance, label_candles, price_increase_labels
from btc_lifecycle_tests.strategies import candle_frames


def candles(closes: list[float], minutes: list[int] | None = None) -> pd.DataFrame:
    minutes = minutes if minutes is not None else list(range(len(closes)))
    start = pd.Timestamp("2023-03-01T00:00:00Z")
    frame = pd.DataFrame(
        {
            "open_time": [start + pd.Timedelta(minutes=m) for m in minutes],
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1.0,
        }
    )
    return complete_candle_frame(frame, "1m")


def labels_of(frame: pd.DataFrame) -> list:
    return [None if pd.isna(v) else int(v) for v in label_candles(frame, "1m")[LABEL_COLUMN]]


def test_a_higher_close_is_1_and_a_lower_close_is_0():
    assert labels_of(candles([100, 101, 100.5])) == [None, 1, 0]


def test_a_tie_is_0_because_the_price_did_not_increase():
    assert labels_of(candles([100, 100, 100])) == [None, 0, 0]


def test_the_first_candle_has_no_label():
    assert labels_of(candles([100]))[0] is None


def test_the_first_candle_after_a_gap_has_no_label():
    # minute 2 is missing: minute 3 must not be compared with minute 1
    assert labels_of(candles([100, 101, 90, 95], minutes=[0, 1, 3, 4])) == [None, 1, None, 1]


def test_labels_match_an_independent_row_by_row_computation(generated_candles):
    frame = generated_candles.drop(index=[100, 101, 2000]).reset_index(drop=True)
    labeled = label_candles(frame, "1m")
    expected = [None]
    rows = list(frame.itertuples())
    for previous, current in itertools.pairwise(rows):
        adjacent = current.open_time - previous.open_time == pd.Timedelta(minutes=1)
        expected.append(int(current.close > previous.close) if adjacent else None)
    assert [None if pd.isna(v) else int(v) for v in labeled[LABEL_COLUMN]] == expected


def test_the_label_balance_counts_every_candle_and_shares_the_unlabeled_among_them():
    frame = label_candles(candles([100, 101, 101, 100, 102], minutes=[0, 1, 2, 3, 9]), "1m")
    balance = label_balance(frame)
    assert (balance.candles, balance.up, balance.not_up, balance.unlabeled, balance.ties) == (5, 1, 2, 2, 1)
    assert balance.unlabeled_share == 2 / 5


# any series with gaps and ties

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
