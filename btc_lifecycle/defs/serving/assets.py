"""Serving assets: the features table's days exported as Feast's offline source, and the newest
closed candle materialized to Feast's online store."""

import dagster as dg

from btc_lifecycle.adapters.feature_store import read_features, table_exists
from btc_lifecycle.config import Settings
from btc_lifecycle.defs.automation import UPDATE_AFTER_UPSTREAM
from btc_lifecycle.defs.modelling.assets import FEATURES
from btc_lifecycle.defs.partitions import SINGLE_RUN, daily_partitions, window_of
from btc_lifecycle.resources import FeatureStoreResource
from btc_lifecycle.resources.feast_store import FeastStoreResource

GROUP = "serving"
FEAST_OFFLINE_FEATURES = dg.AssetKey("feast_offline_features")

# After any new export, whichever days it held. Not eager(): for an unpartitioned asset that
# waits until no partition of its parent is missing, and the daily partitions reach back to 2017.
AFTER_EXPORT = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after an offline export")


def daily_feast_export_asset(settings: Settings) -> dg.AssetsDefinition:
    """feast_offline_features, partitioned by the settings' days."""

    @dg.asset(
        group_name=GROUP,
        partitions_def=daily_partitions(settings),
        backfill_policy=SINGLE_RUN,
        automation_condition=UPDATE_AFTER_UPSTREAM,
        pool="duckdb",
        deps=[dg.AssetDep(FEATURES, partition_mapping=dg.IdentityPartitionMapping())],
        kinds={"feast", "parquet"},
        description="A day's feature rows as Feast's offline source: one Parquet file per UTC day, replaced atomically "
        "(data/feature_store/feast/offline/<table>/day=YYYY-MM-DD/part.parquet).",
    )
    def feast_offline_features(
        context: dg.AssetExecutionContext,
        feature_store: FeatureStoreResource,
        feast_store: FeastStoreResource,
        settings: dg.ResourceParam[Settings],
    ) -> dg.MaterializeResult:
        from btc_lifecycle.adapters.feast_repo import export_days

        series = settings.ingest.series
        start, end = window_of(context)
        with feature_store.get_connection() as conn:
            if not table_exists(conn, series.features_table):
                raise dg.Failure(
                    f"the features table {series.features_table} does not exist yet: materialize features first "
                    "(make run, or select *feast_online_features)",
                    allow_retries=False,
                )
            frame = read_features(conn, series, start=start)
        frame = frame.loc[frame["open_time"] < end].reset_index(drop=True)
        repo = feast_store.repository()
        rows = export_days(repo, frame, start, end)
        context.log.info(f"{rows} feature rows exported to {repo.offline_dir}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "days": len(frame["open_time"].dt.floor("D").unique()) if len(frame) else 0,
                "offline_source": dg.MetadataValue.path(repo.source_glob),
                "first_candle": frame["open_time"].iloc[0].isoformat() if len(frame) else "none",
                "last_candle": frame["open_time"].iloc[-1].isoformat() if len(frame) else "none",
            }
        )

    return feast_offline_features


@dg.asset(
    group_name=GROUP,
    backfill_policy=SINGLE_RUN,  # unpartitioned; lets one `--partition-range` run take the whole graph
    deps=[FEAST_OFFLINE_FEATURES],
    automation_condition=AFTER_EXPORT,
    kinds={"feast", "sqlite"},
    description="The feature repository applied (generated from FEATURE_COLUMNS) and the newest closed candle "
    "materialized to Feast's online store, incrementally: up to the open time of the newest exported candle.",
)
def feast_online_features(
    context: dg.AssetExecutionContext,
    settings: dg.ResourceParam[Settings],
) -> dg.MaterializeResult:
    from btc_lifecycle.adapters.feast_repo import sync_online

    repo, applied, done, online = sync_online(settings)
    if done.end is None:
        context.log.warning(f"nothing exported under {repo.offline_dir} yet: nothing to materialize")
    else:
        context.log.info(
            f"{done.candles_read} exported candle(s) from {done.start.isoformat()} to {done.end.isoformat()} read; "
            f"the online store holds {online.event_time.isoformat() if online else 'nothing'}"
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": done.online_rows,
            "rows_materialized": done.online_rows,
            "candles_read": done.candles_read,
            "materialized_from": done.start.isoformat() if done.start is not None else "none",
            "materialized_until": done.end.isoformat() if done.end is not None else "none",
            "latest_event_time_online": online.event_time.isoformat() if online else "none",
            "registry": dg.MetadataValue.path(str(repo.registry_path)),
            "feature_store_yaml": dg.MetadataValue.path(str(repo.yaml_path)),
            "online_store": settings.feast.online_store,
            "feast_objects": dg.MetadataValue.json(applied),
            "features": dg.MetadataValue.json(list(repo.feature_columns)),
        }
    )
