"""Dagster resources: thin, configurable handles on the adapters."""

from btc_lifecycle.resources.exchange import CandleExchangeResource
from btc_lifecycle.resources.feature_store import FeatureStoreResource

__all__ = ["CandleExchangeResource", "FeatureStoreResource"]
