"""More than one market: each market of ``more_markets`` gets the main market's lifecycle (candles,
features, model, predictions, drift report), checks, routine and retraining under its own name,
and nothing of the main market's changes."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from btc_lifecycle.config import load_settings
from btc_lifecycle.definitions import build_definitions
from btc_lifecycle.defs.monitoring.assets import DATA_DRIFT_CHECK, PERFORMANCE_CHECK
from btc_lifecycle.defs.partitions import range_tags
from btc_lifecycle.defs.schedules import EXCHANGE_TAG, routine_schedules

BINANCE_US = {"exchange": "binanceus", "symbol": "BTC/USD", "interval": "1m"}
KRAKEN = {"exchange": "kraken", "symbol": "BTC/EUR", "interval": "5m"}
INGESTION = ("raw_candles", "labeled_candles", "ingestion_stats")
LIFECYCLE = (*INGESTION, "ingestion_report", "features", "model", "predictions", "drift_report")


@pytest.fixture
def two_markets(write_config):
    return load_settings({"INGEST_CONFIG": str(write_config(more_markets=[BINANCE_US]))})


def asset_groups(settings) -> dict[str, str]:
    graph = build_definitions(settings).resolve_asset_graph()
    return {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}


def test_a_further_market_has_the_lifecycle_under_its_slug_in_a_group_of_its_own(two_markets):
    groups = asset_groups(two_markets)
    assert {key: group for key, group in groups.items() if key.startswith("binanceus_btc_usd_1m/")} == {
        f"binanceus_btc_usd_1m/{name}": "binanceus_btc_usd_1m" for name in LIFECYCLE
    }


def test_the_backtest_and_serving_stay_with_the_main_market(two_markets):
    plain = {key for key in asset_groups(two_markets) if "/" not in key}
    assert plain == {*LIFECYCLE, "backtest", "feast_offline_features", "feast_online_features", "market_comparison"}


def test_the_main_market_keeps_its_keys_and_groups_when_a_market_is_added(write_config, two_markets):
    alone = asset_groups(load_settings({"INGEST_CONFIG": str(write_config())}))
    with_two = {key: group for key, group in asset_groups(two_markets).items() if "/" not in key}
    assert with_two == {**alone, "market_comparison": "monitoring"}


def test_each_market_reads_and_writes_its_own_tables_and_stats_file(two_markets):
    main, further = two_markets.ingest.markets
    assert (main.table, further.table) == ("candles", "candles_binanceus_btc_usd_1m")
    assert (further.exchange, further.symbol, further.interval) == ("binanceus", "BTC/USD", "1m")
    assert two_markets.ingestion_stats_file(main).name == "ingestion_stats.json"
    assert two_markets.ingestion_stats_file(further).name == "ingestion_stats_binanceus_btc_usd_1m.json"


def test_a_further_market_has_the_same_checks_as_the_main_market(two_markets):
    graph = build_definitions(two_markets).resolve_asset_graph()
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}

    def of(prefix: str) -> set[tuple[str, str]]:
        return {(asset.removeprefix(prefix), name) for asset, name in checks if asset.startswith(prefix)}

    main = {(asset, name) for asset, name in checks if asset in LIFECYCLE}
    assert len(main) == 9  # four on raw candles, one on labels, two on features, two on the drift report
    assert of("binanceus_btc_usd_1m/") == main


def test_a_further_market_shares_the_days_and_the_history_start(two_markets):
    graph = build_definitions(two_markets).resolve_asset_graph()
    main = graph.get(dg.AssetKey("raw_candles")).partitions_def
    assert graph.get(dg.AssetKey(["binanceus_btc_usd_1m", "raw_candles"])).partitions_def == main


def test_labels_of_a_further_market_follow_its_own_candles(two_markets):
    graph = build_definitions(two_markets).resolve_asset_graph()
    labeled = graph.get(dg.AssetKey(["binanceus_btc_usd_1m", "labeled_candles"]))
    assert labeled.parent_keys == {dg.AssetKey(["binanceus_btc_usd_1m", "raw_candles"])}


def test_every_market_has_an_ingestion_schedule_tagged_with_its_exchange(two_markets):
    schedules = {schedule.name: schedule for schedule in routine_schedules(two_markets)}
    assert {"ingestion_schedule", "binanceus_btc_usd_1m_ingestion_schedule"} <= schedules.keys()
    further = schedules["binanceus_btc_usd_1m_ingestion_schedule"].job
    assert further.tags[EXCHANGE_TAG] == "binanceus"
    assert schedules["ingestion_schedule"].job.tags[EXCHANGE_TAG] == "binance"
    defs = build_definitions(two_markets)
    selected = defs.resolve_job_def("binanceus_btc_usd_1m_ingestion_job").asset_layer.selected_asset_keys
    assert {key.to_user_string() for key in selected} == {f"binanceus_btc_usd_1m/{name}" for name in INGESTION}


def test_a_further_markets_tick_reads_the_days_that_market_stored(two_markets):
    # The main market has every day; the further market stored up to 5 January only.
    with dg.instance_for_test() as instance:
        for day in range(1, 11):
            partition = f"2024-01-{day:02d}"
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="raw_candles", partition=partition))
            if day <= 5:
                key = dg.AssetKey(["binanceus_btc_usd_1m", "raw_candles"])
                instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))
        schedules = {schedule.name: schedule for schedule in routine_schedules(two_markets)}
        at = datetime(2024, 1, 10, 12, tzinfo=UTC)

        def tick(name: str) -> dict[str, str]:
            with dg.build_schedule_context(instance=instance, scheduled_execution_time=at) as context:
                [request] = schedules[name].evaluate_tick(context).run_requests
            return request.tags

        assert range_tags("2024-01-09", "2024-01-10").items() <= tick("ingestion_schedule").items()
        assert range_tags("2024-01-05", "2024-01-10").items() <= tick("binanceus_btc_usd_1m_ingestion_schedule").items()


def test_markets_on_three_exchanges_and_intervals_build_one_code_location(write_config):
    settings = load_settings({"INGEST_CONFIG": str(write_config(more_markets=[BINANCE_US, KRAKEN]))})
    groups = set(asset_groups(settings).values())
    assert {"binanceus_btc_usd_1m", "kraken_btc_eur_5m"} <= groups
    assert settings.ingest.markets[2].table == "candles_kraken_btc_eur_5m"


def failing_drift_report(key: dg.AssetKey) -> dg.AssetsDefinition:
    """Stands in for one market's drift report: its data drift check fails."""

    @dg.asset(
        key=key,
        check_specs=[dg.AssetCheckSpec(name, asset=key) for name in (DATA_DRIFT_CHECK, PERFORMANCE_CHECK)],
    )
    def drift_report():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name=DATA_DRIFT_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR)
        yield dg.AssetCheckResult(check_name=PERFORMANCE_CHECK, passed=True)

    return drift_report


def test_a_failed_drift_check_of_one_market_retrains_that_market_only(two_markets):
    defs = build_definitions(two_markets)
    sensors = {sensor.name: sensor for sensor in defs.sensors}
    with dg.instance_for_test() as instance:
        dg.materialize([failing_drift_report(dg.AssetKey(["binanceus_btc_usd_1m", "drift_report"]))], instance=instance)

        def tick(name: str):
            with dg.build_sensor_context(instance=instance, definitions=defs) as context:
                return sensors[name](context)

        assert isinstance(tick("retrain_on_drift_sensor"), dg.SkipReason)
        request = tick("binanceus_btc_usd_1m_retrain_on_drift_sensor")
    assert request.tags["btc_lifecycle/failed_checks"] == DATA_DRIFT_CHECK
    job = defs.resolve_job_def(sensors["binanceus_btc_usd_1m_retrain_on_drift_sensor"].job_name)
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == {
        f"binanceus_btc_usd_1m/{name}" for name in ("model", "predictions", "drift_report")
    }
