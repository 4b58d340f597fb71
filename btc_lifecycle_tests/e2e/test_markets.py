"""Several markets ingested at once from one replay exchange, each through the real ccxt client of
its exchange id: every market's candles, labels, stats and checks, and a market added later
backfills only its own days."""

from __future__ import annotations

import json
from dataclasses import replace

import dagster as dg
import duckdb
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from btc_lifecycle.adapters.feature_store import read_candles
from btc_lifecycle.config import load_settings
from btc_lifecycle.definitions import market_assets
from btc_lifecycle.defs.ingestion.assets import ingestion_assets
from btc_lifecycle.defs.ingestion.checks import ingestion_checks
from btc_lifecycle.defs.markets import all_markets
from btc_lifecycle.defs.modelling.checks import features_checks
from btc_lifecycle.defs.monitoring.assets import drift_report_asset
from btc_lifecycle.defs.monitoring.comparison import market_comparison_asset
from btc_lifecycle.defs.monitoring.sensors import build_retrain_on_drift_sensor
from btc_lifecycle.defs.resources import project_resources
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG
from btc_lifecycle_tests.e2e.reliability.conftest import PRICES, Store, partition_range_tags
from btc_lifecycle_tests.modelling.conftest import mean_reverting_candles

DAYS = "2024-01-01...2024-01-02"
BINANCE_US = {"exchange": "binanceus", "symbol": "BTC/USD", "interval": "1m"}
# A third market on binance at another interval: the replay aggregates its minutes to 5m as Binance does.
USDC_5M = {"exchange": "binance", "symbol": "BTC/USDC", "interval": "5m"}
USDC_1M = {**USDC_5M, "interval": "1m"}


@pytest.fixture
def files() -> dict[str, pd.DataFrame]:
    """Two days of minutes per market, each its own walk."""
    return {
        "BTC/USDT": synthetic_candles(2_880, seed=41),
        "BTC/USD": synthetic_candles(2_880, seed=42, start_price=30_050.0),
        "BTC/USDC": synthetic_candles(2_880, seed=43, start_price=29_990.0),
    }


def ingest_every_market(store: Store, api_url: str) -> dg.ExecuteInProcessResult:
    """Every configured market's ingestion assets and checks over the two days, as one run."""
    settings = store.settings(api_url)
    markets = all_markets(settings)
    return dg.materialize(
        [
            *(asset for at in markets for asset in ingestion_assets(settings, at)),
            *(check for at in markets for check in ingestion_checks(settings, at)),
        ],
        resources=store.resources(settings),
        instance=store.instance,
        raise_on_error=False,
        tags=partition_range_tags(DAYS),
    )


def stored(store: Store, table: str, symbol: str, interval: str) -> pd.DataFrame:
    with duckdb.connect(str(store.db), read_only=True) as conn:
        return read_candles(conn, table, symbol, interval)[PRICES]


def new_rows(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> int:
    """What the run's raw_candles of ``key`` inserted (a ranged run writes the same facts on every day)."""
    events = [event for event in result.get_asset_materialization_events() if event.asset_key == key]
    [rows] = {event.materialization.metadata["new_rows"].value for event in events}
    return rows


def five_minutes(minutes: pd.DataFrame) -> pd.DataFrame:
    """Binance's 5m candles of a minute file (an independent aggregation to compare with)."""
    frame = minutes.set_index("open_time")
    spans = frame.resample("5min", label="left", closed="left")
    return (
        pd.DataFrame(
            {
                "open": spans["open"].first(),
                "high": spans["high"].max(),
                "low": spans["low"].min(),
                "close": spans["close"].last(),
                "volume": spans["volume"].sum(),
            }
        )
        .reset_index()
        .dropna()
    )


def test_two_markets_on_two_exchange_ids_are_ingested_and_checked_in_one_run(tmp_path, files):
    store = Store(tmp_path, more_markets=[BINANCE_US])
    with ReplayExchange({symbol: files[symbol] for symbol in ("BTC/USDT", "BTC/USD")}, speed=0) as exchange:
        url = exchange.base_url
        result = ingest_every_market(store, url)
    assert result.success
    for table, symbol in (("candles", "BTC/USDT"), ("candles_binanceus_btc_usd_1m", "BTC/USD")):
        pd.testing.assert_frame_equal(
            stored(store, table, symbol, "1m").reset_index(drop=True), files[symbol][PRICES], check_dtype=False
        )
        labeled = stored(store, f"{table}_labeled", symbol, "1m")
        assert len(labeled) == 2_880
    checks = {
        (evaluation.asset_key.to_user_string(), evaluation.check_name): evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }
    assert len(checks) == 10 and all(checks.values()), checks
    settings = store.settings(url)
    main, further = settings.ingest.markets
    stats = [json.loads(settings.ingestion_stats_file(market).read_text()) for market in (main, further)]
    assert [(s["exchange"], s["symbol"], s["total_rows"]) for s in stats] == [
        ("binance", "BTC/USDT", 2_880),
        ("binanceus", "BTC/USD", 2_880),
    ]
    assert stats[1]["source"] == f"binanceus API at {url}"


def test_a_market_added_later_backfills_only_its_own_days(tmp_path, files):
    store = Store(tmp_path, more_markets=[BINANCE_US])
    with ReplayExchange(files, speed=0) as exchange:
        assert ingest_every_market(store, exchange.base_url).success
        before = {
            table: stored(store, table, symbol, "1m")
            for table, symbol in (("candles", "BTC/USDT"), ("candles_binanceus_btc_usd_1m", "BTC/USD"))
        }
        store.config.write_text(
            json.dumps({**json.loads(store.config.read_text()), "more_markets": [BINANCE_US, USDC_5M]})
        )
        again = ingest_every_market(store, exchange.base_url)
    assert again.success
    assert new_rows(again, dg.AssetKey("raw_candles")) == 0
    assert new_rows(again, dg.AssetKey(["binanceus_btc_usd_1m", "raw_candles"])) == 0
    assert new_rows(again, dg.AssetKey(["binance_btc_usdc_5m", "raw_candles"])) == 576
    for table, symbol in (("candles", "BTC/USDT"), ("candles_binanceus_btc_usd_1m", "BTC/USD")):
        pd.testing.assert_frame_equal(stored(store, table, symbol, "1m"), before[table])
    usdc = stored(store, "candles_binance_btc_usdc_5m", "BTC/USDC", "5m")
    pd.testing.assert_frame_equal(usdc.reset_index(drop=True), five_minutes(files["BTC/USDC"]), check_dtype=False)


# --- the whole lifecycle of two markets -------------------------------------------------------------

FIVE_DAYS = "2024-01-01...2024-01-05"
FAST_MODEL = {**DEFAULT_CONFIG["model"], "n_folds": 3}


def lifecycle_settings(store: Store, api_url: str, root):
    """The store's settings with an MLflow store of its own."""
    return load_settings({**store.env(api_url), "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"})


def lifecycle(settings) -> dg.Definitions:
    """Every market's lifecycle, its checks and retraining sensor, and the comparison: the code
    location without the main market's backtest, PDF ingestion report and Feast export."""
    markets = all_markets(settings)
    return dg.Definitions(
        assets=[
            *(asset for at in markets for asset in market_assets(settings, at)),
            market_comparison_asset(settings),
        ],
        asset_checks=[
            *(check for at in markets for check in [*ingestion_checks(settings, at), features_checks(settings, at)])
        ],
        sensors=[build_retrain_on_drift_sensor(settings.monitoring, at) for at in markets],
        resources=project_resources(settings),
    )


def registered_versions(settings, market) -> list[str]:
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)
    name = settings.model_name_of(market)
    return sorted(str(version.version) for version in client.search_model_versions(f"name = '{name}'"))


@pytest.fixture(scope="module")
def two_lifecycles(tmp_path_factory):
    """Five learnable days of BTC/USDT on binance and BTC/USD on binanceus, every asset and check
    of both markets in one run, on a persistent instance (the sensors read it)."""
    root = tmp_path_factory.mktemp("markets")
    store = Store(root, more_markets=[BINANCE_US], model=FAST_MODEL)
    files = {"BTC/USDT": mean_reverting_candles(7_200, seed=5), "BTC/USD": mean_reverting_candles(7_200, seed=6)}
    with dg.instance_for_test() as instance, ReplayExchange(files, speed=0) as exchange:
        settings = lifecycle_settings(store, exchange.base_url, root)
        defs = lifecycle(settings)
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, tags=partition_range_tags(FIVE_DAYS), raise_on_error=False
        )
        yield settings, defs, instance, result, (store, root)


def test_two_markets_materialize_every_asset_and_check_of_both(two_lifecycles):
    settings, defs, _, result, _ = two_lifecycles
    assert result.success
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert materialized == {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert len(evaluations) == 2 * 9
    assert all(
        passed for (_, name), passed in evaluations.items() if name not in ("data_drift", "realized_performance")
    )


def test_each_market_has_its_own_registered_model_and_champion(two_lifecycles):
    settings, _, _, _, _ = two_lifecycles
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)
    for market in settings.ingest.markets:
        name = settings.model_name_of(market)
        assert registered_versions(settings, market) == ["1"]
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
        assert client.get_experiment_by_name(name) is not None
    assert [settings.model_name_of(m) for m in settings.ingest.markets] == [
        "btc_direction",
        "btc_direction_binanceus_btc_usd_1m",
    ]


def test_the_comparison_shows_both_markets_side_by_side(two_lifecycles):
    settings, _, _, result, _ = two_lifecycles
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("market_comparison")]
    metadata = event.materialization.metadata
    rows = {row["market"]: row for row in metadata["rows"].value}
    assert set(rows) == {"BTC/USDT on binance, 1m", "BTC/USD on binanceus, 1m"}
    for row in rows.values():
        assert 0.5 < row["walk-forward ROC AUC"] <= 1  # the candles are learnable
        assert row["excess over prior"] < 0
        assert row["champion"] == "v1" and row["gate"] == "first_champion"
    table = metadata["comparison"].value
    assert "BTC/USDT on binance, 1m" in table and "BTC/USD on binanceus, 1m" in table
    pdf = metadata["pdf"].value
    assert pdf.endswith("report.pdf") and open(pdf, "rb").read(5) == b"%PDF-"


def test_a_failed_drift_check_retrains_that_market_only_under_the_real_sensor(two_lifecycles):
    settings, defs, instance, _, _ = two_lifecycles
    main, usd = settings.ingest.markets
    # The further market's real drift report, judged with a threshold no window passes.
    monitoring = replace(settings.monitoring, drift_share_threshold=0.0, stattest_threshold=1e-9)
    strict = settings.model_copy(update={"monitoring": monitoring})
    judged = dg.materialize(
        [drift_report_asset(settings, all_markets(settings)[1])], resources=project_resources(strict), instance=instance
    )
    assert [e.passed for e in judged.get_asset_check_evaluations() if e.check_name == "data_drift"] == [False]
    sensors = {sensor.name: sensor for sensor in defs.sensors}

    def tick(name: str):
        with dg.build_sensor_context(instance=instance, definitions=defs) as context:
            return sensors[name](context)

    assert isinstance(tick("retrain_on_drift_sensor"), dg.SkipReason)
    request = tick("binanceus_btc_usd_1m_retrain_on_drift_sensor")
    assert isinstance(request, dg.RunRequest)
    job = defs.resolve_job_def(sensors["binanceus_btc_usd_1m_retrain_on_drift_sensor"].job_name)
    run = job.execute_in_process(
        instance=instance,
        tags=request.tags,
        run_config={"ops": {"binanceus_btc_usd_1m__model": {"config": {"force_retrain": True}}}},
    )
    assert run.success
    retrained = {e.asset_key.to_user_string() for e in run.get_asset_materialization_events()}
    assert retrained == {
        "binanceus_btc_usd_1m/model",
        "binanceus_btc_usd_1m/predictions",
        "binanceus_btc_usd_1m/drift_report",
    }
    assert registered_versions(settings, usd) == ["1", "2"]
    assert registered_versions(settings, main) == ["1"]


def test_a_third_market_added_later_trains_only_its_own_model(two_lifecycles):
    settings, _, instance, _, (store, root) = two_lifecycles
    before = {market: registered_versions(settings, market) for market in settings.ingest.markets}
    store.config.write_text(json.dumps({**json.loads(store.config.read_text()), "more_markets": [BINANCE_US, USDC_1M]}))
    files = {
        "BTC/USDT": mean_reverting_candles(7_200, seed=5),
        "BTC/USD": mean_reverting_candles(7_200, seed=6),
        "BTC/USDC": mean_reverting_candles(7_200, seed=7),
    }
    with ReplayExchange(files, speed=0) as exchange:
        three = lifecycle_settings(store, exchange.base_url, root)
        result = (
            lifecycle(three)
            .resolve_implicit_global_asset_job_def()
            .execute_in_process(instance=instance, tags=partition_range_tags(FIVE_DAYS), raise_on_error=False)
        )
    assert result.success
    decisions = {
        e.asset_key.to_user_string(): e.materialization.metadata["decision"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "model"
    }
    assert decisions == {
        "model": "unchanged_inputs",
        "binanceus_btc_usd_1m/model": "unchanged_inputs",
        "binance_btc_usdc_1m/model": "first_champion",
    }
    for market, versions in before.items():
        assert registered_versions(three, market) == versions
    assert new_rows(result, dg.AssetKey("raw_candles")) == 0
    assert new_rows(result, dg.AssetKey(["binanceus_btc_usd_1m", "raw_candles"])) == 0
    assert new_rows(result, dg.AssetKey(["binance_btc_usdc_1m", "raw_candles"])) == 7_200
    assert registered_versions(three, three.ingest.markets[2]) == ["1"]
