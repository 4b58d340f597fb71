"""The classification metrics every model is scored with, on hand-computed examples."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.modelling.metrics import classification_metrics


def test_a_perfect_ranking_has_auc_one_and_low_log_loss():
    metrics = classification_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert metrics.roc_auc == 1.0 and metrics.accuracy == 1.0 and metrics.balanced_accuracy == 1.0
    assert metrics.log_loss == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.8, 0.9])))
    assert metrics.brier == pytest.approx(np.mean([0.01, 0.04, 0.04, 0.01]))


def test_auc_is_nan_when_the_test_holds_one_class():
    metrics = classification_metrics(np.array([1, 1, 1]), np.array([0.4, 0.6, 0.7]))
    assert math.isnan(metrics.roc_auc) and metrics.up_share == 1.0


def test_metrics_as_a_dict_hold_every_field():
    metrics = classification_metrics(np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.4, 0.6]))
    assert metrics.as_dict() == {
        "roc_auc": metrics.roc_auc,
        "log_loss": metrics.log_loss,
        "brier": metrics.brier,
        "accuracy": 0.5,
        "balanced_accuracy": 0.5,
        "rows": 4,
        "up_share": 0.5,
    }


def test_a_probability_of_exactly_one_half_votes_down():
    metrics = classification_metrics(np.array([0, 0, 1]), np.array([0.5, 0.5, 0.9]))
    assert metrics.accuracy == 1.0  # the two halves voted down, like their targets
    assert metrics.balanced_accuracy == 1.0


def test_a_single_candle_is_scored():
    metrics = classification_metrics(np.array([1]), np.array([0.8]))
    assert metrics.rows == 1 and metrics.accuracy == 1.0 and metrics.up_share == 1.0
    assert metrics.brier == pytest.approx(0.04, abs=1e-12)


def test_no_candle_at_all_is_refused_with_a_message():
    with pytest.raises(ValueError) as raised:
        classification_metrics(np.array([], dtype=int), np.array([]))
    assert str(raised.value) == "cannot score an empty set of candles"


def test_a_single_class_leaves_auc_and_balanced_accuracy_undefined_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn warns when asked for an AUC of one class
        metrics = classification_metrics(np.array([1, 1, 1]), np.array([0.9, 0.2, 0.6]))
    assert math.isnan(metrics.roc_auc) and math.isnan(metrics.balanced_accuracy)
    assert metrics.accuracy == pytest.approx(2 / 3)
    assert metrics.brier == pytest.approx((0.01 + 0.64 + 0.16) / 3)


def test_targets_and_probabilities_in_object_columns_are_scored_as_numbers():
    typed = classification_metrics(np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.4, 0.6]))
    untyped = classification_metrics(
        pd.Series([1, 0, 1, 0], dtype=object), pd.Series([0.9, 0.2, 0.4, 0.6], dtype=object)
    )
    assert untyped == typed
    assert isinstance(untyped.up_share, float) and isinstance(untyped.rows, int)


def test_boolean_targets_are_scored_as_zero_and_one():
    typed = classification_metrics(np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.4, 0.6]))
    assert classification_metrics(np.array([True, False, True, False]), np.array([0.9, 0.2, 0.4, 0.6])) == typed
