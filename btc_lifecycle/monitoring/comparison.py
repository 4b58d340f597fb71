"""Markets side by side: each market's latest training, its gate, and how its champion did on the
candles it actually predicted, in one table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class MarketStanding:
    """What the lineage knows of one market's model: the numbers of its latest training, the gate's
    decision, and the drift report's realized performance of its champion."""

    market: str  # "BTC/USDT on binance, 1m"
    model_name: str
    champion_version: int | None = None
    walk_forward_roc_auc: float | None = None
    walk_forward_log_loss: float | None = None
    prior_log_loss: float | None = None  # the constant prior's, on the same walk-forward blocks
    gate_decision: str = "not trained"
    realized_labels: int = 0
    realized_log_loss: float | None = None
    realized_prior_log_loss: float | None = None
    realized_net_return: float | None = None
    drift_share: float | None = None
    failed_checks: tuple[str, ...] = field(default_factory=tuple)  # the drift report's, at its latest evaluation

    @property
    def excess_log_loss(self) -> float | None:
        """Walk-forward log loss minus the prior's: below 0 the model knows more than the base rate."""
        return _difference(self.walk_forward_log_loss, self.prior_log_loss)

    @property
    def realized_excess_log_loss(self) -> float | None:
        return _difference(self.realized_log_loss, self.realized_prior_log_loss)


COLUMNS = (
    "market",
    "model",
    "champion",
    "walk-forward ROC AUC",
    "walk-forward log loss",
    "prior log loss",
    "excess over prior",
    "gate",
    "realized labels",
    "realized log loss",
    "realized excess over prior",
    "realized net return",
    "drift share",
    "failed checks",
)


def comparison_frame(standings: list[MarketStanding]) -> pd.DataFrame:
    """One row per market in ``COLUMNS``; a number the lineage does not have yet is NaN."""
    rows = [
        (
            s.market,
            s.model_name,
            _version(s.champion_version),
            _number(s.walk_forward_roc_auc),
            _number(s.walk_forward_log_loss),
            _number(s.prior_log_loss),
            _number(s.excess_log_loss),
            s.gate_decision,
            s.realized_labels,
            _number(s.realized_log_loss),
            _number(s.realized_excess_log_loss),
            _number(s.realized_net_return),
            _number(s.drift_share),
            ", ".join(s.failed_checks) or "none",
        )
        for s in standings
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def comparison_rows(frame: pd.DataFrame) -> list[list[str]]:
    """The frame's cells as a person reads them: four decimals, signed excesses, a percentage."""
    formats = {
        "walk-forward ROC AUC": "{:.4f}",
        "walk-forward log loss": "{:.4f}",
        "prior log loss": "{:.4f}",
        "excess over prior": "{:+.4f}",
        "realized log loss": "{:.4f}",
        "realized excess over prior": "{:+.4f}",
        "realized net return": "{:+.2%}",
        "drift share": "{:.2f}",
    }
    return [
        [
            "—" if isinstance(value, float) and math.isnan(value) else formats.get(column, "{}").format(value)
            for column, value in zip(frame.columns, row, strict=True)
        ]
        for row in frame.itertuples(index=False)
    ]


def comparison_markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in comparison_rows(frame)]
    return "\n".join(lines)


def _difference(value: float | None, baseline: float | None) -> float | None:
    return None if value is None or baseline is None else value - baseline


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _version(version: int | None) -> str:
    return "none" if version is None else f"v{version}"
