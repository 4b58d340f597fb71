"""Dagster resources: thin, configurable handles on the adapters."""

# Imported for its effect: every process that loads the code location exits without a final
# multi-second garbage collection (see fast_exit).
import btc_lifecycle.resources.fast_exit  # noqa: F401
from btc_lifecycle.resources.exchange import CandleExchangeResource
from btc_lifecycle.resources.feature_store import FeatureStoreResource
from btc_lifecycle.resources.model_registry import ModelRegistryResource
from btc_lifecycle.resources.report_worker import ReportWorkerResource

__all__ = ["CandleExchangeResource", "FeatureStoreResource", "ModelRegistryResource", "ReportWorkerResource"]
