"""The resources every asset shares, built from the one typed configuration."""

from btc_lifecycle.config import Settings
from btc_lifecycle.resources import (
    CandleExchangeResource,
    FeatureStoreResource,
    ModelRegistryResource,
)
from btc_lifecycle.resources.feast_store import FeastStoreResource
from btc_lifecycle.resources.model_registry import mlflow_resource


def project_resources(settings: Settings) -> dict[str, object]:
    """Each resource key the assets, checks and sensors ask for, configured from ``settings``."""
    return {
        "settings": settings,
        "exchange": CandleExchangeResource.from_settings(settings),
        "feature_store": FeatureStoreResource.from_settings(settings),
        "feast_store": FeastStoreResource(settings=settings),
        "mlflow": mlflow_resource(settings),
        "model_registry": ModelRegistryResource.from_settings(settings),
    }
