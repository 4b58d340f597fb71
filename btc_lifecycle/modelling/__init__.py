"""Predicting the next candle's direction: features, walk-forward training, baselines, the gate."""

from btc_lifecycle.modelling.champion import PromotionDecision, decide_promotion
from btc_lifecycle.modelling.features import (
    FEATURE_COLUMNS,
    LONGEST_WINDOW,
    compute_features,
    feature_complete,
)
from btc_lifecycle.modelling.metrics import ClassificationMetrics, classification_metrics
from btc_lifecycle.modelling.walk_forward import (
    MODEL_NAMES,
    FoldResult,
    WalkForwardConfig,
    WalkForwardResult,
    predict_up_probability,
    train_walk_forward,
)

__all__ = [
    "FEATURE_COLUMNS",
    "LONGEST_WINDOW",
    "MODEL_NAMES",
    "ClassificationMetrics",
    "FoldResult",
    "PromotionDecision",
    "WalkForwardConfig",
    "WalkForwardResult",
    "classification_metrics",
    "compute_features",
    "decide_promotion",
    "feature_complete",
    "predict_up_probability",
    "train_walk_forward",
]
