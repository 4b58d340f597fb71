"""The paired test behind the promotion gate: Diebold–Mariano with a Newey–West standard error,
and its arithmetic on hand-computed examples.

Worked example: the candidate loses 0 on four candles, the baseline 0, 2, 0, 2. The differences
have mean 1 and centred values -1, 1, -1, 1: autocovariances 1 (lag 0), -3/4 (lag 1), 1/2 (lag 2).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from btc_lifecycle.modelling.paired_test import compare_losses, log_losses

EPSILON = np.finfo("float64").eps
CANDIDATE = np.zeros(4)
BASELINE = np.array([0.0, 2.0, 0.0, 2.0])


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


# the worked example and other hand-computed cases


def test_newey_west_with_one_lag_weighs_the_first_autocovariance_by_one_half():
    comparison = compare_losses(CANDIDATE, BASELINE, lags=1)
    # variance 1 + 2 * (1 - 1/2) * (-3/4) = 1/4; standard error sqrt(1/4 / 4) = 1/4.
    assert comparison.improvement == 1.0
    assert comparison.standard_error == pytest.approx(0.25, abs=1e-15)
    assert comparison.statistic == pytest.approx(4.0, abs=1e-12)
    assert comparison.p_value == pytest.approx(0.5 * math.erfc(4.0 / math.sqrt(2)), rel=1e-12)
    assert comparison.ci_low == pytest.approx(1 - 1.959963984540054 * 0.25, abs=1e-12)
    assert comparison.ci_high == pytest.approx(1 + 1.959963984540054 * 0.25, abs=1e-12)
    assert comparison.candles == 4 and comparison.lags == 1


def test_newey_west_with_two_lags_uses_bartlett_weights_two_thirds_and_one_third():
    comparison = compare_losses(CANDIDATE, BASELINE, lags=2)
    # variance 1 + 2 * (2/3) * (-3/4) + 2 * (1/3) * (1/2) = 1/3; standard error sqrt(1/12).
    assert comparison.standard_error == pytest.approx(math.sqrt(1 / 12), abs=1e-12)
    assert comparison.statistic == pytest.approx(math.sqrt(12), abs=1e-12)
    assert comparison.p_value == pytest.approx(0.5 * math.erfc(math.sqrt(12) / math.sqrt(2)), rel=1e-9)
    assert comparison.lags == 2


def test_without_lags_the_standard_error_is_the_iid_one():
    comparison = compare_losses(CANDIDATE, BASELINE, lags=0)
    assert comparison.lags == 0
    assert comparison.standard_error == pytest.approx(0.5, abs=1e-15)  # sqrt(1 / 4)
    assert comparison.statistic == pytest.approx(2.0, abs=1e-12)
    assert comparison.p_value == pytest.approx(0.022750131948179195, rel=1e-12)  # P(Z >= 2)


def test_lags_are_capped_at_one_less_than_the_number_of_candles():
    assert compare_losses(CANDIDATE, BASELINE, lags=60).lags == 3
    assert compare_losses(CANDIDATE, BASELINE).lags == 3
    assert compare_losses(CANDIDATE, BASELINE, lags=3).lags == 3


def test_a_statistic_of_zero_has_a_p_value_of_one_half():
    comparison = compare_losses(np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0, 1.0]), lags=0)
    assert comparison.improvement == 0.0 and comparison.statistic == 0.0
    assert comparison.p_value == 0.5


def test_identical_losses_give_no_evidence_either_way():
    losses = np.full(10, 0.69)
    comparison = compare_losses(losses, losses)
    assert comparison.standard_error == 0.0 and comparison.improvement == 0.0
    assert comparison.statistic == 0.0
    assert comparison.p_value == 0.5
    assert comparison.candles == 10 and comparison.lags == 9


def test_a_constant_gain_of_exactly_one_is_infinitely_significant():
    comparison = compare_losses(np.zeros(5), np.ones(5))
    assert comparison.improvement == 1.0 and comparison.standard_error == 0.0
    assert comparison.statistic == math.inf and comparison.p_value == 0.0


def test_a_constant_loss_is_infinitely_insignificant():
    comparison = compare_losses(np.ones(5), np.zeros(5))
    assert comparison.statistic == -math.inf and comparison.p_value == 1.0


@pytest.mark.parametrize("side", ["candidate", "baseline"])
def test_losses_held_in_an_object_column_are_compared_as_numbers(side):
    losses = {"candidate": CANDIDATE, "baseline": BASELINE}
    losses[side] = pd.Series(losses[side].tolist(), dtype=object)
    comparison = compare_losses(losses["candidate"], losses["baseline"], lags=1)
    assert comparison.improvement == 1.0
    assert comparison.standard_error == pytest.approx(0.25, abs=1e-15)


def test_non_finite_losses_are_refused_with_a_message():
    with pytest.raises(ValueError, match=r"^losses must be finite$"):
        compare_losses(np.array([0.1, math.inf]), np.array([0.1, 0.2]))


def test_certain_and_impossible_probabilities_are_clipped_like_sklearn():
    losses = log_losses([1, 0, 0, 1], [0.0, 1.0, 0.0, 1.0])
    assert np.all(np.isfinite(losses))
    assert losses[0] == pytest.approx(-math.log(EPSILON), rel=1e-12)
    assert losses[1] == pytest.approx(-math.log(EPSILON), rel=1e-9)
    assert losses[2] == pytest.approx(-math.log(1 - EPSILON), abs=1e-15)
    assert losses[3] == pytest.approx(-math.log(1 - EPSILON), abs=1e-15)


def test_targets_and_probabilities_held_in_object_columns_are_read_as_numbers():
    target = pd.Series([1, 0, 1], dtype=object)
    probability = pd.Series([0.8, 0.25, 0.5], dtype=object)
    losses = log_losses(target, probability)
    assert losses.dtype == np.float64
    assert losses == pytest.approx([-math.log(0.8), -math.log(0.75), -math.log(0.5)], rel=1e-12)


def test_boolean_targets_count_as_one_and_zero():
    losses = log_losses(np.array([True, False]), np.array([0.8, 0.25]))
    assert losses == pytest.approx([-math.log(0.8), -math.log(0.75)], rel=1e-12)
