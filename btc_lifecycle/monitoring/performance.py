"""How the champion does on predictions whose outcome has since become known."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from btc_lifecycle.modelling.backtest import TradingCosts, net_returns, next_returns
from btc_lifecycle.modelling.baselines import HARD_VOTE_CLIP
from btc_lifecycle.modelling.paired_test import PairedComparison, compare_losses, log_losses

TARGET_COLUMN = "target"
PREDICTION_COLUMN = "prediction"
# Where a judged prediction comes from: the predictions asset, or an answer of the online service.
SOURCE_COLUMN, BATCH, ONLINE = "source", "batch", "online"


@dataclass(frozen=True)
class RealizedPerformance:
    """Metrics of ``n`` up-probabilities against their realized 0/1 outcomes."""

    roc_auc: float | None  # None when the outcomes hold one class only
    log_loss: float
    accuracy: float
    brier: float
    n: int
    up_share: float

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def realized_pairs(probabilities, outcomes) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and 0/1 outcomes as arrays, keeping the pairs where both are known."""
    probability = pd.to_numeric(pd.Series(probabilities), errors="coerce").to_numpy("float64")
    outcome = pd.to_numeric(pd.Series(outcomes), errors="coerce").to_numpy("float64")
    if len(probability) != len(outcome):
        raise ValueError(f"{len(probability)} probabilities but {len(outcome)} outcomes: they must pair up")
    known = np.isfinite(probability) & np.isfinite(outcome)
    probability, outcome = probability[known], outcome[known]
    if ((probability < 0) | (probability > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    if not np.isin(outcome, (0.0, 1.0)).all():
        raise ValueError("outcomes must be 0 or 1")
    return probability, outcome.astype("int64")


def realized_performance(probabilities, outcomes) -> RealizedPerformance | None:
    """ROC AUC, log loss, accuracy (up when p > 0.5) and Brier; None without a realized pair.

    The numbers come from the project's own metric definitions (sklearn), the ones the
    champion's held-out log loss was computed with, so the two can be compared.
    """
    from btc_lifecycle.modelling.metrics import classification_metrics  # loads sklearn

    probability, outcome = realized_pairs(probabilities, outcomes)
    if len(outcome) == 0:
        return None
    metrics = classification_metrics(outcome, probability)
    return RealizedPerformance(
        roc_auc=None if np.isnan(metrics.roc_auc) else metrics.roc_auc,
        log_loss=metrics.log_loss,
        accuracy=metrics.accuracy,
        brier=metrics.brier,
        n=metrics.rows,
        up_share=metrics.up_share,
    )


@dataclass(frozen=True)
class VersionRealized:
    """One model version judged only on the predictions it made, beside baselines scored on
    exactly those candles: its own training prior, the majority vote, and a fair coin."""

    version: str
    performance: RealizedPerformance
    prior_up_share: float
    prior_log_loss: float
    majority_log_loss: float
    versus_prior: PairedComparison | None  # None with fewer than two candles

    @property
    def excess_over_prior(self) -> float:
        """How much worse than its constant prior the version did (negative: better)."""
        return self.performance.log_loss - self.prior_log_loss


def judged_predictions(
    predictions: pd.DataFrame | None,
    window_start: pd.Timestamp,
    champion_version: str,
    champion_validated_until: pd.Timestamp,
) -> pd.DataFrame:
    """Predictions from ``window_start`` on, minus the champion's up to its latest validation.

    A kept champion was just judged on a challenger's held-out window, a larger and fresher test
    than the live predictions it overlaps; counting them again would re-raise the alarm the
    retraining settled. Other versions keep all their predictions in the window.
    """
    columns = ["open_time", "up_probability", "model_version", "realized_label"]
    if predictions is None:
        return pd.DataFrame(columns=columns)
    if SOURCE_COLUMN in predictions:
        columns.append(SOURCE_COLUMN)
    rows = predictions.loc[predictions["open_time"] >= window_start, columns]
    stale = (rows["model_version"].astype(str) == str(champion_version)) & (
        rows["open_time"] <= champion_validated_until
    )
    return rows.loc[~stale].reset_index(drop=True)


def with_online_predictions(
    batch: pd.DataFrame | None, online: pd.DataFrame | None, features: pd.DataFrame
) -> pd.DataFrame | None:
    """The batch predictions and the online service's, judged alike: each candle once per model
    version, a ``source`` column saying which, the truth joined from ``features``' target.

    The service answers every request, so it may score a candle many times: the first answer of
    a version counts. A candle that version also scored in batch counts once, as the batch row
    (same model, same features: the same probability, and the batch row is the one of record).
    Two versions scoring one candle stay two rows: each version is judged on its own.
    """
    from btc_lifecycle.modelling.predictions import with_realized_labels

    if online is None or online.empty:
        return None if batch is None else batch.assign(**{SOURCE_COLUMN: BATCH})
    served = online.sort_values("served_at", kind="stable").assign(model_version=online["model_version"].astype(str))
    served = served.drop_duplicates(["open_time", "model_version"], keep="first").reset_index(drop=True)
    served = pd.DataFrame(
        {
            "open_time": served["open_time"],
            "up_probability": served["up_probability"].astype("float64"),
            "model_version": served["model_version"],
            "predicted_at": served["served_at"],
            "realized_label": pd.array([pd.NA] * len(served), dtype="Int8"),
            SOURCE_COLUMN: ONLINE,
        }
    )
    if batch is not None and not batch.empty:
        scored = pd.MultiIndex.from_arrays([batch["open_time"], batch["model_version"].astype(str)])
        also_batch = pd.MultiIndex.from_arrays([served["open_time"], served["model_version"]]).isin(scored)
        served = served.loc[~also_batch]
    served = with_realized_labels(served, features)
    if batch is None or batch.empty:
        return served.reset_index(drop=True)
    combined = pd.concat([batch.assign(**{SOURCE_COLUMN: BATCH}), served], ignore_index=True)
    return combined.sort_values("open_time", kind="stable").reset_index(drop=True)


def realized_by_version(
    predictions: pd.DataFrame, prior_up_shares: Mapping[str, float | None]
) -> dict[str, VersionRealized]:
    """Each version's realized predictions (``model_version``, ``up_probability``,
    ``realized_label``) judged on their own; a version without a known prior is held to a coin."""
    judged = {}
    known = predictions.loc[predictions["realized_label"].notna()]
    for version, rows in known.groupby(known["model_version"].astype(str), sort=True):
        probability, outcome = realized_pairs(rows["up_probability"], rows["realized_label"])
        performance = realized_performance(probability, outcome)
        if performance is None:
            continue
        share = prior_up_shares.get(version)
        prior = 0.5 if share is None else float(share)
        model_losses = log_losses(outcome, probability)
        prior_losses = log_losses(outcome, np.full(len(outcome), prior))
        vote = 1 - HARD_VOTE_CLIP if prior > 0.5 else HARD_VOTE_CLIP
        judged[version] = VersionRealized(
            version=version,
            performance=performance,
            prior_up_share=prior,
            prior_log_loss=float(prior_losses.mean()),
            majority_log_loss=float(log_losses(outcome, np.full(len(outcome), vote)).mean()),
            versus_prior=compare_losses(model_losses, prior_losses) if len(outcome) >= 2 else None,
        )
    return judged


def classification_snapshot(probabilities, outcomes) -> Any:
    """evidently's ClassificationPreset over the realized pairs: the report's performance page.

    Needs both classes among the outcomes (ROC AUC is undefined otherwise).
    """
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    from btc_lifecycle.modelling.metrics import DECISION_THRESHOLD

    probability, outcome = realized_pairs(probabilities, outcomes)
    if len(np.unique(outcome)) < 2:
        raise ValueError("the classification report needs both up and not-up outcomes")
    frame = pd.DataFrame({TARGET_COLUMN: outcome, PREDICTION_COLUMN: probability})
    definition = DataDefinition(
        numerical_columns=[PREDICTION_COLUMN],
        categorical_columns=[TARGET_COLUMN],
        classification=[
            BinaryClassification(
                target=TARGET_COLUMN,
                prediction_probas=PREDICTION_COLUMN,
                pos_label=1,
            )
        ],
    )
    preset = ClassificationPreset(probas_threshold=DECISION_THRESHOLD)
    return Report([preset]).run(Dataset.from_pandas(frame, data_definition=definition), None)


def snapshot_metrics(snapshot: Any) -> dict[str, float]:
    """evidently's headline classification numbers by name (``RocAuc``, ``LogLoss``, ...)."""
    values = {}
    for metric in snapshot.dict()["metrics"]:
        name = metric["metric_name"].split("(", 1)[0]
        if isinstance(metric["value"], (int, float)):
            values[name] = float(metric["value"])
    return values


def realized_net_returns(
    predictions: pd.DataFrame, features: pd.DataFrame, costs: TradingCosts, horizon: int = 1
) -> dict[str, float]:
    """Each version's compounded net return of acting long/short on its realized calls, in time
    order and after ``costs``: what its calls would have earned, next to its log loss."""
    prices = features[["open_time", "close"]].sort_values("open_time").reset_index(drop=True)
    prices["next_return"] = next_returns(prices["close"])
    known = predictions.loc[predictions["realized_label"].notna(), ["open_time", "up_probability", "model_version"]]
    priced = known.merge(prices[["open_time", "next_return"]], on="open_time", how="inner").sort_values("open_time")
    earned = {}
    for version, rows in priced.groupby(priced["model_version"].astype(str), sort=True):
        returns = net_returns(rows["up_probability"].to_numpy(), rows["next_return"].to_numpy(), costs, horizon)
        earned[version] = float(np.prod(1 + returns) - 1)
    return earned
