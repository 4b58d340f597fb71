"""Metrics and the baselines every model is compared with."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.modelling.baselines import HARD_VOTE_CLIP, baseline_probabilities
from btc_lifecycle.modelling.metrics import classification_metrics


def test_a_perfect_ranking_has_auc_one_and_low_log_loss():
    metrics = classification_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert metrics.roc_auc == 1.0 and metrics.accuracy == 1.0 and metrics.balanced_accuracy == 1.0
    assert metrics.log_loss == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.8, 0.9])))
    assert metrics.brier == pytest.approx(np.mean([0.01, 0.04, 0.04, 0.01]))


def test_auc_is_nan_when_the_test_holds_one_class():
    metrics = classification_metrics(np.array([1, 1, 1]), np.array([0.4, 0.6, 0.7]))
    assert math.isnan(metrics.roc_auc) and metrics.up_share == 1.0


def test_persistence_votes_the_last_direction_with_clipped_certainty():
    test = pd.DataFrame({"log_return_1": [0.001, -0.002, 0.0]})
    probabilities = baseline_probabilities(np.array([1, 0, 0, 0]), test)
    np.testing.assert_allclose(probabilities["persistence"], [1 - HARD_VOTE_CLIP, HARD_VOTE_CLIP, HARD_VOTE_CLIP])
    np.testing.assert_allclose(probabilities["majority"], [HARD_VOTE_CLIP] * 3)
    np.testing.assert_allclose(probabilities["prior"], [0.25] * 3)
