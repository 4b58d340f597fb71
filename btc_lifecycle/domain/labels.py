"""The seed's label: did this candle close above the previous one?"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from btc_lifecycle.domain.candles import follows_previous

LABEL_COLUMN = "price_increase_label"


def price_increase_labels(candles: pd.DataFrame, interval: str) -> pd.Series:
    """1 if close > previous close, 0 if not (ties are 0), <NA> with no adjacent previous candle.

    The first candle and the first candle after a gap have no previous minute to compare with,
    so they get no label rather than a comparison across the hole.
    """
    previous_close = candles["close"].shift(1)
    adjacent = follows_previous(candles["open_time"], interval)
    labels = (candles["close"] > previous_close).astype("Int8")
    return labels.where(adjacent, pd.NA).rename(LABEL_COLUMN)


def label_candles(candles: pd.DataFrame, interval: str) -> pd.DataFrame:
    """The candle frame with ``price_increase_label`` added."""
    return candles.assign(**{LABEL_COLUMN: price_increase_labels(candles, interval)})


@dataclass(frozen=True)
class LabelBalance:
    """How the labels of a candle frame fall: the one definition of the shares the report, the
    ingest statistics and their metadata show.

    ``up_share`` and ``not_up_share`` are of the labeled candles (they add up to 1: what a model's
    constant prior would learn); ``unlabeled_share`` is of all candles; ties are a subset of the
    0s, measured against labeled candles too.
    """

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
        return _share(self.up, self.labeled)

    @property
    def not_up_share(self) -> float:
        return _share(self.not_up, self.labeled)

    @property
    def unlabeled_share(self) -> float:
        return _share(self.unlabeled, self.candles)

    @property
    def tie_share(self) -> float:
        return _share(self.ties, self.labeled)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


def tie_mask(labeled: pd.DataFrame) -> pd.Series:
    """True where a labeled candle closed exactly at the previous close (a label exists only
    when the previous candle is adjacent, so a tie never spans a gap)."""
    return labeled["close"].eq(labeled["close"].shift(1)) & labeled[LABEL_COLUMN].notna()


def label_balance(labeled: pd.DataFrame) -> LabelBalance:
    """How many candles went up, did not, have no label, and tied the previous close."""
    labels = labeled[LABEL_COLUMN]
    return LabelBalance(
        candles=len(labeled),
        up=int(labels.eq(1).sum()),
        not_up=int(labels.eq(0).sum()),
        unlabeled=int(labels.isna().sum()),
        ties=int(tie_mask(labeled).sum()),
    )
