"""The promotion gate: when a freshly trained challenger replaces the champion."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionDecision:
    """Whether to promote, why, and the numbers the decision was made on."""

    promote: bool
    reason: str
    challenger_log_loss: float
    champion_log_loss: float | None
    margin: float

    @property
    def numbers(self) -> dict[str, float | None]:
        improvement = (
            None if self.champion_log_loss is None
            else self.champion_log_loss - self.challenger_log_loss
        )
        return {
            "challenger_log_loss": self.challenger_log_loss,
            "champion_log_loss": self.champion_log_loss,
            "improvement": improvement,
            "margin": self.margin,
        }


def decide_promotion(
    challenger_log_loss: float, champion_log_loss: float | None, margin: float
) -> PromotionDecision:
    """Promote the first model, or a challenger whose held-out log loss beats the champion's
    (scored on the same window) by more than ``margin``."""
    if margin < 0:
        raise ValueError(f"margin must not be negative, got {margin}")
    if challenger_log_loss != challenger_log_loss:  # NaN never wins
        return PromotionDecision(False, "challenger log loss is NaN", challenger_log_loss,
                                 champion_log_loss, margin)
    if champion_log_loss is None:
        return PromotionDecision(True, "no champion yet: the first model becomes champion",
                                 challenger_log_loss, None, margin)
    improvement = champion_log_loss - challenger_log_loss
    verdict = "more" if improvement > margin else "not more"
    reason = (
        f"challenger log loss {challenger_log_loss:.6f} vs champion {champion_log_loss:.6f} "
        f"on the same held-out window: improvement {improvement:.6f} is {verdict} than "
        f"margin {margin:.6f}"
    )
    return PromotionDecision(improvement > margin, reason, challenger_log_loss,
                             champion_log_loss, margin)
