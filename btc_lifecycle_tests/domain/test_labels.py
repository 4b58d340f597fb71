"""price_increase_label: up against the previous adjacent minute; never across a gap."""

from __future__ import annotations

import itertools

import pandas as pd

from btc_lifecycle.domain.candles import complete_candle_frame
from btc_lifecycle.domain.labels import LABEL_COLUMN, label_balance, label_candles


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
