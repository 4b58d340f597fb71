"""Models with no learning to speak of: what the trained model has to beat on the same folds.

Majority and persistence are hard classifiers: they vote up or down. Log loss needs a
probability, so a vote becomes ``1 - HARD_VOTE_CLIP`` or ``HARD_VOTE_CLIP``. The clip is an
honest price for certainty, not a tuning knob: a hard vote that is wrong half the time earns a
log loss near 2.3, which is what such a model deserves. The prior is the fair probabilistic
baseline: its log loss is the entropy of the training target, the bar for "learned anything".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HARD_VOTE_CLIP = 0.01
BASELINE_NAMES = ("majority", "persistence", "prior")


def _vote(up: np.ndarray) -> np.ndarray:
    return np.where(up, 1.0 - HARD_VOTE_CLIP, HARD_VOTE_CLIP)


def majority_probability(train_target: np.ndarray, rows: int) -> np.ndarray:
    """Always vote for the class most frequent in training (down on a tie, like the label)."""
    return _vote(np.full(rows, np.mean(train_target) > 0.5))


def persistence_probability(features: pd.DataFrame) -> np.ndarray:
    """Vote that the next candle moves like candle t did: up iff close[t] > close[t-1]."""
    return _vote(features["log_return_1"].to_numpy(dtype="float64") > 0)


def prior_probability(train_target: np.ndarray, rows: int) -> np.ndarray:
    """The training share of up candles, for every candle."""
    return np.full(rows, float(np.mean(train_target)))


def baseline_probabilities(train_target: np.ndarray, test_features: pd.DataFrame) -> dict[str, np.ndarray]:
    """Up-probabilities of every baseline for the rows of ``test_features``."""
    rows = len(test_features)
    return {
        "majority": majority_probability(train_target, rows),
        "persistence": persistence_probability(test_features),
        "prior": prior_probability(train_target, rows),
    }
