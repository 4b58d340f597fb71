"""The predictions asset in process: out-of-sample scoring, an appended history, truth joined later."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd
import pytest

from btc_lifecycle.adapters.feature_store import read_predictions, replace_labeled_candles
from btc_lifecycle.defs.modelling.assets import daily_feature_asset, model_asset, predictions_asset
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.resources import FeatureStoreResource, ModelRegistryResource
from btc_lifecycle.resources.model_registry import mlflow_resource
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG, stored_days
from btc_lifecycle_tests.defs.modelling.test_model import store_with

CANDLES = synthetic_candles(4_010, seed=12)
FIRST, LATER = CANDLES.iloc[:4_000], CANDLES
SCORED_PER_RUN = 100
FAST_MODEL = {**DEFAULT_CONFIG["model"], "n_folds": 3, "prediction_rows": SCORED_PER_RUN}


def run(settings, assets) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources={
            "settings": settings,
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
            "mlflow": mlflow_resource(settings),
            "model_registry": ModelRegistryResource.from_settings(settings),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        tags=stored_days(settings),
    )


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def stored_predictions(settings) -> pd.DataFrame:
    with duckdb.connect(str(settings.feature_db_path)) as conn:
        return read_predictions(conn, settings.ingest.series).sort_values("open_time").reset_index(drop=True)


def add_candles(settings, candles) -> None:
    with duckdb.connect(str(settings.feature_db_path)) as conn:
        replace_labeled_candles(conn, settings.ingest.series, label_candles(candles, "1m"))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Train, score; then ten more candles arrive and predictions runs again (features refreshed)."""
    settings = store_with(FIRST, tmp_path_factory.mktemp("predictions"), model=FAST_MODEL)
    first = run(settings, [daily_feature_asset(settings), model_asset(settings), predictions_asset(settings)])
    assert first.success
    before = stored_predictions(settings)
    champion = ModelRegistryResource.from_settings(settings).registry().champion_info()
    add_candles(settings, LATER)
    second = run(settings, [daily_feature_asset(settings), predictions_asset(settings)])
    assert second.success
    return {
        "settings": settings,
        "first": metadata_of(first, "predictions"),
        "second": metadata_of(second, "predictions"),
        "before": before,
        "after": stored_predictions(settings),
        "champion": champion,
    }


def test_the_first_run_scores_at_most_prediction_rows_candles(two_runs):
    assert two_runs["first"]["new_predictions"] == SCORED_PER_RUN
    assert len(two_runs["before"]) == SCORED_PER_RUN


def test_no_candle_before_the_champions_heldout_window_is_scored(two_runs):
    assert two_runs["before"]["open_time"].min() >= two_runs["champion"].heldout_start


def test_every_prediction_names_the_champion_that_made_it(two_runs):
    assert set(two_runs["after"]["model_version"]) == {two_runs["champion"].version}
    assert two_runs["first"]["champion_version"] == int(two_runs["champion"].version)


def test_the_next_run_scores_only_the_new_candles_and_appends_them(two_runs):
    before, after = two_runs["before"], two_runs["after"]
    assert two_runs["second"]["new_predictions"] == 10
    assert len(after) == len(before) + 10 == two_runs["second"]["total_predictions"]
    assert after["open_time"].is_unique
    assert list(after["open_time"].tail(10)) == list(LATER["open_time"].tail(10))


def test_appending_keeps_earlier_predictions_unchanged(two_runs):
    before, after = two_runs["before"], two_runs["after"]
    kept = after.iloc[: len(before)]
    pd.testing.assert_series_equal(kept["up_probability"], before["up_probability"])
    pd.testing.assert_series_equal(kept["predicted_at"], before["predicted_at"])


def test_the_newest_candle_has_no_truth_until_the_next_candle_closes(two_runs):
    assert two_runs["before"]["realized_label"].isna().tolist() == [False] * (SCORED_PER_RUN - 1) + [True]
    assert pd.isna(two_runs["after"]["realized_label"].iloc[-1])


def test_the_truth_of_the_previous_newest_candle_is_joined_once_known(two_runs):
    before, after = two_runs["before"], two_runs["after"]
    previous_newest = after.loc[after["open_time"] == before["open_time"].iloc[-1], "realized_label"].iloc[0]
    closes = LATER.set_index("open_time")["close"]
    at = before["open_time"].iloc[-1]
    assert previous_newest == int(closes[at + pd.Timedelta(minutes=1)] > closes[at])
    assert two_runs["second"]["realized_predictions"] == len(after) - 1


def test_predictions_without_a_champion_fail_and_say_what_to_do(tmp_path):
    settings = store_with(FIRST, tmp_path)
    result = run(settings, [daily_feature_asset(settings), predictions_asset(settings)])
    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "predictions"
    assert failure.event_specific_data.user_failure_data.description == (
        "no champion model is registered yet for btc_direction: materialize the model asset first"
    )
