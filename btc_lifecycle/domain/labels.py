"""The seed's label: did this candle close above the previous one?"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING

from btc_lifecycle.lazy import lazy_module

if _TYPE_CHECKING:
    import pandas as pd
else:  # imported on first use: the code location loads without them
    pd = lazy_module("pandas")

from btc_lifecycle.domain.candles import interval_ms

LABEL_COLUMN = "price_increase_label"


def price_increase_labels(candles: pd.DataFrame, interval: str) -> pd.Series:
    """1 if close > previous close, 0 if not (ties are 0), <NA> with no adjacent previous candle.

    The first candle and the first candle after a gap have no previous minute to compare with,
    so they get no label rather than a comparison across the hole.
    """
    step = pd.Timedelta(milliseconds=interval_ms(interval))
    previous_close = candles["close"].shift(1)
    adjacent = candles["open_time"].diff() == step
    labels = (candles["close"] > previous_close).astype("Int8")
    return labels.where(adjacent, pd.NA).rename(LABEL_COLUMN)


def label_candles(candles: pd.DataFrame, interval: str) -> pd.DataFrame:
    """The candle frame with ``price_increase_label`` added."""
    return candles.assign(**{LABEL_COLUMN: price_increase_labels(candles, interval)})
