"""The promotion gate, without MLflow: a paired test on the same held-out candles."""

from __future__ import annotations

import numpy as np
import pytest

from btc_lifecycle.modelling import decide_promotion
from btc_lifecycle.modelling.champion import KEEP_CHAMPION, PROMOTE, replace_incomparable
from btc_lifecycle.modelling.paired_test import log_losses

CANDLES = 4_500


def held_out(seed: int = 3):
    """Outcomes whose true up-probability wanders around one half, as on real minutes."""
    rng = np.random.default_rng(seed)
    truth = 0.5 + 0.08 * np.sin(np.arange(CANDLES) / 37.0) + rng.normal(0, 0.03, CANDLES)
    outcome = (rng.random(CANDLES) < truth).astype(int)
    return truth, outcome


def losses_of(probability, outcome):
    return log_losses(outcome, np.clip(probability, 0.01, 0.99))


def prior_losses(outcome):
    return losses_of(np.full(CANDLES, 0.5), outcome)


def test_the_first_model_becomes_champion_and_says_whether_it_beats_the_prior():
    truth, outcome = held_out()
    decision = decide_promotion(losses_of(truth, outcome), None, prior_losses(outcome))
    assert decision.promote and decision.decision == "first_champion"
    assert decision.challenger_beats_prior and "beats it" in decision.reason


def test_a_first_model_no_better_than_the_prior_still_serves_and_says_so():
    _, outcome = held_out()
    noise = 0.5 + np.random.default_rng(8).normal(0, 0.02, CANDLES)
    decision = decide_promotion(losses_of(noise, outcome), None, prior_losses(outcome))
    assert decision.promote and not decision.challenger_beats_prior
    assert "no model beats the prior yet" in decision.reason
    assert not decision.serving_beats_prior


def test_a_clearly_better_challenger_is_promoted_with_its_p_value():
    truth, outcome = held_out()
    champion = 0.5 + 0.3 * (truth - 0.5)  # knows a little of the signal
    decision = decide_promotion(losses_of(truth, outcome), losses_of(champion, outcome), prior_losses(outcome))
    assert decision.promote and decision.decision == PROMOTE
    assert decision.numbers["p_value"] < 0.05
    assert decision.numbers["improvement"] == pytest.approx(
        losses_of(champion, outcome).mean() - losses_of(truth, outcome).mean()
    )
    assert decision.numbers["ci_low"] > 0


def test_a_gain_of_a_thousandth_from_noise_is_not_a_promotion():
    truth, outcome = held_out()
    rng = np.random.default_rng(21)
    champion = np.clip(truth + rng.normal(0, 0.05, CANDLES), 0.01, 0.99)
    challenger = np.clip(truth + rng.normal(0, 0.05, CANDLES), 0.01, 0.99)
    champion_losses, challenger_losses = losses_of(champion, outcome), losses_of(challenger, outcome)
    gain = champion_losses.mean() - challenger_losses.mean()
    decision = decide_promotion(challenger_losses, champion_losses, prior_losses(outcome))
    assert abs(gain) < 0.002  # what the old margin gate (0.0005) would have judged on
    assert decision.decision == KEEP_CHAMPION and not decision.promote
    assert decision.numbers["p_value"] > 0.05


def test_a_challenger_that_beats_the_champion_but_not_the_prior_is_refused():
    truth, outcome = held_out()
    worse = 1 - truth  # anti-signal: much worse than a coin
    slightly_less_bad = 0.5 + 0.5 * (worse - 0.5)
    decision = decide_promotion(losses_of(slightly_less_bad, outcome), losses_of(worse, outcome), prior_losses(outcome))
    assert decision.versus_champion.significant(0.05)
    assert not decision.promote and "not the constant prior" in decision.reason
    assert decision.champion_beats_prior is False and "either" in decision.reason


def test_the_same_model_twice_is_never_promoted():
    truth, outcome = held_out()
    same = losses_of(truth, outcome)
    decision = decide_promotion(same, same.copy(), prior_losses(outcome))
    assert not decision.promote and decision.numbers["p_value"] == pytest.approx(0.5)


def test_a_margin_is_required_on_top_of_significance():
    truth, outcome = held_out()
    champion = 0.5 + 0.3 * (truth - 0.5)
    gain = losses_of(champion, outcome).mean() - losses_of(truth, outcome).mean()
    below = decide_promotion(
        losses_of(truth, outcome), losses_of(champion, outcome), prior_losses(outcome), margin=gain * 1.01
    )
    above = decide_promotion(
        losses_of(truth, outcome), losses_of(champion, outcome), prior_losses(outcome), margin=gain * 0.99
    )
    assert not below.promote and above.promote


def test_a_non_finite_challenger_is_refused():
    _, outcome = held_out()
    losses = prior_losses(outcome)
    losses[3] = np.nan
    assert not decide_promotion(losses, prior_losses(outcome), prior_losses(outcome)).promote


def test_a_champion_that_reads_other_features_is_replaced_with_the_reason():
    truth, outcome = held_out()
    decision = replace_incomparable(losses_of(truth, outcome), prior_losses(outcome), 0.05, 0.0)
    assert decision.promote and decision.decision == "replace_incomparable"
    assert "different features" in decision.reason and decision.challenger_beats_prior


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_alpha_must_be_a_probability(alpha):
    _, outcome = held_out()
    with pytest.raises(ValueError, match="alpha"):
        decide_promotion(prior_losses(outcome), None, prior_losses(outcome), alpha=alpha)
