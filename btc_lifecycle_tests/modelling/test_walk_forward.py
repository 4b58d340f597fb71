"""Walk-forward: training before testing with an embargo, baselines on the same folds, no leak."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from xgboost import XGBClassifier

from btc_lifecycle.modelling import (
    LONGEST_WINDOW,
    MODEL_NAMES,
    TooFewTrainableCandles,
    WalkForwardConfig,
    compute_features,
    predict_up_probability,
    train_walk_forward,
)
from btc_lifecycle.modelling.metrics import classification_metrics
from btc_lifecycle.modelling.walk_forward import data_fingerprint
from btc_lifecycle_tests.modelling.conftest import FAST_CONFIG, mean_reverting_candles

EMBARGO = pd.Timedelta(minutes=FAST_CONFIG.embargo_candles)


@pytest.fixture(scope="module")
def random_walk_result(random_walk_candles):
    return train_walk_forward(compute_features(random_walk_candles, "1m"), FAST_CONFIG)


def _permuted_target(features: pd.DataFrame, seed: int) -> pd.DataFrame:
    permuted = features.copy()
    rows = permuted.index[permuted["trainable"]]
    values = permuted.loc[rows, "target"].to_numpy()
    permuted.loc[rows, "target"] = np.random.default_rng(seed).permutation(values)
    return permuted


def test_training_ends_an_embargo_before_each_test_block(random_walk_result):
    result = random_walk_result
    assert len(result.folds) == FAST_CONFIG.n_folds
    for fold in result.folds:
        assert fold.train_end + EMBARGO <= fold.test_start
    for earlier, later in itertools.pairwise(result.folds):
        assert earlier.test_end < later.test_start
        assert later.train_rows > earlier.train_rows  # expanding window
    assert result.training_range[1] + EMBARGO <= result.heldout_range[0]
    assert result.folds[-1].test_end < result.heldout_range[0]


def test_rolling_window_keeps_the_training_block_the_same_length(random_walk_candles):
    config = WalkForwardConfig(
        n_folds=3, train_window="rolling", rolling_train_candles=5_000, n_estimators=10, n_jobs=1
    )
    result = train_walk_forward(compute_features(random_walk_candles, "1m"), config)
    assert {fold.train_rows for fold in result.folds[1:]} == {5_000}
    for fold in result.folds:
        assert fold.train_end + EMBARGO <= fold.test_start


def test_a_random_walk_is_not_predictable(random_walk_result):
    assert abs(random_walk_result.overall["xgboost"].roc_auc - 0.5) < 0.03
    assert abs(random_walk_result.heldout_metrics["xgboost"].roc_auc - 0.5) < 0.03


def test_every_model_is_scored_on_every_fold_and_the_held_out_window(random_walk_result):
    result = random_walk_result
    for metrics in [result.overall, result.heldout_metrics, *(f.metrics for f in result.folds)]:
        assert set(metrics) == set(MODEL_NAMES)
    assert result.overall["xgboost"].rows == sum(fold.test_rows for fold in result.folds)
    assert result.heldout_metrics["prior"].rows == result.row_counts["heldout"]
    assert {f"{name}_up_probability" for name in MODEL_NAMES} <= set(result.heldout.columns)


def test_the_final_model_reproduces_its_held_out_predictions_after_a_round_trip_through_ubj(
    random_walk_result, tmp_path
):
    # The registry stores the model in XGBoost's own format: reloaded, it must score the held-out
    # window exactly as recorded, and the recorded metrics must be those of these predictions.
    result = random_walk_result
    path = tmp_path / "model.ubj"
    result.model.save_model(path)
    reloaded = XGBClassifier()
    reloaded.load_model(path)
    recorded = result.heldout["xgboost_up_probability"].to_numpy()
    np.testing.assert_allclose(predict_up_probability(reloaded, result.heldout), recorded, rtol=1e-6)
    metrics = classification_metrics(result.heldout["target"].to_numpy(dtype="int64"), recorded)
    assert metrics == result.heldout_metrics["xgboost"]
    assert len(result.heldout) == result.row_counts["heldout"]


def test_same_data_same_fingerprint_and_model(random_walk_candles, random_walk_result):
    again = train_walk_forward(compute_features(random_walk_candles, "1m"), FAST_CONFIG)
    assert again.fingerprint == random_walk_result.fingerprint
    assert again.overall["xgboost"] == random_walk_result.overall["xgboost"]


def test_one_changed_value_or_label_changes_the_fingerprint():
    rows = compute_features(mean_reverting_candles(2_000), "1m").dropna().head(500).reset_index(drop=True)
    original = data_fingerprint(rows)
    changed_feature = rows.copy()
    changed_feature.loc[250, "log_return_5"] += 1e-9
    flipped_label = rows.copy()
    flipped_label.loc[250, "target"] = 1 - flipped_label.loc[250, "target"]
    fewer_rows = rows.iloc[:-1]
    fingerprints = {original, *map(data_fingerprint, (changed_feature, flipped_label, fewer_rows))}
    assert len(fingerprints) == 4


def test_a_learnable_signal_is_learned_and_beats_the_prior():
    features = compute_features(mean_reverting_candles(20_000), "1m")
    result = train_walk_forward(features, FAST_CONFIG)
    assert result.overall["xgboost"].roc_auc > 0.6
    assert result.overall["xgboost"].log_loss < result.overall["prior"].log_loss


def test_an_embargo_shorter_than_the_longest_window_is_refused():
    with pytest.raises(ValueError, match="embargo_candles"):
        WalkForwardConfig(embargo_candles=LONGEST_WINDOW)


def test_too_few_candles_for_the_folds_is_a_clear_error(random_walk_candles):
    features = compute_features(random_walk_candles.iloc[:300], "1m")
    with pytest.raises(ValueError, match="too few trainable candles"):
        train_walk_forward(features, WalkForwardConfig(n_folds=5))


def test_too_few_trainable_candles_names_the_counts_and_the_settings_to_change(random_walk_candles):
    features = compute_features(random_walk_candles.iloc[:300], "1m")
    with pytest.raises(TooFewTrainableCandles) as raised:
        train_walk_forward(features, WalkForwardConfig(n_folds=5))
    error = raised.value
    assert (error.what, error.train_rows, error.candles, error.trainable) == ("fold 0", 0, 300, 239)
    assert error.test_rows > 0
    message = str(error)
    assert f"0 to train, {error.test_rows} to test" in message and "239 of 300" in message
    for setting in ("features.max_fill_minutes", "model.n_folds", "model.heldout_fraction", "model.train_window_days"):
        assert setting in message


def test_no_trainable_row_at_all_is_the_same_clear_error(random_walk_candles):
    features = compute_features(random_walk_candles.iloc[:50], "1m")
    with pytest.raises(TooFewTrainableCandles, match="0 of 50 feature rows are trainable"):
        train_walk_forward(features, FAST_CONFIG)


@pytest.mark.real_data
def test_real_candles_give_an_honest_auc(shared_candles):
    result = train_walk_forward(compute_features(shared_candles, "1m"), FAST_CONFIG)
    # Above ~0.6 on one-minute direction means a leak, not a discovery.
    assert 0.48 < result.overall["xgboost"].roc_auc < 0.60
    assert result.overall["xgboost"].log_loss < result.overall["majority"].log_loss


@pytest.mark.real_data
def test_real_candles_with_permuted_labels_are_not_predictable(shared_candles):
    features = _permuted_target(compute_features(shared_candles, "1m"), seed=17)
    result = train_walk_forward(features, FAST_CONFIG)
    assert abs(result.overall["xgboost"].roc_auc - 0.5) < 0.03


def test_early_stopping_watches_a_tail_an_embargo_after_the_rows_it_fits(monkeypatch):
    features = compute_features(mean_reverting_candles(6_000), "1m")
    times = features["open_time"]
    watched = []
    original_fit = XGBClassifier.fit

    def spying_fit(self, X, y, **kwargs):
        if kwargs.get("eval_set"):
            watched.append((X.index, kwargs["eval_set"][0][0].index))
        return original_fit(self, X, y, **kwargs)

    monkeypatch.setattr(XGBClassifier, "fit", spying_fit)
    train_walk_forward(features, FAST_CONFIG)
    assert watched  # every fold and the final model were big enough to early-stop
    for fitted, validation in watched:
        gap = times.loc[validation].min() - times.loc[fitted].max()
        assert gap >= EMBARGO
