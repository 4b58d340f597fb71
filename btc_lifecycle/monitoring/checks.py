"""The drift report's two checks as pure verdicts: passed, failed, or skipped with a reason."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from btc_lifecycle.monitoring.drift import DataDriftResult, MonitoringConfig

if TYPE_CHECKING:  # performance loads sklearn; the checks only read its numbers
    from btc_lifecycle.monitoring.performance import VersionRealized

COIN_LOG_LOSS = math.log(2)  # a fair coin's log loss, whatever the outcomes

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
    champion: VersionRealized | None, config: MonitoringConfig, version: str = ""
) -> CheckOutcome:
    """Does the champion still beat a constant prior on the candles it actually predicted?

    Fails when the champion's realized log loss exceeds its own training prior's, on exactly the
    same realized candles, by more than ``performance_margin``. Skipped (``passed`` None) until
    ``min_realized_labels`` of its predictions have a known outcome.
    """
    count = 0 if champion is None else champion.performance.n
    metadata: dict[str, MetadataValue] = {
        "champion_version": champion.version if champion else version,
        "realized_labels": count,
        "min_realized_labels": config.min_realized_labels,
        "performance_margin": config.performance_margin,
    }
    if champion is None or count < config.min_realized_labels:
        return CheckOutcome(
            None,
            f"skipped: the champion{' v' + version if version else ''} has {count} realized "
            f"label(s) since it was last validated, fewer than the {config.min_realized_labels} "
            "needed to judge it",
            metadata,
        )
    realized = champion.performance
    excess = champion.excess_over_prior
    passed = excess <= config.performance_margin
    metadata.update(
        {
            "realized_log_loss": realized.log_loss,
            "prior_log_loss": champion.prior_log_loss,
            "prior_up_share": champion.prior_up_share,
            "majority_log_loss": champion.majority_log_loss,
            "coin_log_loss": COIN_LOG_LOSS,
            "log_loss_excess_over_prior": excess,
            "realized_accuracy": realized.accuracy,
            "realized_brier": realized.brier,
            "realized_up_share": realized.up_share,
        }
    )
    if champion.versus_prior is not None:
        metadata["versus_prior_p_value"] = champion.versus_prior.p_value
    if realized.roc_auc is not None:
        metadata["realized_roc_auc"] = realized.roc_auc
    verdict = "within" if passed else "beyond"
    description = (
        f"champion v{champion.version} on its {count} realized predictions: log loss "
        f"{realized.log_loss:.4f} vs its constant prior ({champion.prior_up_share:.3f} up) "
        f"{champion.prior_log_loss:.4f} on the same candles (coin {COIN_LOG_LOSS:.4f}): excess "
        f"{excess:+.4f} is {verdict} the margin {config.performance_margin:.4f}"
    )
    return CheckOutcome(passed, description, metadata)
