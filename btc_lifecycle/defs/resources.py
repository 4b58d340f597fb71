"""The resources every asset shares, built from the one typed configuration."""

import dagster as dg

from btc_lifecycle.config import project_settings
from btc_lifecycle.resources import (
    CandleExchangeResource,
    FeatureStoreResource,
    ModelRegistryResource,
    ReportWorkerResource,
)
from btc_lifecycle.resources.feast_store import FeastStoreResource


@dg.definitions
def resources() -> dg.Definitions:
    settings = project_settings()
    return dg.Definitions(
        resources={
            "settings": settings,
            "exchange": CandleExchangeResource.from_settings(settings),
            "feature_store": FeatureStoreResource.from_settings(settings),
            "feast_store": FeastStoreResource(settings=settings),
            "mlflow": ModelRegistryResource.from_settings(settings),
            "report_worker": ReportWorkerResource(),
        },
        # One process runs the steps one after another: DuckDB takes one writer per file, and a
        # process per step would pay Dagster's start-up (about 1 s) for each. The report_worker's
        # helper process uses the second core meanwhile (btc_lifecycle/warmup.py).
        executor=dg.in_process_executor,
    )
