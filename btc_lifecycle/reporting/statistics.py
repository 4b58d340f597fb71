"""The numbers an ingestion report shows: pure functions over a labeled candle frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candles import OHLCV_COLUMNS, follows_previous
from btc_lifecycle.domain.labels import LABEL_COLUMN

LOG_RETURN = "log_return"
SUMMARY_STATISTICS = ("count", "mean", "std", "min", "max")


def log_returns(candles: pd.DataFrame, interval: str) -> pd.Series:
    """ln(close / previous close), NaN for the first candle and after a gap.

    A return across a gap would mix several minutes into one and inflate the tails.
    """
    close = candles["close"].to_numpy(dtype="float64")
    returns = np.full(len(close), np.nan)
    if len(close) > 1:
        returns[1:] = np.log(close[1:] / close[:-1])
    return pd.Series(returns, index=candles.index, name=LOG_RETURN).where(
        follows_previous(candles["open_time"], interval)
    )


def summary_statistics(candles: pd.DataFrame, interval: str) -> pd.DataFrame:
    """count, mean, std, min, max of OHLCV and of the log return; one row per quantity."""
    values = candles[list(OHLCV_COLUMNS)].assign(**{LOG_RETURN: log_returns(candles, interval)})
    table = values.agg(list(SUMMARY_STATISTICS)).T
    table["count"] = table["count"].astype("int64")
    return table


def latest_candles(labeled: pd.DataFrame, count: int = 10) -> pd.DataFrame:
    """The last ``count`` candles with OHLCV and the label, oldest first."""
    return labeled[["open_time", *OHLCV_COLUMNS, LABEL_COLUMN]].tail(count).reset_index(drop=True)
