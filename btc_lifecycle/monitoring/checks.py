"""The drift report's two checks as pure verdicts: passed, failed, or skipped with a reason."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from btc_lifecycle.monitoring.drift import DataDriftResult, MonitoringConfig

if TYPE_CHECKING:  # performance loads sklearn; the checks only read its numbers
    from btc_lifecycle.monitoring.performance import RealizedPerformance

MetadataValue = float | int | str


@dataclass(frozen=True)
class CheckOutcome:
    """``passed`` is None when the check was skipped; metadata holds plain numbers and text."""

    passed: bool | None
    description: str
    metadata: dict[str, MetadataValue] = field(default_factory=dict)

    @property
    def skipped(self) -> bool:
        return self.passed is None


def evaluate_drift_share(result: DataDriftResult, config: MonitoringConfig) -> CheckOutcome:
    """Pass while the share of drifted monitored columns is at most the configured threshold."""
    passed = result.drift_share <= config.drift_share_threshold
    drifted = ", ".join(result.drifted_columns) or "none"
    verdict = "at most" if passed else "above"
    description = (
        f"{len(result.drifted_columns)} of {len(result.per_column)} monitored columns drifted "
        f"(share {result.drift_share:.2f}, {verdict} the threshold "
        f"{config.drift_share_threshold:.2f}); drifted: {drifted}"
    )
    metadata: dict[str, MetadataValue] = {
        "drift_share": result.drift_share,
        "drift_share_threshold": config.drift_share_threshold,
        "drifted_count": len(result.drifted_columns),
        "monitored_count": len(result.per_column),
        "drifted_columns": drifted,
        "stattest": config.stattest,
        "stattest_threshold": config.stattest_threshold,
        "reference_rows": result.reference_rows,
        "current_rows": result.current_rows,
    }
    # One score per column, so a person sees how close the green ones are to the line.
    metadata.update({f"score_{name}": column.score for name, column in result.per_column.items()})
    return CheckOutcome(passed, description, metadata)


def evaluate_realized_performance(
    realized: RealizedPerformance | None,
    champion_heldout_log_loss: float | None,
    config: MonitoringConfig,
) -> CheckOutcome:
    """Fail when realized log loss exceeds the champion's held-out one by more than the margin.

    Skipped (``passed`` None) until ``min_realized_labels`` outcomes are known, or when the
    champion has no held-out log loss to compare with.
    """
    count = 0 if realized is None else realized.n
    metadata: dict[str, MetadataValue] = {
        "realized_labels": count,
        "min_realized_labels": config.min_realized_labels,
        "performance_margin": config.performance_margin,
    }
    if champion_heldout_log_loss is None or math.isnan(champion_heldout_log_loss):
        return CheckOutcome(
            None, "skipped: the champion has no held-out log loss to compare with", metadata
        )
    metadata["champion_heldout_log_loss"] = champion_heldout_log_loss
    if realized is None or count < config.min_realized_labels:
        return CheckOutcome(
            None,
            f"skipped: {count} realized label(s), fewer than the "
            f"{config.min_realized_labels} needed to judge performance",
            metadata,
        )
    excess = realized.log_loss - champion_heldout_log_loss
    passed = excess <= config.performance_margin
    metadata.update({
        "realized_log_loss": realized.log_loss,
        "log_loss_excess": excess,
        "realized_accuracy": realized.accuracy,
        "realized_brier": realized.brier,
    })
    if realized.roc_auc is not None:
        metadata["realized_roc_auc"] = realized.roc_auc
    verdict = "within" if passed else "beyond"
    description = (
        f"realized log loss {realized.log_loss:.4f} on {count} labels vs champion held-out "
        f"{champion_heldout_log_loss:.4f}: excess {excess:+.4f} is {verdict} the margin "
        f"{config.performance_margin:.4f}"
    )
    return CheckOutcome(passed, description, metadata)
