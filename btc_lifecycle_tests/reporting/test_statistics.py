"""Report numbers: log returns, label balance and candle aggregation on small frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.candles import complete_candle_frame
from btc_lifecycle.domain.labels import label_balance, label_candles
from btc_lifecycle.reporting.sampling import aggregate_ohlcv, bar_size, close_line
from btc_lifecycle.reporting.statistics import log_returns, summary_statistics


def candles(minutes, closes):
    closes = np.asarray(closes, dtype=float)
    frame = pd.DataFrame(
        {
            "open_time": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(minutes, unit="min"),
            "open": closes,
            "high": closes + 1,
            "low": closes - 1,
            "close": closes,
            "volume": np.arange(1, len(closes) + 1, dtype=float),
        }
    )
    return label_candles(complete_candle_frame(frame, "1m"), "1m")


def test_log_returns_do_not_span_a_gap():
    frame = candles([0, 1, 5, 6], [100, 110, 200, 200])
    returns = log_returns(frame, "1m")
    assert returns.isna().tolist() == [True, False, True, False]
    assert returns[1] == pytest.approx(np.log(1.1))
    assert summary_statistics(frame, "1m").loc["log_return", "count"] == 2


def test_label_balance_counts_ties_among_labeled_candles_only():
    frame = candles([0, 1, 2, 3, 10, 11], [100, 101, 101, 100, 100, 102])
    balance = label_balance(frame)
    # 101 -> 101 is a tie; 100 at minute 3 and at minute 10 are not adjacent, so no tie there.
    assert (balance.up, balance.not_up, balance.unlabeled, balance.ties) == (2, 2, 2, 1)
    assert balance.tie_share == pytest.approx(1 / 4)
    # up and not-up are shares of the labeled candles; unlabeled of all candles
    assert (balance.up_share, balance.not_up_share) == (pytest.approx(2 / 4), pytest.approx(2 / 4))
    assert balance.unlabeled_share == pytest.approx(2 / 6)


def test_aggregation_takes_first_open_max_high_min_low_last_close_and_summed_volume():
    frame = candles(range(10), [10, 12, 11, 15, 9, 20, 21, 22, 23, 24])
    bars = aggregate_ohlcv(frame, pd.Timedelta(minutes=5))
    first = bars.iloc[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (10, 16, 8, 9, 15)
    assert len(bars) == 2


def test_aggregation_leaves_out_bars_inside_a_gap():
    frame = candles([0, 1, 30, 31], [10, 11, 12, 13])
    assert len(aggregate_ohlcv(frame, pd.Timedelta(minutes=5))) == 2


def test_bar_size_keeps_three_weeks_of_minutes_under_two_thousand_bars():
    first = pd.Timestamp("2023-03-01", tz="UTC")
    size = bar_size(first, first + pd.Timedelta(minutes=30_239), "1m")
    assert size == pd.Timedelta(minutes=20)
    assert bar_size(first, first + pd.Timedelta(minutes=99), "1m") == pd.Timedelta(minutes=1)
    assert bar_size(first, first + pd.Timedelta(days=3650), "1m") / pd.Timedelta(minutes=1) >= 3650 * 1440 / 2_000


def test_close_line_breaks_at_a_gap():
    line = close_line(candles([0, 1, 5, 6], [1, 2, 3, 4]), "1m")
    assert line["close"].isna().sum() == 1
    assert line["open_time"].is_monotonic_increasing
