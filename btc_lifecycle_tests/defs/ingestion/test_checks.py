"""The checks on the data, run as Dagster runs them: green on good candles, red — and blocking —
when the store holds what must not go downstream."""

from __future__ import annotations

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.config import load_settings
from btc_lifecycle.defs.ingestion.assets import daily_candle_assets, ingestion_assets
from btc_lifecycle.defs.ingestion.checks import ingestion_checks
from btc_lifecycle.defs.modelling import checks as modelling_checks
from btc_lifecycle.defs.modelling.assets import daily_feature_asset
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle.resources import CandleExchangeResource, FeatureStoreResource
from btc_lifecycle_tests.e2e.reliability.conftest import Store, partition_range_tags

DAYS = "2024-01-01...2024-01-02"


def candle_checks(settings) -> list[dg.AssetChecksDefinition]:
    return [*ingestion_checks(settings), modelling_checks.features_checks(settings)]


SPECS = {spec.name: spec for check in candle_checks(load_settings({})) for spec in check.check_specs}


def run_graph(store: Store, api_url: str, raise_on_error: bool = False):
    """raw → labeled → features with their checks over the two days, as one run."""
    settings = store.settings(api_url)
    defs = dg.Definitions(
        assets=[*ingestion_assets(settings), daily_feature_asset(settings)],
        asset_checks=candle_checks(settings),
        resources={
            "settings": settings,
            "exchange": CandleExchangeResource.from_settings(settings),
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
        },
    )
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=store.instance, tags=partition_range_tags(DAYS), raise_on_error=raise_on_error
    )


def run_checks_alone(store: Store, api_url: str, *names: str, days: str = DAYS) -> dict[str, dg.AssetCheckEvaluation]:
    """Only the named checks, on ``days`` (the run's tags; the store as it is now)."""
    settings = store.settings(api_url)
    keys = [SPECS[name].key for name in names]
    defs = dg.Definitions(
        assets=[*daily_candle_assets(settings), daily_feature_asset(settings)],
        asset_checks=candle_checks(settings),
        jobs=[dg.define_asset_job("checks_alone", selection=dg.AssetSelection.checks(*keys))],
        resources={
            "settings": settings,
            "exchange": CandleExchangeResource.from_settings(settings),
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
        },
    )
    result = defs.resolve_job_def("checks_alone").execute_in_process(
        instance=store.instance, tags=partition_range_tags(days), raise_on_error=False
    )
    return evaluations(result)


def evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


@pytest.fixture
def two_days() -> pd.DataFrame:
    return synthetic_candles(2 * 1440, seed=13)


def test_every_check_passes_on_two_good_days(tmp_path, two_days):
    store = Store(tmp_path)
    with ReplayExchange(two_days, speed=0) as exchange:
        result = run_graph(store, exchange.base_url)
    assert result.success
    verdicts = {name: evaluation.passed for name, evaluation in evaluations(result).items()}
    assert verdicts == dict.fromkeys(SPECS, True)
    judged = evaluations(result)["raw_candles_ohlc_consistent"].metadata
    assert (judged["judged_from"].value, judged["judged_until"].value) == (
        "2024-01-01T00:00:00+00:00",
        "2024-01-03T00:00:00+00:00",
    )


def test_a_long_outage_is_a_warning_that_lets_the_graph_go_on(tmp_path, two_days):
    outage = two_days.index[1_000:1_100]  # 100 minutes, above max_gap_minutes' 60
    store = Store(tmp_path)
    with ReplayExchange(without_minutes(two_days, outage), speed=0) as exchange:
        result = run_graph(store, exchange.base_url)
    assert result.success
    gaps = evaluations(result)["raw_candles_gaps"]
    assert not gaps.passed and gaps.severity == dg.AssetCheckSeverity.WARN
    assert gaps.metadata["longest_gap_minutes"].value == 100


def test_a_tampered_label_fails_the_blocking_label_check(tmp_path, two_days):
    store = Store(tmp_path)
    with ReplayExchange(two_days, speed=0) as exchange:
        assert run_graph(store, exchange.base_url).success
        moment = two_days["open_time"].iloc[2_000].tz_convert(None)
        with duckdb.connect(str(store.db)) as conn:
            conn.execute(
                "UPDATE candles_labeled SET price_increase_label = 1 - price_increase_label WHERE open_time = ?",
                [moment],
            )
        verdict = run_checks_alone(store, exchange.base_url, "labels_recompute")["labels_recompute"]
    assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.ERROR
    assert verdict.metadata["mismatching_rows"].value == 1
    assert SPECS["labels_recompute"].blocking


def test_a_days_first_label_is_judged_against_the_previous_candle_not_the_previous_days_labels(tmp_path, two_days):
    """labeled_candles reads the previous day's last candle from the candle table; so does the
    check. The previous day's labels may not be written yet (its run goes on at the same time):
    that is no reason to fail this day's, and a wrong first label still fails it."""
    store = Store(tmp_path)
    second_day = "2024-01-02...2024-01-02"
    first_minute = pd.Timestamp("2024-01-02")
    with ReplayExchange(two_days, speed=0) as exchange:
        assert run_graph(store, exchange.base_url).success
        with duckdb.connect(str(store.db)) as conn:
            conn.execute("DELETE FROM candles_labeled WHERE open_time < ?", [first_minute])
        verdict = run_checks_alone(store, exchange.base_url, "labels_recompute", days=second_day)["labels_recompute"]
        assert verdict.passed, verdict.description
        with duckdb.connect(str(store.db)) as conn:
            conn.execute(
                "UPDATE candles_labeled SET price_increase_label = 1 - price_increase_label WHERE open_time = ?",
                [first_minute],
            )
        verdict = run_checks_alone(store, exchange.base_url, "labels_recompute", days=second_day)["labels_recompute"]
    assert not verdict.passed
    assert verdict.metadata["labels_differing"].value == 1
    assert verdict.metadata["first_mismatching_open_times"].value == ["2024-01-02T00:00:00+00:00"]


def test_a_high_below_the_close_never_reaches_the_store_and_a_stored_one_fails_the_blocking_check(tmp_path, two_days):
    broken = two_days.copy()
    broken.loc[500, "high"] = broken.loc[500, "close"] - 1.0
    store = Store(tmp_path)
    with ReplayExchange(broken, speed=0) as exchange:
        # The client validates every page: a bad candle from the exchange never reaches the store.
        assert not run_graph(store, exchange.base_url).success
        with ReplayExchange(two_days, speed=0) as good:
            assert run_graph(store, good.base_url).success
        with duckdb.connect(str(store.db)) as conn:
            conn.execute(
                "UPDATE candles SET high = close - 1 WHERE open_time = ?",
                [broken.loc[500, "open_time"].tz_convert(None)],
            )
        verdict = run_checks_alone(store, exchange.base_url, "raw_candles_ohlc_consistent")
    # One check of the four that share a step: only it runs.
    assert set(verdict) == {"raw_candles_ohlc_consistent"}
    check = verdict["raw_candles_ohlc_consistent"]
    assert not check.passed and check.metadata["violating_rows"].value == 1
    assert SPECS["raw_candles_ohlc_consistent"].blocking


def test_a_nan_in_a_trainable_feature_row_fails_the_blocking_features_check(tmp_path, two_days):
    store = Store(tmp_path)
    with ReplayExchange(two_days, speed=0) as exchange:
        assert run_graph(store, exchange.base_url).success
        with duckdb.connect(str(store.db)) as conn:
            conn.execute(
                "UPDATE candles_features SET rsi_14 = 'NaN'::DOUBLE WHERE open_time = "
                "(SELECT min(open_time) FROM candles_features WHERE trainable)"
            )
        verdict = run_checks_alone(store, exchange.base_url, "features_trainable_rows_complete")
    assert set(verdict) == {"features_trainable_rows_complete"}
    check = verdict["features_trainable_rows_complete"]
    assert not check.passed and check.metadata["violating_rows"].value == 1
    assert np.isfinite(check.metadata["trainable_rows"].value)
