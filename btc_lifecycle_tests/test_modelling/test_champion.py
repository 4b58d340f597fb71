"""The promotion gate, without MLflow."""

from __future__ import annotations

import pytest

from btc_lifecycle.modelling import decide_promotion


def test_the_first_model_becomes_champion():
    decision = decide_promotion(0.69, None, margin=0.001)
    assert decision.promote and "first" in decision.reason


def test_a_clearly_better_challenger_is_promoted():
    decision = decide_promotion(0.680, 0.690, margin=0.001)
    assert decision.promote
    assert decision.numbers["improvement"] == pytest.approx(0.010)


def test_a_worse_challenger_is_refused():
    assert not decide_promotion(0.695, 0.690, margin=0.001).promote


def test_an_improvement_within_the_margin_is_refused():
    assert not decide_promotion(0.6895, 0.6900, margin=0.001).promote


def test_a_nan_challenger_is_refused():
    assert not decide_promotion(float("nan"), 0.69, margin=0.0).promote
