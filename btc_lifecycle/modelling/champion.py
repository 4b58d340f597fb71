"""The promotion gate: when a freshly trained challenger replaces the champion.

A challenger is promoted only when a paired test on the same held-out candles says it is better
than the champion beyond noise, and it also beats the constant prior there: a difference of a
thousandth of log loss on a few thousand minutes is noise, and can favour a challenger that is
no better than the prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from btc_lifecycle.modelling.features import LONGEST_WINDOW
from btc_lifecycle.modelling.paired_test import PairedComparison, compare_losses

# What the gate's per-candle losses may be (model.gate_metric), as its reason and reports name them.
GATE_MEASURES = {
    "log_loss": "log loss",
    "net_return": "net return after costs, acting long/short on every call (loss: minus the net return)",
}
FIRST_CHAMPION = "first_champion"
PROMOTE = "promote"
KEEP_CHAMPION = "keep_champion"
REPLACE_INCOMPARABLE = "replace_incomparable"


@dataclass(frozen=True)
class PromotionDecision:
    """Whether to promote, why, and the paired tests the decision was made on."""

    promote: bool
    decision: str
    reason: str
    challenger_log_loss: float
    champion_log_loss: float | None
    prior_log_loss: float
    versus_champion: PairedComparison | None
    versus_prior: PairedComparison | None
    champion_versus_prior: PairedComparison | None
    alpha: float
    margin: float

    @property
    def challenger_beats_prior(self) -> bool:
        return self.versus_prior is not None and self.versus_prior.significant(self.alpha)

    @property
    def champion_beats_prior(self) -> bool | None:
        if self.champion_versus_prior is None:
            return None
        return self.champion_versus_prior.significant(self.alpha)

    @property
    def serving_beats_prior(self) -> bool:
        """Whether the model that serves after this decision beats the prior on the held-out window."""
        if self.promote or self.champion_beats_prior is None:
            return self.challenger_beats_prior
        return bool(self.champion_beats_prior)

    @property
    def numbers(self) -> dict[str, float | None]:
        """Flat numbers for tags and metadata: log losses, improvements, p-values, intervals."""
        numbers: dict[str, float | None] = {
            "challenger_log_loss": self.challenger_log_loss,
            "champion_log_loss": self.champion_log_loss,
            "prior_log_loss": self.prior_log_loss,
            "alpha": self.alpha,
            "margin": self.margin,
        }
        for name, comparison in (
            ("improvement", self.versus_champion),
            ("versus_prior", self.versus_prior),
            ("champion_versus_prior", self.champion_versus_prior),
        ):
            numbers[name if name == "improvement" else f"{name}_improvement"] = (
                None if comparison is None else comparison.improvement
            )
            prefix = "" if name == "improvement" else f"{name}_"
            numbers[f"{prefix}p_value"] = None if comparison is None else comparison.p_value
            numbers[f"{prefix}ci_low"] = None if comparison is None else comparison.ci_low
            numbers[f"{prefix}ci_high"] = None if comparison is None else comparison.ci_high
        return numbers


def decide_promotion(
    challenger_losses: np.ndarray,
    champion_losses: np.ndarray | None,
    prior_losses: np.ndarray,
    alpha: float = 0.05,
    margin: float = 0.0,
    lags: int = LONGEST_WINDOW,
) -> PromotionDecision:
    """Promote the first model, or a challenger that beats the champion and the prior beyond noise.

    All losses are per candle, on the same held-out candles in the same order. ``lags``: how far
    neighbouring losses are correlated (the feature window, or a longer label horizon whose
    targets overlap).
    """
    if margin < 0:
        raise ValueError(f"margin must not be negative, got {margin}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    challenger_losses = np.asarray(challenger_losses, dtype="float64")
    prior_losses = np.asarray(prior_losses, dtype="float64")
    challenger_ll = float(challenger_losses.mean())
    prior_ll = float(prior_losses.mean())
    champion_ll = None if champion_losses is None else float(np.mean(champion_losses))

    def decision(promote: bool, kind: str, reason: str, **tests) -> PromotionDecision:
        return PromotionDecision(
            promote,
            kind,
            reason,
            challenger_ll,
            champion_ll,
            prior_ll,
            alpha=alpha,
            margin=margin,
            **{"versus_champion": None, "versus_prior": None, "champion_versus_prior": None, **tests},
        )

    if not np.isfinite(challenger_losses).all():
        return decision(False, KEEP_CHAMPION, "challenger log loss is not finite: it is refused")
    versus_prior = compare_losses(challenger_losses, prior_losses, lags)
    prior_note = (
        f"versus the constant prior ({prior_ll:.5f}): {versus_prior.describe()}, "
        f"{'beats' if versus_prior.significant(alpha) else 'does not beat'} it at alpha={alpha}"
    )
    if champion_losses is None:
        note = (
            ""
            if versus_prior.significant(alpha)
            else ("; no model beats the prior yet: it serves as the least-bad answer and says so")
        )
        return decision(
            True,
            FIRST_CHAMPION,
            f"no champion yet: the first model becomes champion; {prior_note}{note}",
            versus_prior=versus_prior,
        )
    champion_losses = np.asarray(champion_losses, dtype="float64")
    versus_champion = compare_losses(challenger_losses, champion_losses, lags)
    champion_versus_prior = compare_losses(champion_losses, prior_losses, lags)
    better = versus_champion.significant(alpha, margin)
    promote = better and versus_prior.significant(alpha)
    if promote:
        why = "it beats the champion and the prior beyond noise"
    elif not better:
        why = f"its gain over the champion is not beyond noise (needs p < {alpha} and more than {margin})"
    else:
        why = "it beats the champion but not the constant prior"
    champion_note = (
        ""
        if champion_versus_prior.significant(alpha)
        else "; the champion does not beat the prior on this window either"
    )
    reason = (
        f"{'promote' if promote else 'keep champion'}: {why}. Challenger {challenger_ll:.5f} vs "
        f"champion {champion_ll:.5f} on the same {versus_champion.candles} held-out candles: "
        f"{versus_champion.describe()}; challenger {prior_note}{champion_note}"
    )
    return decision(
        promote,
        PROMOTE if promote else KEEP_CHAMPION,
        reason,
        versus_champion=versus_champion,
        versus_prior=versus_prior,
        champion_versus_prior=champion_versus_prior,
    )


def replace_incomparable(
    challenger_losses: np.ndarray, prior_losses: np.ndarray, alpha: float, margin: float, lags: int = LONGEST_WINDOW
) -> PromotionDecision:
    """The champion reads other features and cannot be scored: a deliberate change replaces it."""
    first = decide_promotion(challenger_losses, None, prior_losses, alpha, margin, lags)
    return PromotionDecision(
        True,
        REPLACE_INCOMPARABLE,
        "the champion reads different features and cannot be scored on this window: the "
        "challenger replaces it; " + first.reason.split("; ", 1)[1],
        first.challenger_log_loss,
        None,
        first.prior_log_loss,
        None,
        first.versus_prior,
        None,
        alpha,
        margin,
    )
