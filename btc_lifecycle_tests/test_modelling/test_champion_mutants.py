"""Replacing an incomparable champion, pinned down field by field (survivors of make mutate)."""

from __future__ import annotations

import numpy as np
import pytest

from btc_lifecycle.modelling import decide_promotion
from btc_lifecycle.modelling.champion import REPLACE_INCOMPARABLE, replace_incomparable
from btc_lifecycle.modelling.paired_test import log_losses

CANDLES = 2_000


def outcomes(seed: int = 5) -> np.ndarray:
    return (np.random.default_rng(seed).random(CANDLES) < 0.5).astype(int)


def prior_losses(outcome: np.ndarray) -> np.ndarray:
    return log_losses(outcome, np.full(CANDLES, 0.5))


def noisy_losses(outcome: np.ndarray) -> np.ndarray:
    """A challenger no better than the prior: its first-champion reason carries a second note."""
    probability = 0.5 + np.random.default_rng(9).normal(0, 0.02, CANDLES)
    return log_losses(outcome, probability)


def test_the_replacement_carries_the_challenger_and_prior_log_losses_and_the_settings():
    outcome = outcomes()
    challenger, prior = noisy_losses(outcome), prior_losses(outcome)
    decision = replace_incomparable(challenger, prior, 0.05, 0.01)
    assert decision.promote and decision.decision == REPLACE_INCOMPARABLE
    assert decision.challenger_log_loss == pytest.approx(challenger.mean())
    assert decision.prior_log_loss == pytest.approx(prior.mean())
    assert decision.champion_log_loss is None and decision.versus_champion is None
    assert decision.alpha == 0.05 and decision.margin == 0.01


def test_the_replacement_reason_keeps_everything_after_the_first_champion_sentence():
    outcome = outcomes()
    challenger, prior = noisy_losses(outcome), prior_losses(outcome)
    first = decide_promotion(challenger, None, prior, 0.05, 0.01)
    decision = replace_incomparable(challenger, prior, 0.05, 0.01)
    kept = first.reason.split("; ", 1)[1]
    assert "; no model beats the prior yet" in kept  # the reason has two notes after the first sentence
    assert decision.reason == (
        "the champion reads different features and cannot be scored on this window: the challenger replaces it; " + kept
    )


def test_a_negative_margin_is_refused_when_replacing_too():
    outcome = outcomes()
    with pytest.raises(ValueError, match="margin must not be negative"):
        replace_incomparable(noisy_losses(outcome), prior_losses(outcome), 0.05, -0.01)


def test_every_decision_records_the_alpha_and_margin_it_was_made_with():
    outcome = outcomes()
    challenger, prior = noisy_losses(outcome), prior_losses(outcome)
    for champion in (None, prior):
        decision = decide_promotion(challenger, champion, prior, alpha=0.1, margin=0.01)
        assert (decision.alpha, decision.margin) == (0.1, 0.01)
        assert (decision.numbers["alpha"], decision.numbers["margin"]) == (0.1, 0.01)


def test_a_challenger_with_a_missing_loss_is_refused_not_crashed_on():
    outcome = outcomes()
    prior = prior_losses(outcome)
    challenger = [*noisy_losses(outcome)[:-1].tolist(), None]
    decision = decide_promotion(challenger, prior, prior)
    assert not decision.promote and "not finite" in decision.reason


def test_a_prior_with_a_missing_loss_is_a_value_error():
    outcome = outcomes()
    prior = [*prior_losses(outcome)[:-1].tolist(), None]
    with pytest.raises(ValueError, match="finite"):
        decide_promotion(noisy_losses(outcome), None, prior)


def test_a_decision_against_a_champion_records_the_champion_log_loss():
    outcome = outcomes()
    challenger, prior = noisy_losses(outcome), prior_losses(outcome)
    decision = decide_promotion(challenger, prior, prior)
    assert decision.champion_log_loss == pytest.approx(prior.mean())
    assert decision.numbers["champion_log_loss"] == pytest.approx(prior.mean())
