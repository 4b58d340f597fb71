"""Is one model's loss really lower than another's on the same candles, or is it noise?

Diebold–Mariano: the mean of the per-candle loss differences, divided by a standard error that
allows for autocorrelation (Newey–West). Minute candles share their feature windows, so
neighbouring losses are correlated for about a window's length; an i.i.d. standard error would
call noise significant. Deterministic (no resampling), so a decision can be replayed exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from btc_lifecycle.modelling.features import LONGEST_WINDOW

# Clipping as in sklearn's log_loss, so per-candle losses average to the reported log loss.
_EPSILON = np.finfo("float64").eps
_Z_95 = 1.959963984540054


@dataclass(frozen=True)
class PairedComparison:
    """How much lower ``candidate``'s mean loss is than ``baseline``'s, and how sure we are.

    ``improvement`` > 0 means the candidate is better; ``p_value`` is one-sided (H0: it is not).
    """

    improvement: float
    standard_error: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    candles: int
    lags: int

    def significant(self, alpha: float, margin: float = 0.0) -> bool:
        """Better by more than ``margin``, with a one-sided p-value below ``alpha``."""
        return self.improvement > margin and self.p_value < alpha

    def describe(self) -> str:
        return (
            f"improvement {self.improvement:+.5f} "
            f"(95% CI {self.ci_low:+.5f} .. {self.ci_high:+.5f}, p={self.p_value:.3g}, "
            f"{self.candles} candles)"
        )


def log_losses(target, up_probability) -> np.ndarray:
    """Per-candle log loss of up-probabilities against 0/1 targets."""
    target = np.asarray(target, dtype="float64")
    probability = np.clip(np.asarray(up_probability, dtype="float64"), _EPSILON, 1 - _EPSILON)
    return -(target * np.log(probability) + (1 - target) * np.log(1 - probability))


def compare_losses(candidate: np.ndarray, baseline: np.ndarray, lags: int = LONGEST_WINDOW) -> PairedComparison:
    """Diebold–Mariano on ``baseline - candidate`` per-candle losses (same candles, same order)."""
    candidate = np.asarray(candidate, dtype="float64")
    baseline = np.asarray(baseline, dtype="float64")
    if candidate.shape != baseline.shape or candidate.ndim != 1:
        raise ValueError(f"losses must pair up: {candidate.shape} vs {baseline.shape}")
    if len(candidate) < 2:
        raise ValueError(f"a paired test needs at least 2 candles, got {len(candidate)}")
    if not (np.isfinite(candidate).all() and np.isfinite(baseline).all()):
        raise ValueError("losses must be finite")
    difference = baseline - candidate
    n = len(difference)
    lags = max(0, min(lags, n - 1))
    mean = float(difference.mean())
    centred = difference - mean
    variance = float(centred @ centred) / n
    for lag in range(1, lags + 1):
        # Bartlett weights keep the long-run variance positive.
        variance += 2 * (1 - lag / (lags + 1)) * float(centred[lag:] @ centred[:-lag]) / n
    standard_error = math.sqrt(max(variance, 0.0) / n)
    if standard_error == 0.0:
        # Identical losses everywhere (the same model twice): no evidence either way unless the
        # difference is a constant non-zero amount.
        statistic = 0.0 if mean == 0 else math.copysign(math.inf, mean)
    else:
        statistic = mean / standard_error
    p_value = 0.5 * math.erfc(statistic / math.sqrt(2))  # P(Z >= statistic)
    return PairedComparison(
        improvement=mean,
        standard_error=standard_error,
        statistic=statistic,
        p_value=p_value,
        ci_low=mean - _Z_95 * standard_error,
        ci_high=mean + _Z_95 * standard_error,
        candles=n,
        lags=lags,
    )
