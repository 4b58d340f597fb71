"""Missing candles are counted over every gap (no fast test called missing_candle_count; found
by `make mutate`, docs/mutation.md)."""

from __future__ import annotations

import pandas as pd

from btc_lifecycle.domain.candles import CANDLE_COLUMNS, empty_candle_frame, missing_candle_count


def times(minutes: list[int]) -> pd.Series:
    return pd.Series([pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(minutes=m) for m in minutes])


def test_missing_candles_are_summed_over_all_gaps():
    assert missing_candle_count(times([0, 1, 4, 5, 9]), "1m") == 2 + 3


def test_a_series_without_gaps_misses_no_candle():
    assert missing_candle_count(times([0, 1, 2]), "1m") == 0


def test_the_interval_sets_what_counts_as_missing():
    assert missing_candle_count(times([0, 10, 30]), "5m") == 1 + 3


def test_an_empty_candle_frame_has_every_column_typed():
    frame = empty_candle_frame()
    assert frame.empty and list(frame.columns) == list(CANDLE_COLUMNS)
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        **{name: "float64" for name in CANDLE_COLUMNS},
        "open_time": "datetime64[ns, UTC]",
        "close_time": "datetime64[ns, UTC]",
    }
