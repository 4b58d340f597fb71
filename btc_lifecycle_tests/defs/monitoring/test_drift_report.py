"""The drift_report asset in process: its reference window, which predictions it judges, its checks."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from btc_lifecycle.defs.modelling.assets import daily_feature_asset, model_asset, predictions_asset
from btc_lifecycle.defs.monitoring.assets import DATA_DRIFT_CHECK, PERFORMANCE_CHECK, drift_report_asset
from btc_lifecycle.resources import ModelRegistryResource
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG
from btc_lifecycle_tests.defs.modelling.test_model import store_with
from btc_lifecycle_tests.defs.modelling.test_predictions import (
    CANDLES,
    FIRST,
    add_candles,
    metadata_of,
    run,
    stored_predictions,
)

MIN_REALIZED = 5
CONFIG = {
    "model": {**DEFAULT_CONFIG["model"], "n_folds": 3, "prediction_rows": 100},
    "monitoring": {"current_window": 200, "reference_window": 500, "min_realized_labels": MIN_REALIZED},
}


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    """A first champion scores and is monitored; ten candles later, scored and monitored again."""
    settings = store_with(FIRST, tmp_path_factory.mktemp("drift"), **CONFIG)
    features = daily_feature_asset(settings)
    first = run(settings, [features, model_asset(settings), predictions_asset(settings), drift_report_asset(settings)])
    assert first.success
    champion = ModelRegistryResource.from_settings(settings).registry().champion_info()
    add_candles(settings, CANDLES)
    second = run(settings, [features, predictions_asset(settings), drift_report_asset(settings)])
    assert second.success
    return {
        "first": first,
        "second": second,
        "validated_until": champion.validated_window[1],
        "predictions": stored_predictions(settings),
    }


def window_end(metadata: dict, name: str) -> pd.Timestamp:
    return pd.Timestamp(metadata[name].split(" .. ")[1])


def test_the_reference_window_ends_where_the_champion_was_last_validated(monitored):
    for result in (monitored["first"], monitored["second"]):
        assert window_end(metadata_of(result, "drift_report"), "reference_window") == monitored["validated_until"]


def test_the_current_window_ends_at_the_newest_complete_candle(monitored):
    metadata = metadata_of(monitored["second"], "drift_report")
    assert window_end(metadata, "current_window") == CANDLES["open_time"].iloc[-1]


def test_the_champions_predictions_up_to_its_validation_are_not_judged(monitored):
    # Every prediction of the first run lies inside the champion's held-out window or at its end.
    assert metadata_of(monitored["first"], "drift_report")["realized_labels"] == 0


def test_only_the_champions_realized_predictions_after_its_validation_are_judged(monitored):
    live = monitored["predictions"]
    realized = live["realized_label"].notna()
    after_validation = realized & (live["open_time"] > monitored["validated_until"])
    assert 0 < after_validation.sum() < realized.sum()
    assert metadata_of(monitored["second"], "drift_report")["realized_labels"] == after_validation.sum()


def test_each_versions_realized_net_return_after_costs_sits_next_to_its_log_loss(monitored):
    metadata = metadata_of(monitored["second"], "drift_report")
    header, _, champion_row = metadata["realized_by_version"].splitlines()[:3]
    assert header.endswith("| p (beats prior) | net return after 10 bps a side |")
    net = metadata["realized_net_return"]
    assert -1 < net < 0.01  # ten bps a side on a few dozen minutes: costs dominate
    assert champion_row.endswith(f"| {net:+.2%} |")
    check = checks_of(monitored["second"])[PERFORMANCE_CHECK]
    assert check.metadata["realized_net_return"].value == net
    assert check.metadata["realized_by_version"].value == metadata["realized_by_version"]


def test_a_skipped_performance_check_passes_and_says_it_was_skipped(monitored):
    check = checks_of(monitored["first"])[PERFORMANCE_CHECK]
    assert check.passed
    assert check.metadata["skipped"].value is True
    assert check.description.startswith("skipped:")


def test_a_judged_performance_check_is_not_marked_skipped(monitored):
    check = checks_of(monitored["second"])[PERFORMANCE_CHECK]
    assert check.metadata["skipped"].value is False
    assert check.metadata["realized_labels"].value >= MIN_REALIZED


def test_each_check_names_the_newest_candle_it_judged(monitored):
    for check in checks_of(monitored["second"]).values():
        assert pd.Timestamp(check.metadata["candles_until"].value) == CANDLES["open_time"].iloc[-1]
    assert set(checks_of(monitored["second"])) == {DATA_DRIFT_CHECK, PERFORMANCE_CHECK}


def test_drift_report_without_a_champion_fails_and_says_what_to_do(tmp_path):
    settings = store_with(FIRST, tmp_path)
    result = run(settings, [daily_feature_asset(settings), drift_report_asset(settings)])
    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "drift_report"
    assert failure.event_specific_data.user_failure_data.description == (
        "no champion model is registered yet for btc_direction: materialize the model asset first"
    )
