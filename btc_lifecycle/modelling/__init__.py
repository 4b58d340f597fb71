"""Predicting the next candle's direction: features, walk-forward training, baselines, the gate.

Names are resolved on first use: importing the features must not load xgboost and sklearn,
which the code location would otherwise pay for on every load.
"""

from btc_lifecycle.lazy import lazy_exports

_EXPORTS = {
    "PromotionDecision": "champion",
    "decide_promotion": "champion",
    "FEATURE_COLUMNS": "features",
    "LONGEST_WINDOW": "features",
    "compute_features": "features",
    "feature_complete": "features",
    "ClassificationMetrics": "metrics",
    "classification_metrics": "metrics",
    "MODEL_NAMES": "walk_forward",
    "TooFewTrainableCandles": "walk_forward",
    "FoldResult": "walk_forward",
    "WalkForwardConfig": "walk_forward",
    "WalkForwardResult": "walk_forward",
    "predict_up_probability": "walk_forward",
    "train_walk_forward": "walk_forward",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
