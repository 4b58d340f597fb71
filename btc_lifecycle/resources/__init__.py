"""Dagster resources: thin, configurable handles on the adapters."""

from btc_lifecycle.resources.exchange import CandleExchangeResource
from btc_lifecycle.resources.feature_store import FeatureStoreResource
from btc_lifecycle.resources.model_registry import ModelRegistryResource

__all__ = ["CandleExchangeResource", "FeatureStoreResource", "ModelRegistryResource"]
