"""The numbers an ingestion report shows: pure functions over a labeled candle frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candles import OHLCV_COLUMNS, interval_ms
from btc_lifecycle.domain.labels import LABEL_COLUMN

LOG_RETURN = "log_return"
SUMMARY_STATISTICS = ("count", "mean", "std", "min", "max")


def adjacent_to_previous(candles: pd.DataFrame, interval: str) -> pd.Series:
    """True where the previous row is the candle one interval earlier (no gap in between)."""
    step = pd.Timedelta(milliseconds=interval_ms(interval))
    return candles["open_time"].diff() == step


def log_returns(candles: pd.DataFrame, interval: str) -> pd.Series:
    """ln(close / previous close), NaN for the first candle and after a gap.

    A return across a gap would mix several minutes into one and inflate the tails.
    """
    close = candles["close"].to_numpy(dtype="float64")
    returns = np.full(len(close), np.nan)
    if len(close) > 1:
        returns[1:] = np.log(close[1:] / close[:-1])
    return pd.Series(returns, index=candles.index, name=LOG_RETURN).where(adjacent_to_previous(candles, interval))


def summary_statistics(candles: pd.DataFrame, interval: str) -> pd.DataFrame:
    """count, mean, std, min, max of OHLCV and of the log return; one row per quantity."""
    values = candles[list(OHLCV_COLUMNS)].assign(**{LOG_RETURN: log_returns(candles, interval)})
    table = values.agg(list(SUMMARY_STATISTICS)).T
    table["count"] = table["count"].astype("int64")
    return table


@dataclass(frozen=True)
class LabelBalance:
    """Label counts; shares of up/not-up/unlabeled are of all candles, ties of labeled ones."""

    candles: int
    up: int
    not_up: int
    unlabeled: int
    ties: int

    @property
    def labeled(self) -> int:
        return self.up + self.not_up

    @property
    def up_share(self) -> float:
        return _share(self.up, self.candles)

    @property
    def not_up_share(self) -> float:
        return _share(self.not_up, self.candles)

    @property
    def unlabeled_share(self) -> float:
        return _share(self.unlabeled, self.candles)

    @property
    def tie_share(self) -> float:
        # Ties are a subset of the 0s, so they are measured against labeled candles.
        return _share(self.ties, self.labeled)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


def label_balance(labeled: pd.DataFrame, interval: str) -> LabelBalance:
    """How many candles went up, did not, have no label, and tied the previous close."""
    labels = labeled[LABEL_COLUMN]
    return LabelBalance(
        candles=len(labeled),
        up=int(labels.eq(1).sum()),
        not_up=int(labels.eq(0).sum()),
        unlabeled=int(labels.isna().sum()),
        ties=int(tie_mask(labeled, interval).sum()),
    )


def tie_mask(labeled: pd.DataFrame, interval: str) -> pd.Series:
    """True where a candle closed exactly at the previous adjacent close."""
    return labeled["close"].eq(labeled["close"].shift(1)) & adjacent_to_previous(labeled, interval)


def latest_candles(labeled: pd.DataFrame, count: int = 10) -> pd.DataFrame:
    """The last ``count`` candles with OHLCV and the label, oldest first."""
    return labeled[["open_time", *OHLCV_COLUMNS, LABEL_COLUMN]].tail(count).reset_index(drop=True)
