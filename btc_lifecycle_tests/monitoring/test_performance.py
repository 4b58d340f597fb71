"""Realized performance: the project's metric definitions, agreeing with evidently's; the realized
pairs; each version judged on exactly its own predictions; the judged window; the online answers
joined to the batch predictions."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.modelling.backtest import TradingCosts
from btc_lifecycle.modelling.baselines import HARD_VOTE_CLIP
from btc_lifecycle.modelling.metrics import DECISION_THRESHOLD
from btc_lifecycle.monitoring.performance import (
    classification_snapshot,
    judged_predictions,
    realized_by_version,
    realized_net_returns,
    realized_pairs,
    realized_performance,
    snapshot_metrics,
    with_online_predictions,
)


def probabilities_and_outcomes(count: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    probability = rng.uniform(0.35, 0.65, count)
    return probability, (rng.random(count) < probability).astype(int)


def test_realized_numbers_agree_with_evidentlys_classification_report():
    probability, outcome = probabilities_and_outcomes(1_000)
    realized = realized_performance(probability, outcome)
    evidently_numbers = snapshot_metrics(classification_snapshot(probability, outcome))
    assert realized.n == 1_000
    assert realized.roc_auc == pytest.approx(evidently_numbers["RocAuc"])
    assert realized.log_loss == pytest.approx(evidently_numbers["LogLoss"])
    assert realized.accuracy == pytest.approx(evidently_numbers["Accuracy"])


def test_unknown_outcomes_are_left_out_and_one_class_has_no_auc():
    realized = realized_performance([0.6, 0.7, 0.4], [1, None, 1])
    assert realized.n == 2
    assert realized.roc_auc is None
    assert realized.log_loss == pytest.approx(-np.mean(np.log([0.6, 0.4])))


def test_no_realized_pair_gives_none():
    assert realized_performance([0.5, 0.5], [None, None]) is None


def test_probabilities_and_outcomes_must_pair_up():
    with pytest.raises(ValueError, match="2 probabilities but 3 outcomes"):
        realized_performance([0.5, 0.5], [1, 0, 1])


def two_versions_in_one_window():
    """Version 1 served the first 1,000 candles well; version 2 the next 1,000 badly."""
    rng = np.random.default_rng(5)
    truth = rng.uniform(0.3, 0.7, 2_000)
    outcome = (rng.random(2_000) < truth).astype(int)
    good = truth[:1_000]
    bad = 1 - truth[1_000:]
    return pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=2_000, freq="min", tz="UTC"),
            "up_probability": np.concatenate([good, bad]),
            "model_version": ["1"] * 1_000 + ["2"] * 1_000,
            "realized_label": pd.array(outcome, dtype="Int8"),
        }
    ), outcome


def test_each_version_is_judged_only_on_the_predictions_it_made():
    rows, outcome = two_versions_in_one_window()
    judged = realized_by_version(rows, {"1": 0.5, "2": 0.55})
    assert set(judged) == {"1", "2"}
    assert judged["1"].performance.n == judged["2"].performance.n == 1_000
    assert judged["1"].performance.log_loss == pytest.approx(
        realized_performance(rows["up_probability"][:1_000], outcome[:1_000]).log_loss
    )
    assert judged["1"].excess_over_prior < 0 < judged["2"].excess_over_prior


def test_baselines_are_scored_on_exactly_the_same_candles():
    rows, outcome = two_versions_in_one_window()
    judged = realized_by_version(rows, {"1": 0.5, "2": 0.55})["2"]
    later = outcome[1_000:]
    expected_prior = -np.mean(later * np.log(0.55) + (1 - later) * np.log(0.45))
    assert judged.prior_log_loss == pytest.approx(expected_prior)
    assert judged.prior_up_share == 0.55
    # Majority votes up (prior above one half), clipped: wrong on every down candle.
    expected_majority = -np.mean(later * np.log(0.99) + (1 - later) * np.log(0.01))
    assert judged.majority_log_loss == pytest.approx(expected_majority)
    assert judged.versus_prior.improvement == pytest.approx(judged.prior_log_loss - judged.performance.log_loss)


def test_a_version_without_a_recorded_prior_is_held_to_a_coin():
    rows, _ = two_versions_in_one_window()
    judged = realized_by_version(rows, {"1": None})
    assert judged["1"].prior_up_share == 0.5 and judged["2"].prior_up_share == 0.5


def test_unrealized_predictions_are_not_judged():
    rows, _ = two_versions_in_one_window()
    rows.loc[rows.index[-300:], "realized_label"] = pd.NA
    assert realized_by_version(rows, {})["2"].performance.n == 700


def test_the_champions_predictions_before_its_latest_validation_are_not_judged_again():
    rows, _ = two_versions_in_one_window()
    validated_until = rows["open_time"].iloc[1_499]
    window = judged_predictions(
        rows, rows["open_time"].iloc[100], champion_version="2", champion_validated_until=validated_until
    )
    assert window.loc[window["model_version"] == "1", "open_time"].min() == rows["open_time"].iloc[100]
    assert window.loc[window["model_version"] == "2", "open_time"].min() == rows["open_time"].iloc[1_500]
    assert len(window) == 900 + 500


# hand-laid predictions
START = pd.Timestamp("2024-01-01", tz="UTC")


def minute(n: int) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=n)


# judged_predictions


def test_no_stored_predictions_gives_an_empty_window_with_the_prediction_columns():
    window = judged_predictions(None, START, "1", START)
    assert window.empty
    assert list(window.columns) == ["open_time", "up_probability", "model_version", "realized_label"]


def test_the_judged_window_is_renumbered_from_zero():
    rows = pd.DataFrame(
        {
            "open_time": [minute(n) for n in range(6)],
            "up_probability": 0.5,
            "model_version": "2",
            "predicted_at": minute(10),
            "realized_label": pd.array([1, 0, 1, 0, 1, 0], dtype="Int8"),
        }
    )
    window = judged_predictions(rows, minute(1), champion_version="2", champion_validated_until=minute(2))
    assert list(window.index) == [0, 1, 2]
    assert list(window.columns) == ["open_time", "up_probability", "model_version", "realized_label"]
    assert list(window["open_time"]) == [minute(3), minute(4), minute(5)]


# RealizedPerformance.as_dict


def test_realized_performance_as_a_dict_holds_every_field():
    performance = realized_performance(np.array([0.9, 0.2, 0.4, 0.6]), np.array([1, 0, 1, 0]))
    assert performance.as_dict() == {field.name: getattr(performance, field.name) for field in fields(performance)}
    assert performance.as_dict()["n"] == 4


# realized_by_version


def realized_rows(version: str, probabilities: list[float], labels: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open_time": [minute(n) for n in range(len(labels))],
            "up_probability": probabilities,
            "model_version": version,
            "realized_label": pd.array(labels, dtype="Int8"),
        }
    )


def test_versions_come_back_in_order_each_named_after_itself():
    rows = pd.concat([realized_rows("2", [0.6, 0.4], [1, 0]), realized_rows("1", [0.7, 0.3], [1, 0])])
    judged = realized_by_version(rows, {})
    assert list(judged) == ["1", "2"]
    assert [entry.version for entry in judged.values()] == ["1", "2"]


def test_a_version_without_a_usable_prediction_does_not_hide_the_next():
    rows = pd.concat([realized_rows("1", [np.nan, np.nan], [1, 0]), realized_rows("2", [0.6, 0.4], [1, 0])])
    assert list(realized_by_version(rows, {})) == ["2"]


def test_two_realized_candles_are_enough_for_the_paired_test_and_one_is_not():
    assert realized_by_version(realized_rows("1", [0.6, 0.4], [1, 0]), {})["1"].versus_prior is not None
    assert realized_by_version(realized_rows("1", [0.6], [1]), {})["1"].versus_prior is None


def test_a_prior_of_one_half_votes_down():
    judged = realized_by_version(realized_rows("1", [0.6, 0.4], [1, 1]), {"1": 0.5})["1"]
    # The majority vote of a 0.5 prior is "down": both up candles are scored as clipped misses.
    assert judged.majority_log_loss == pytest.approx(-np.log(HARD_VOTE_CLIP))


# realized_pairs


def test_probabilities_come_back_as_floats_even_when_given_as_integers():
    probability, outcome = realized_pairs([0, 1, 1], [0, 1, 0])
    assert probability.dtype == np.float64 and probability.tolist() == [0.0, 1.0, 1.0]
    assert outcome.dtype == np.int64 and outcome.tolist() == [0, 1, 0]


def test_nullable_boolean_outcomes_count_as_0_and_1_and_their_gaps_as_unknown():
    probability, outcome = realized_pairs([0.6, 0.4, 0.5], pd.array([True, pd.NA, False], dtype="boolean"))
    assert probability.tolist() == [0.6, 0.5] and outcome.tolist() == [1, 0]


def test_a_value_that_is_not_a_number_is_an_unknown_pair_not_an_error():
    probability, outcome = realized_pairs([0.6, "n/a", 0.4], [1, 0, "?"])
    assert probability.tolist() == [0.6] and outcome.tolist() == [1]


def test_probabilities_of_exactly_0_and_1_are_valid():
    probability, outcome = realized_pairs([0.0, 1.0], [0, 1])
    assert probability.tolist() == [0.0, 1.0] and outcome.tolist() == [0, 1]


@pytest.mark.parametrize("probability", [-0.1, 1.5, 1.0001])
def test_a_probability_outside_0_to_1_is_rejected_with_the_range(probability):
    with pytest.raises(ValueError) as raised:
        realized_pairs([0.5, probability], [1, 0])
    assert str(raised.value) == "probabilities must lie in [0, 1]"


def test_an_outcome_other_than_0_or_1_is_rejected():
    with pytest.raises(ValueError) as raised:
        realized_pairs([0.5, 0.5], [1, 2])
    assert str(raised.value) == "outcomes must be 0 or 1"


def test_realized_performance_reports_the_brier_score_and_the_up_share():
    performance = realized_performance([0.9, 0.2, 0.4, 0.6, 0.7], [1, 0, 1, 0, 1])
    assert performance.brier == pytest.approx((0.01 + 0.04 + 0.36 + 0.36 + 0.09) / 5)
    assert performance.up_share == pytest.approx(3 / 5)


# judged_predictions keeps the source column


def test_the_judged_window_keeps_the_source_column_when_there_is_one():
    rows = realized_rows("2", [0.6, 0.4], [1, 0]).assign(source=["batch", "online"])
    window = judged_predictions(rows, START, champion_version="1", champion_validated_until=START)
    assert list(window.columns) == ["open_time", "up_probability", "model_version", "realized_label", "source"]
    assert window["source"].tolist() == ["batch", "online"]


# classification_snapshot


def test_the_classification_report_refuses_outcomes_of_one_class():
    with pytest.raises(ValueError) as raised:
        classification_snapshot([0.6, 0.7], [1, 1])
    assert str(raised.value) == "the classification report needs both up and not-up outcomes"


# with_online_predictions


def truth(minutes: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"open_time": [minute(n) for n in range(minutes)], "target": pd.array([n % 2 for n in range(minutes)], "Int8")}
    )


def answers(candles: list[int], version: str, served_at: list[pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "served_at": served_at,
            "open_time": [minute(n) for n in candles],
            "model_version": version,
            "up_probability": [0.5 + n / 100 for n in range(len(candles))],
        }
    )


ONLINE_COLUMNS = ["open_time", "up_probability", "model_version", "predicted_at", "realized_label", "source"]


def test_answers_served_in_the_same_instant_count_in_the_order_they_were_logged():
    # 20 answers in one second for two candles: the first logged for each candle counts.
    served = answers([n % 2 for n in range(20)], "1", [minute(30)] * 20)
    combined = with_online_predictions(None, served, truth(5))
    assert combined["open_time"].tolist() == [minute(0), minute(1)]
    assert combined["up_probability"].tolist() == [0.5, 0.51]
    assert list(combined.columns) == ONLINE_COLUMNS and list(combined.index) == [0, 1]
    assert combined["predicted_at"].tolist() == [minute(30)] * 2
    assert combined["realized_label"].tolist() == [0, 1]


def test_batch_rows_come_before_online_rows_of_the_same_candle():
    stored = realized_rows("1", [0.6] * 10, [n % 2 for n in range(10)]).assign(predicted_at=minute(30))
    served = answers(list(range(10)), "2", [minute(n) for n in range(10)])
    combined = with_online_predictions(stored, served, truth(10))
    assert list(combined.columns) == [*stored.columns, "source"] and list(combined.index) == list(range(20))
    assert combined["open_time"].tolist() == [minute(n // 2) for n in range(20)]
    assert combined["source"].tolist() == ["batch", "online"] * 10
    assert combined["model_version"].tolist() == ["1", "2"] * 10


def test_without_any_answer_served_the_batch_rows_are_judged_alone_or_nothing_is():
    stored = realized_rows("1", [0.6] * 4, [1, 0, 1, 0])
    for served in (None, answers([], "1", [])):
        alone = with_online_predictions(stored, served, truth(4))
        pd.testing.assert_frame_equal(alone, stored.assign(source="batch"))
        assert with_online_predictions(None, served, truth(4)) is None


def test_an_answer_for_a_candle_its_version_scored_in_batch_counts_once_as_the_batch_row():
    # The batch log holds versions as integers here, the service as text: the same version.
    stored = realized_rows("1", [0.6] * 4, [1, 0, 1, 0]).assign(model_version=1)
    served = answers([2, 3], "1", [minute(10), minute(11)])
    combined = with_online_predictions(stored, served, truth(4))
    assert combined["source"].tolist() == ["batch"] * 4
    assert combined["open_time"].tolist() == [minute(n) for n in range(4)]


def test_the_classification_report_classifies_at_the_projects_decision_threshold():
    snapshot = classification_snapshot([0.9, 0.2, 0.4, 0.6, 0.7, 0.3], [1, 0, 1, 0, 1, 0]).dict()
    thresholds = {metric["config"].get("probas_threshold", "absent") for metric in snapshot["metrics"]}
    assert thresholds - {"absent"} == {DECISION_THRESHOLD}


def test_each_versions_realized_net_return_is_what_its_calls_earned_after_costs():
    times = pd.date_range("2024-01-01", periods=5, freq="1min", tz="UTC")
    features = pd.DataFrame({"open_time": times, "close": [100.0, 101.0, 100.0, 100.0, 102.0]})
    predictions = pd.DataFrame(
        {
            "open_time": times[:4],
            "up_probability": [0.6, 0.4, 0.6, 0.6],
            "model_version": ["1", "1", "2", "2"],
            "realized_label": pd.array([1, 0, 0, pd.NA], dtype="Int8"),
        }
    )
    earned = realized_net_returns(predictions, features, TradingCosts(taker_fee_bps=10))
    # Version 1: long 100 -> 101, then short 101 -> 100: in, a flip and out, four sides of 10 bps.
    expected_one = (1 + 0.01 - 10e-4) * (1 + (1 - 100 / 101) - 20e-4 - 10e-4) - 1
    assert earned["1"] == pytest.approx(expected_one)
    # Version 2's only realized call is long over a flat minute: it pays its way in and out.
    assert earned["2"] == pytest.approx(-20e-4)
