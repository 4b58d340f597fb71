"""The paired test behind the promotion gate: Diebold–Mariano with a Newey–West standard error."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

from btc_lifecycle.modelling.paired_test import compare_losses, log_losses


def test_per_candle_log_losses_average_to_sklearns_log_loss():
    rng = np.random.default_rng(1)
    probability = rng.uniform(0.01, 0.99, 500)
    target = (rng.random(500) < probability).astype(int)
    assert log_losses(target, probability).mean() == pytest.approx(log_loss(target, probability))


def test_a_constant_gain_on_every_candle_is_certain():
    baseline = np.full(100, 0.70)
    comparison = compare_losses(baseline - 0.01, baseline)
    assert comparison.improvement == pytest.approx(0.01)
    assert comparison.p_value == 0.0


def test_a_worse_candidate_has_a_p_value_near_one():
    rng = np.random.default_rng(2)
    baseline = rng.normal(0.69, 0.05, 2_000)
    comparison = compare_losses(baseline + 0.01 + rng.normal(0, 0.01, 2_000), baseline)
    assert comparison.improvement < 0 and comparison.p_value > 0.99
    assert comparison.ci_low < comparison.improvement < comparison.ci_high < 0


def test_autocorrelated_noise_widens_the_interval():
    rng = np.random.default_rng(3)
    shocks = rng.normal(0, 0.01, 3_000)
    # A 60-candle moving sum: what overlapping feature windows do to neighbouring losses.
    correlated = np.convolve(shocks, np.ones(60) / np.sqrt(60), mode="same")
    baseline = np.full(3_000, 0.69)
    naive = compare_losses(baseline - correlated, baseline, lags=0)
    robust = compare_losses(baseline - correlated, baseline, lags=60)
    assert robust.standard_error > 3 * naive.standard_error


def test_on_pure_noise_the_test_rejects_about_as_often_as_alpha():
    rng = np.random.default_rng(4)
    rejections = sum(
        compare_losses(rng.normal(0.69, 0.05, 1_000), rng.normal(0.69, 0.05, 1_000), lags=5).p_value < 0.05
        for _ in range(400)
    )
    assert 8 <= rejections <= 36  # 5 % of 400 is 20; a binomial 99 % band


@pytest.mark.parametrize(
    "candidate, baseline, message",
    [
        (np.ones(3), np.ones(4), "pair up"),
        (np.ones(1), np.ones(1), "at least 2"),
        (np.array([1.0, np.nan]), np.ones(2), "finite"),
    ],
)
def test_bad_input_is_refused_with_the_reason(candidate, baseline, message):
    with pytest.raises(ValueError, match=message):
        compare_losses(candidate, baseline)


def test_an_improvement_exactly_at_the_margin_is_not_enough():
    baseline = np.full(100, 0.70)
    comparison = compare_losses(baseline - 0.01, baseline)
    assert comparison.significant(alpha=0.05, margin=0.009)
    assert not comparison.significant(alpha=0.05, margin=comparison.improvement)


def test_a_p_value_exactly_at_alpha_is_not_enough():
    rng = np.random.default_rng(6)
    baseline = rng.normal(0.69, 0.05, 2_000)
    comparison = compare_losses(baseline - 0.003 + rng.normal(0, 0.05, 2_000), baseline, lags=0)
    assert 0 < comparison.p_value < 0.5
    assert comparison.significant(alpha=comparison.p_value * 1.0001)
    assert not comparison.significant(alpha=comparison.p_value)
