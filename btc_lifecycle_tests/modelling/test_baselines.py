"""The baselines every model is compared with: the constant prior and the hard votes (majority
and persistence), pinned vote by vote."""

from __future__ import annotations

import numpy as np
import pandas as pd

from btc_lifecycle.modelling.baselines import (
    HARD_VOTE_CLIP,
    baseline_probabilities,
    majority_probability,
    persistence_probability,
)


def test_persistence_votes_the_last_direction_with_clipped_certainty():
    test = pd.DataFrame({"log_return_1": [0.001, -0.002, 0.0]})
    probabilities = baseline_probabilities(np.array([1, 0, 0, 0]), test)
    np.testing.assert_allclose(probabilities["persistence"], [1 - HARD_VOTE_CLIP, HARD_VOTE_CLIP, HARD_VOTE_CLIP])
    np.testing.assert_allclose(probabilities["majority"], [HARD_VOTE_CLIP] * 3)
    np.testing.assert_allclose(probabilities["prior"], [0.25] * 3)


def test_the_majority_votes_up_for_every_row_when_most_training_candles_went_up():
    np.testing.assert_array_equal(majority_probability(np.array([1, 1, 0]), 4), np.full(4, 0.99))


def test_the_majority_votes_down_on_a_tie():
    np.testing.assert_array_equal(majority_probability(np.array([1, 0, 1, 0]), 3), np.full(3, 0.01))


def test_the_majority_votes_down_when_most_training_candles_went_down():
    np.testing.assert_array_equal(majority_probability(np.array([0, 0, 1]), 2), np.full(2, 0.01))


def test_persistence_votes_with_the_sign_of_the_last_return():
    features = pd.DataFrame({"log_return_1": [0.002, -0.001, 0.0]})
    np.testing.assert_array_equal(persistence_probability(features), [0.99, 0.01, 0.01])


def test_persistence_reads_returns_held_in_an_object_column_as_numbers():
    features = pd.DataFrame({"log_return_1": pd.Series(["0.002", "-0.001"], dtype=object)})
    np.testing.assert_array_equal(persistence_probability(features), [0.99, 0.01])
