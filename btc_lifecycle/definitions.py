"""The code location: assembles assets, jobs, schedules, sensors and resources from the one configuration."""

import dagster as dg

from btc_lifecycle.assets import ingestion, modelling, monitoring, reporting
from btc_lifecycle.config import Settings, load_settings
from btc_lifecycle.jobs import ALL_JOBS
from btc_lifecycle.resources import CandleExchangeResource, FeatureStoreResource, ModelRegistryResource
from btc_lifecycle.schedules import build_schedules
from btc_lifecycle.sensors import build_retrain_on_drift_sensor


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, reporting, modelling, monitoring]),
        jobs=ALL_JOBS,
        schedules=build_schedules(settings.schedules),
        sensors=[build_retrain_on_drift_sensor(settings.monitoring)],
        resources={
            "settings": settings,
            "exchange": CandleExchangeResource.from_settings(settings),
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
            "mlflow": ModelRegistryResource.from_settings(settings),
        },
        executor=dg.in_process_executor,
    )


defs = build_definitions(load_settings())
