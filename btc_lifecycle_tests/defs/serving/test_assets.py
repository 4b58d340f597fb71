"""The serving assets in process: the days written are exported, the newest closed candle goes
online, the metadata says so, and the parity check fails the run when Feast and the table differ."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import duckdb
import pandas as pd
import pytest

from btc_lifecycle.adapters.feast_repo import exported_days, feast_repo, open_store, read_online
from btc_lifecycle.adapters.feature_store import replace_features_between
from btc_lifecycle.config import load_settings
from btc_lifecycle.defs.modelling.assets import daily_feature_asset
from btc_lifecycle.defs.serving.assets import daily_feast_export_asset, feast_online_features
from btc_lifecycle.defs.serving.checks import feast_features_match_the_features_table
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.modelling.features import compute_features
from btc_lifecycle.resources import FeatureStoreResource
from btc_lifecycle.resources.feast_store import FeastStoreResource
from btc_lifecycle_tests.e2e.reliability.conftest import materialization, partition_range_tags

DAYS = "2024-01-01...2024-01-03"
CHECK = dg.AssetCheckKey(dg.AssetKey("feast_online_features"), "feast_features_match_the_features_table")


def store_features(settings, frame: pd.DataFrame) -> None:
    """The features table, as the features asset leaves it after these days."""
    start, end = frame["open_time"].min().floor("D"), frame["open_time"].max().floor("D") + pd.Timedelta(days=1)
    settings.feature_db_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.feature_db_path)) as conn:
        replace_features_between(conn, settings.ingest.series, frame, start, end)


def serving(settings) -> list:
    """The export (partitioned by ``settings``' days), the online store and their parity check."""
    return [daily_feast_export_asset(settings), feast_online_features, feast_features_match_the_features_table]


def run(settings, assets=None, days: str = DAYS) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        serving(settings) if assets is None else assets,
        resources={
            "settings": settings,
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
            "feast_store": FeastStoreResource(settings=settings),
        },
        tags=partition_range_tags(days),
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return compute_features(synthetic_candles(3 * 1440 - 200, seed=8), "1m", max_fill_minutes=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory, table):
    root = tmp_path_factory.mktemp("serving")
    settings = load_settings({"FEATURE_DB_PATH": str(root / "feature_store" / "bitcoin.duckdb")})
    store_features(settings, table)
    return settings, run(settings)


def test_the_days_written_are_exported_and_the_newest_candle_goes_online(served, table):
    settings, result = served
    assert result.success
    offline = materialization(result, "feast_offline_features")
    assert offline["dagster/row_count"] == len(table)
    assert exported_days(feast_repo(settings)) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    online = materialization(result, "feast_online_features")
    newest = table["open_time"].iloc[-1].isoformat()
    assert online["latest_event_time_online"] == online["materialized_until"] == newest
    assert online["rows_materialized"] == online["dagster/row_count"] == 1
    assert online["registry"] == str(settings.feast_repo_dir / "registry.db")


def test_the_parity_check_passes_on_the_days_written(served):
    _, result = served
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.description
    assert evaluation.metadata["training_candles_compared"].value > 2000  # the newest days written
    assert (
        evaluation.metadata["online_online_open_time"].value
        == evaluation.metadata["online_newest_exported_open_time"].value
    )


def test_a_features_table_that_drifts_from_feast_fails_the_run_naming_the_candle_and_feature(tmp_path, table):
    settings = load_settings({"FEATURE_DB_PATH": str(tmp_path / "feature_store" / "bitcoin.duckdb")})
    store_features(settings, table)
    assert run(settings).success
    # The table changes after the export: Feast now serves what the model was not trained on.
    changed = table.copy()
    at = changed.index[changed["trainable"]][-10]
    changed.loc[at, "log_return_5"] = 0.5
    store_features(settings, changed)
    result = run(settings, [feast_online_features, feast_features_match_the_features_table])
    assert not result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == CHECK.name and not evaluation.passed
    assert "log_return_5" in evaluation.description
    assert changed.loc[at, "open_time"].isoformat() in evaluation.description


def test_a_new_day_moves_the_online_candle_forward(tmp_path, table):
    settings = load_settings({"FEATURE_DB_PATH": str(tmp_path / "feature_store" / "bitcoin.duckdb")})
    first_days = table.loc[table["open_time"] < pd.Timestamp("2024-01-03", tz="UTC")]
    store_features(settings, first_days.iloc[:-1])  # its features' last target is not known yet
    assert run(settings, days="2024-01-01...2024-01-02").success
    store_features(settings, table)
    result = run(settings, days="2024-01-02...2024-01-03")
    assert result.success
    online = materialization(result, "feast_online_features")
    assert online["materialized_from"] == first_days["open_time"].iloc[-2].isoformat()
    row = read_online(open_store(feast_repo(settings)), settings.ingest.series)
    assert row.event_time == table["open_time"].iloc[-1]


def requested(materialized: list[tuple[dg.AssetKey, str | None]], at: datetime) -> dict[str, list]:
    """What the automation requests at ``at`` after an evaluation one minute before."""
    unused = dg.ResourceDefinition.none_resource()
    settings = load_settings({})
    defs = dg.Definitions(
        assets=[daily_feature_asset(settings), daily_feast_export_asset(settings), feast_online_features],
        resources={name: unused for name in ("settings", "feature_store", "feast_store")},
    )
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=at - pd.Timedelta(minutes=1)
        )
        for key, partition in materialized:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))
        second = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first.cursor, evaluation_time=at
        )
        return {
            key.to_user_string(): sorted(second.get_requested_partitions(key), key=str)
            for key in (dg.AssetKey("feast_offline_features"), dg.AssetKey("feast_online_features"))
        }


def test_new_features_are_exported_and_a_new_export_goes_online_by_themselves():
    at = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
    after_features = requested([(dg.AssetKey("features"), "2024-01-10")], at)
    assert after_features["feast_offline_features"] == ["2024-01-10"]
    after_export = requested(
        [(dg.AssetKey("features"), "2024-01-10"), (dg.AssetKey("feast_offline_features"), "2024-01-10")], at
    )
    assert after_export["feast_online_features"] == [None]
