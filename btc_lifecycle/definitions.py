"""The code location: assembles assets, jobs and resources from the one configuration."""

import dagster as dg

from btc_lifecycle.assets import ingestion, modelling, reporting
from btc_lifecycle.config import Settings, load_settings
from btc_lifecycle.resources import CandleExchangeResource, FeatureStoreResource, ModelRegistryResource

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.groups(ingestion.GROUP),
    description="Fetch new candles, label them and record what the ingest did.",
)


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, reporting, modelling]),
        jobs=[ingestion_job],
        resources={
            "settings": settings,
            "exchange": CandleExchangeResource.from_settings(settings),
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
            "mlflow": ModelRegistryResource.from_settings(settings),
        },
        executor=dg.in_process_executor,
    )


defs = build_definitions(load_settings())
