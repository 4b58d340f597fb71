"""Walk-forward: training before testing with an embargo, baselines on the same folds, no leak;
on a tiny hand-laid frame every boundary, range and count of the result; the training-input
fingerprint (a stored hash that says "nothing new to train"), stable for the same inputs and
changed by each of them; the settings and the messages that name them."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import pytest
from xgboost import XGBClassifier

from btc_lifecycle.modelling.baselines import baseline_probabilities
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, compute_features
from btc_lifecycle.modelling.metrics import classification_metrics
from btc_lifecycle.modelling.walk_forward import (
    MODEL_NAMES,
    TooFewTrainableCandles,
    WalkForwardConfig,
    _fit_xgboost,
    data_fingerprint,
    input_fingerprint,
    predict_up_probability,
    train_walk_forward,
)
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


def test_too_few_trainable_candles_names_the_counts_and_the_settings_to_change(random_walk_candles):
    features = compute_features(random_walk_candles.iloc[:300], "1m")
    with pytest.raises(TooFewTrainableCandles) as raised:
        train_walk_forward(features, WalkForwardConfig(n_folds=5))
    error = raised.value
    assert isinstance(error, ValueError)
    assert (error.what, error.train_rows, error.candles, error.trainable) == ("fold 0", 0, 300, 239)
    assert error.test_rows > 0
    message = str(error)
    assert message.startswith("fold 0: too few trainable candles")
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


# the training-input fingerprint, pinned: a hash stored beside a champion must mean the same inputs
# after an upgrade
KNOWN = "03852d4ed89c678e1b5c2bb5eff642e79f94844a4cba87da86a86b61bd287a25"


def inputs() -> pd.DataFrame:
    frame = pd.DataFrame({"open_time": pd.date_range("2024-01-01", periods=3, freq="min", tz="UTC")})
    for position, name in enumerate(FEATURE_COLUMNS):
        frame[name] = [position + 0.5, position * 2.0, -position - 0.25]
    frame["target"] = pd.array([1, 0, pd.NA], dtype="Int8")
    frame["trainable"] = [True, True, False]
    return frame


def test_the_fingerprint_of_known_inputs_is_pinned():
    assert input_fingerprint(inputs(), WalkForwardConfig()) == KNOWN


def test_the_same_inputs_give_the_same_fingerprint():
    assert input_fingerprint(inputs(), WalkForwardConfig()) == input_fingerprint(inputs(), WalkForwardConfig())


def changed(column: str, value) -> pd.DataFrame:
    frame = inputs()
    frame.loc[1, column] = value
    return frame


@pytest.mark.parametrize(
    "frame",
    [
        changed("open_time", pd.Timestamp("2024-01-01 00:05", tz="UTC")),
        changed(FEATURE_COLUMNS[0], 9.0),
        changed(FEATURE_COLUMNS[-1], 9.0),
        changed("target", 1),
        changed("trainable", False),
    ],
    ids=["time", "first feature", "last feature", "target", "trainable"],
)
def test_each_input_column_changes_the_fingerprint(frame):
    assert input_fingerprint(frame, WalkForwardConfig()) != KNOWN


def test_a_setting_changes_the_fingerprint():
    assert input_fingerprint(inputs(), replace(WalkForwardConfig(), n_folds=WalkForwardConfig().n_folds + 1)) != KNOWN


# TooFewTrainableCandles: the message a person reads when a training cannot start


def test_too_few_trainable_candles_says_what_how_many_and_which_settings():
    error = TooFewTrainableCandles("fold 2", 10, 5, 1, 1000, 900, WalkForwardConfig())
    assert (error.what, error.train_rows, error.test_rows) == ("fold 2", 10, 5)
    assert (error.train_classes, error.candles, error.trainable) == (1, 1000, 900)
    assert str(error) == (
        "fold 2: too few trainable candles (10 to train with a single target class, 5 to test; 900 of 1000 "
        "feature rows are trainable) for n_folds=5, heldout_fraction=0.15, embargo_candles=62. Ingest more "
        "history, or change the settings: features.max_fill_minutes (fill the trade-less minutes of a thin "
        "market so that feature windows run through them), model.n_folds (fewer, larger folds), "
        "model.heldout_fraction, model.train_window_days (null trains on all history)"
    )


def test_no_training_rows_is_not_called_a_single_class():
    error = TooFewTrainableCandles("held-out window", 0, 5, 0, 1000, 900, WalkForwardConfig())
    assert str(error).startswith("held-out window: too few trainable candles (0 to train, 5 to test;")


# WalkForwardConfig: each setting's bounds and the message that names it


def test_a_single_fold_is_allowed():
    assert WalkForwardConfig(n_folds=1).n_folds == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n_folds": 0}, "n_folds must be at least 1, got 0"),
        ({"train_window": "sliding"}, "train_window must be 'expanding' or 'rolling', got 'sliding'"),
        ({"train_window": "rolling"}, "rolling_train_candles is required when train_window is 'rolling'"),
        ({"embargo_candles": 61}, "embargo_candles must be at least LONGEST_WINDOW + 1 = 62, got 61"),
        ({"heldout_fraction": 0.0}, "heldout_fraction must be between 0 and 1, got 0.0"),
        ({"heldout_fraction": 1.0}, "heldout_fraction must be between 0 and 1, got 1.0"),
        ({"validation_fraction": 1.5}, "validation_fraction must be between 0 and 1, got 1.5"),
    ],
)
def test_a_setting_out_of_bounds_is_refused_with_a_message_naming_it(settings, message):
    with pytest.raises(ValueError) as raised:
        WalkForwardConfig(**settings)
    assert str(raised.value) == message


# A walk-forward on a tiny hand-laid frame (600 minutes, two folds, five-tree models): every
# boundary, range and count of the result is known in advance.
#   held-out: ceil(600 * 0.2) = 120 candles, rows 480..599; embargo 62 candles;
#   development: rows before 480 - 62 = 418, split at linspace(0, 418, 4) = 0, 139, 278, 418;
#   fold 0 tests rows 139..277 and trains on rows before 139 - 62 = 77;
#   fold 1 tests rows 278..417 and trains on rows before 216; the final model on rows before 418.
# Rows 0..4 and 300 are not trainable.
ROWS = 600
TINY = WalkForwardConfig(n_folds=2, heldout_fraction=0.2, n_estimators=5, max_depth=2, min_child_weight=1.0, n_jobs=1)
UNTRAINABLE = [0, 1, 2, 3, 4, 300]
PROBABILITY_COLUMNS = [f"{name}_up_probability" for name in MODEL_NAMES]


def tiny_features(rows: int = ROWS, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"open_time": pd.date_range("2024-03-01", periods=rows, freq="min", tz="UTC")})
    for name in FEATURE_COLUMNS:
        frame[name] = rng.normal(0.0, 1.0, rows)
    frame["target"] = pd.array(rng.integers(0, 2, rows), dtype="Int8")
    frame["trainable"] = True
    frame.loc[[row for row in UNTRAINABLE if row < rows], "trainable"] = False
    return frame


def time_of(frame: pd.DataFrame, row: int) -> pd.Timestamp:
    return frame["open_time"].iloc[row]


def test_two_training_classes_are_not_called_a_single_class():
    error = TooFewTrainableCandles("fold 1", 10, 0, 2, 1000, 900, WalkForwardConfig())
    assert str(error).startswith("fold 1: too few trainable candles (10 to train, 0 to test;")


# The data fingerprint (stored with the model): the feature matrix as float64 and the target as int8.
DATA_KNOWN = "fbd474f064188bbb713fa4626188942c0d41979b7c28186dbec60f304c19af8c"


def test_the_data_fingerprint_of_known_rows_is_pinned():
    assert data_fingerprint(tiny_features(3)) == DATA_KNOWN


def test_the_data_fingerprint_reads_features_as_float64_and_the_target_as_int8():
    rows = tiny_features(3)
    single = {name: "float32" for name in FEATURE_COLUMNS}
    exact = rows.astype(single).astype({name: "float64" for name in FEATURE_COLUMNS})  # float32-exact values
    assert data_fingerprint(exact.astype(single)) == data_fingerprint(exact)
    assert data_fingerprint(rows.astype({"target": "int64"})) == DATA_KNOWN


# _fit_xgboost: early stopping watches the training block's tail when fit and tail are both big
# enough, and the model carries the configured settings.
FIT_CONFIG = WalkForwardConfig(
    n_estimators=4,
    max_depth=2,
    learning_rate=0.3,
    min_child_weight=2.0,
    subsample=0.9,
    colsample_bytree=0.7,
    early_stopping_rounds=3,
    random_state=11,
    n_jobs=1,
)
EMBARGO_62 = pd.Timedelta(minutes=62)


def fit_sizes(monkeypatch, rows: int, validation_fraction: float):
    """The model, and the rows fitted and watched (None: no early stopping) by each fit."""
    calls = []
    original_fit = XGBClassifier.fit

    def spying_fit(self, X, y, **kwargs):
        watched = kwargs.get("eval_set")
        calls.append((len(X), len(watched[0][0]) if watched else None))
        return original_fit(self, X, y, **kwargs)

    monkeypatch.setattr(XGBClassifier, "fit", spying_fit)
    config = replace(FIT_CONFIG, validation_fraction=validation_fraction)
    return _fit_xgboost(tiny_features(rows).iloc[5:].reset_index(drop=True), EMBARGO_62, config), calls


def test_early_stopping_fits_up_to_an_embargo_before_the_watched_tail(monkeypatch):
    # 595 rows, tail from row int(595 * 0.5) = 297: fit on rows before 297 - 62 = 235, watch 298.
    model, calls = fit_sizes(monkeypatch, 600, 0.5)
    assert calls == [(235, 298)]
    assert model.get_params()["early_stopping_rounds"] == 3


def test_early_stopping_needs_two_hundred_rows_to_fit_and_two_hundred_to_watch(monkeypatch):
    # 462 rows: the tail starts at int(462 * 0.568) = 262, so 200 are fitted and 200 watched.
    _, calls = fit_sizes(monkeypatch, 467, 0.432)
    assert calls == [(200, 200)]


def test_one_row_too_few_to_fit_trains_on_the_whole_block_without_early_stopping(monkeypatch):
    # 461 rows: the tail starts at int(461 * 0.568) = 261, leaving 199 to fit.
    model, calls = fit_sizes(monkeypatch, 466, 0.432)
    assert calls == [(461, None)]
    assert model.get_params()["early_stopping_rounds"] is None
    assert model.get_booster().num_boosted_rounds() == 4


def test_the_model_carries_the_configured_settings(monkeypatch, capsys):
    model, _ = fit_sizes(monkeypatch, 600, 0.5)
    settings = model.get_params()
    assert {name: settings[name] for name in EXPECTED_SETTINGS} == EXPECTED_SETTINGS
    assert capsys.readouterr().out == ""  # early stopping does not log each round


def test_an_object_target_column_early_stops_like_an_int8_one():
    train = tiny_features().iloc[5:].reset_index(drop=True)
    config = replace(FIT_CONFIG, validation_fraction=0.5)
    typed = _fit_xgboost(train, EMBARGO_62, config)
    untyped = _fit_xgboost(train.astype({"target": object}), EMBARGO_62, config)
    np.testing.assert_array_equal(predict_up_probability(untyped, train), predict_up_probability(typed, train))


EXPECTED_SETTINGS = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "n_jobs": 1,
    "random_state": 11,
    "n_estimators": 4,
    "max_depth": 2,
    "learning_rate": 0.3,
    "min_child_weight": 2.0,
    "subsample": 0.9,
    "colsample_bytree": 0.7,
    "early_stopping_rounds": 3,
}


@pytest.fixture(scope="module")
def tiny():
    features = tiny_features()
    started = time.perf_counter()
    result = train_walk_forward(features, TINY)
    return features, result, time.perf_counter() - started


def test_each_fold_trains_an_embargo_before_its_block_and_tests_the_whole_block(tiny):
    features, result, _ = tiny
    t = partial(time_of, features)
    assert [
        (fold.index, fold.train_start, fold.train_end, fold.test_start, fold.test_end, fold.train_rows, fold.test_rows)
        for fold in result.folds
    ] == [
        (0, t(5), t(76), t(139), t(277), 72, 139),
        (1, t(5), t(215), t(278), t(417), 211, 139),
    ]


def test_each_fold_and_the_pool_score_every_model_on_the_fold_rows(tiny):
    _, result, _ = tiny
    for fold in result.folds:
        assert set(fold.metrics) == set(MODEL_NAMES)
        assert {metrics.rows for metrics in fold.metrics.values()} == {fold.test_rows}
    assert {metrics.rows for metrics in result.overall.values()} == {278}


def test_the_final_model_trains_up_to_an_embargo_before_the_held_out_window(tiny):
    features, result, _ = tiny
    assert result.training_range == (time_of(features, 5), time_of(features, 417))
    assert result.heldout_range == (time_of(features, 480), time_of(features, 599))
    assert result.row_counts == {"candles": 600, "trainable": 594, "excluded": 6, "final_train": 412, "heldout": 120}
    final_train = features.iloc[5:418].drop(index=300)
    assert result.fingerprint == data_fingerprint(final_train)
    assert result.feature_columns == FEATURE_COLUMNS
    assert result.config is TINY


def test_the_held_out_frame_carries_every_models_probability_beside_the_features(tiny):
    features, result, _ = tiny
    heldout = result.heldout
    assert list(heldout.columns) == ["open_time", *FEATURE_COLUMNS, "target", *PROBABILITY_COLUMNS]
    assert heldout.index.equals(pd.RangeIndex(120))
    assert heldout["open_time"].tolist() == features["open_time"].iloc[480:].tolist()
    assert isinstance(result.model, XGBClassifier)
    np.testing.assert_array_equal(heldout["xgboost_up_probability"], predict_up_probability(result.model, heldout))
    train_target = features["target"].iloc[5:418].drop(index=300).to_numpy("int64")
    for name, probability in baseline_probabilities(train_target, heldout).items():
        np.testing.assert_array_equal(heldout[f"{name}_up_probability"], probability)
    target = heldout["target"].to_numpy("int64")
    assert result.heldout_metrics == {
        name: classification_metrics(target, heldout[f"{name}_up_probability"].to_numpy()) for name in MODEL_NAMES
    }


def test_the_training_seconds_are_measured_around_the_whole_training(tiny):
    _, result, elapsed = tiny
    assert 0 < result.training_seconds <= elapsed


def test_object_columns_of_python_ints_and_booleans_train_like_typed_ones(tiny):
    features, result, _ = tiny
    untyped = features.astype({"target": object, "trainable": object})
    again = train_walk_forward(untyped, TINY)
    assert again.row_counts == result.row_counts
    assert again.folds == result.folds
    pd.testing.assert_frame_equal(again.heldout.astype({"target": "Int8"}), result.heldout)


def test_a_held_out_window_of_one_candle_is_scored():
    config = replace(TINY, heldout_fraction=0.001)  # ceil(600 * 0.001) = 1 candle
    features = tiny_features()
    result = train_walk_forward(features, config)
    assert result.row_counts["heldout"] == 1
    assert result.heldout_range == (time_of(features, 599), time_of(features, 599))


def test_no_trainable_row_at_all_names_the_walk_forward_and_zero_counts():
    features = tiny_features(100).assign(trainable=False)
    with pytest.raises(TooFewTrainableCandles) as raised:
        train_walk_forward(features, TINY)
    error = raised.value
    assert (error.what, error.train_rows, error.test_rows, error.train_classes) == ("walk-forward", 0, 0, 0)
    assert (error.candles, error.trainable) == (100, 0)
    assert str(error).startswith(
        "walk-forward: too few trainable candles (0 to train, 0 to test; 0 of 100 feature rows are trainable) "
        "for n_folds=2, heldout_fraction=0.2, embargo_candles=62. Ingest more history"
    )


def test_a_held_out_window_without_trainable_candles_is_named_with_its_counts():
    features = tiny_features()
    features.loc[480:, "trainable"] = False
    with pytest.raises(TooFewTrainableCandles) as raised:
        train_walk_forward(features, TINY)
    error = raised.value
    assert (error.what, error.train_rows, error.test_rows, error.train_classes) == ("held-out window", 412, 0, 2)
    assert str(error).startswith(
        "held-out window: too few trainable candles (412 to train, 0 to test; 474 of 600 feature rows are "
        "trainable) for n_folds=2"
    )


def test_a_fold_that_trains_on_a_single_class_is_named_with_its_class_count():
    features = tiny_features()
    features.loc[:76, "target"] = 1
    with pytest.raises(TooFewTrainableCandles) as raised:
        train_walk_forward(features, TINY)
    error = raised.value
    assert (error.what, error.train_rows, error.test_rows, error.train_classes) == ("fold 0", 72, 139, 1)
    assert "(72 to train with a single target class, 139 to test;" in str(error)


def test_a_fold_with_an_empty_block_has_nothing_to_train_or_test():
    # 64 candles: 1 held out, 62 embargoed, 1 development row for three folds: block 0 is empty.
    features = tiny_features(64)
    features["trainable"] = True
    with pytest.raises(TooFewTrainableCandles) as raised:
        train_walk_forward(features, replace(TINY, n_folds=3, heldout_fraction=0.01))
    error = raised.value
    assert (error.what, error.train_rows, error.test_rows, error.train_classes) == ("fold 0", 0, 0, 0)
