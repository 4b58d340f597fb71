"""The promotion gate, without MLflow: a paired test on the same held-out candles, and every
decision's reason (what a person reads beside the model version) and numbers."""

from __future__ import annotations

import numpy as np
import pytest

from btc_lifecycle.modelling.champion import (
    FIRST_CHAMPION,
    KEEP_CHAMPION,
    PROMOTE,
    REPLACE_INCOMPARABLE,
    decide_promotion,
    replace_incomparable,
)
from btc_lifecycle.modelling.paired_test import compare_losses, log_losses

CANDLES = 4_500
COIN_FLIPS = 2_000


def held_out(seed: int = 3):
    """Outcomes whose true up-probability wanders around one half, as on real minutes."""
    rng = np.random.default_rng(seed)
    truth = 0.5 + 0.08 * np.sin(np.arange(CANDLES) / 37.0) + rng.normal(0, 0.03, CANDLES)
    outcome = (rng.random(CANDLES) < truth).astype(int)
    return truth, outcome


def losses_of(probability, outcome):
    return log_losses(outcome, np.clip(probability, 0.01, 0.99))


def prior_losses(outcome):
    """The constant prior of one half on every candle."""
    return log_losses(outcome, np.full(len(outcome), 0.5))


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


# on coin flips, field by field


def outcomes(seed: int = 5) -> np.ndarray:
    return (np.random.default_rng(seed).random(COIN_FLIPS) < 0.5).astype(int)


def noisy_losses(outcome: np.ndarray) -> np.ndarray:
    """A challenger no better than the prior: its first-champion reason carries a second note."""
    probability = 0.5 + np.random.default_rng(9).normal(0, 0.02, len(outcome))
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


def sharp_losses(outcome: np.ndarray, confidence: float = 0.8) -> np.ndarray:
    """A challenger that puts ``confidence`` on the right outcome every time: it beats the prior."""
    return log_losses(outcome, np.where(outcome == 1, confidence, 1 - confidence))


def test_a_refused_challenger_keeps_the_champion_with_an_exact_reason():
    outcome = outcomes()
    prior = prior_losses(outcome)
    challenger = noisy_losses(outcome)
    challenger[3] = np.inf
    decision = decide_promotion(challenger, prior, prior)
    assert decision.promote is False
    assert decision.decision == KEEP_CHAMPION
    assert decision.reason == "challenger log loss is not finite: it is refused"


def prior_note(prior: np.ndarray, versus_prior, verdict: str) -> str:
    return f"versus the constant prior ({prior.mean():.5f}): {versus_prior.describe()}, {verdict} it at alpha=0.05"


def test_a_first_champion_that_beats_the_prior_says_so_and_nothing_more():
    outcome = outcomes()
    challenger, prior = sharp_losses(outcome), prior_losses(outcome)
    decision = decide_promotion(challenger, None, prior)
    assert decision.decision == FIRST_CHAMPION and decision.promote is True
    assert decision.versus_prior == compare_losses(challenger, prior)
    assert decision.reason == (
        "no champion yet: the first model becomes champion; " + prior_note(prior, decision.versus_prior, "beats")
    )


def test_a_first_champion_that_does_not_beat_the_prior_serves_and_says_so():
    outcome = outcomes()
    challenger, prior = noisy_losses(outcome), prior_losses(outcome)
    decision = decide_promotion(challenger, None, prior)
    assert decision.versus_prior == compare_losses(challenger, prior)
    assert decision.reason == (
        "no champion yet: the first model becomes champion; "
        + prior_note(prior, decision.versus_prior, "does not beat")
        + "; no model beats the prior yet: it serves as the least-bad answer and says so"
    )


def keep_or_promote_reason(decision, prior: np.ndarray, verdict: str, why: str, champion_note: str) -> str:
    return (
        f"{verdict}: {why}. Challenger {decision.challenger_log_loss:.5f} vs "
        f"champion {decision.champion_log_loss:.5f} on the same {len(prior)} held-out candles: "
        f"{decision.versus_champion.describe()}; challenger "
        + prior_note(prior, decision.versus_prior, "beats" if decision.challenger_beats_prior else "does not beat")
        + champion_note
    )


NOT_EITHER = "; the champion does not beat the prior on this window either"


def test_a_promotion_reason_names_the_gain_over_champion_and_prior():
    outcome = outcomes()
    challenger, prior = sharp_losses(outcome), prior_losses(outcome)
    decision = decide_promotion(challenger, noisy_losses(outcome), prior)
    assert decision.promote is True and decision.decision == PROMOTE
    assert decision.reason == keep_or_promote_reason(
        decision, prior, "promote", "it beats the champion and the prior beyond noise", NOT_EITHER
    )


def test_keeping_a_champion_that_beats_the_prior_names_the_missing_gain_and_no_champion_note():
    outcome = outcomes()
    challenger, prior = noisy_losses(outcome), prior_losses(outcome)
    decision = decide_promotion(challenger, sharp_losses(outcome), prior, margin=0.01)
    assert decision.promote is False and decision.decision == KEEP_CHAMPION
    assert decision.champion_beats_prior is True
    assert decision.reason == keep_or_promote_reason(
        decision,
        prior,
        "keep champion",
        "its gain over the champion is not beyond noise (needs p < 0.05 and more than 0.01)",
        "",
    )


def test_a_challenger_that_beats_only_the_champion_is_not_promoted():
    outcome = outcomes()
    challenger, prior = noisy_losses(outcome), prior_losses(outcome)
    bad_champion = sharp_losses(outcome, confidence=0.3)
    decision = decide_promotion(challenger, bad_champion, prior)
    assert decision.versus_champion.significant(0.05) and not decision.challenger_beats_prior
    assert decision.promote is False
    assert decision.reason == keep_or_promote_reason(
        decision, prior, "keep champion", "it beats the champion but not the constant prior", NOT_EITHER
    )


def test_every_paired_test_allows_for_as_many_correlated_neighbours_as_it_is_told():
    truth, outcome = held_out()
    champion = 0.5 + 0.3 * (truth - 0.5)
    default = decide_promotion(losses_of(truth, outcome), losses_of(champion, outcome), prior_losses(outcome))
    hourly = decide_promotion(losses_of(truth, outcome), losses_of(champion, outcome), prior_losses(outcome), lags=240)
    assert {default.versus_champion.lags, default.versus_prior.lags, default.champion_versus_prior.lags} == {61}
    assert {hourly.versus_champion.lags, hourly.versus_prior.lags, hourly.champion_versus_prior.lags} == {240}
    replaced = replace_incomparable(losses_of(truth, outcome), prior_losses(outcome), 0.05, 0.0, lags=240)
    assert replaced.versus_prior.lags == 240
