"""Feast's FeatureStore over the generated repository, as a Dagster resource.

No ``from __future__ import annotations``: Dagster reads ``ResourceDependency`` from the class's
annotations at runtime.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import PrivateAttr

from btc_lifecycle.config import Settings

if TYPE_CHECKING:
    from feast import FeatureStore

    from btc_lifecycle.adapters.feast_repo import FeastRepo


class FeastStoreResource(dg.ConfigurableResource):
    """The repository the settings describe, and its ``FeatureStore``, opened on first use.

    No maintained dagster-feast exists; this is the usual pattern (a resource around
    ``FeatureStore``, materialization in an asset). Feast is imported only when a step asks for
    the store, as it is the heaviest import of all. The settings are a resource dependency, not
    config, so a server online store's connection (FEAST_ONLINE_STORE_URL) is never shown in the UI.
    """

    settings: dg.ResourceDependency[Settings]
    _store: Any = PrivateAttr(default=None)

    def repository(self) -> "FeastRepo":
        from btc_lifecycle.adapters.feast_repo import feast_repo

        return feast_repo(self.settings)

    def store(self) -> "FeatureStore":
        """The ``FeatureStore``, ``feature_store.yaml`` rendered from the settings when first opened."""
        if self._store is None:
            from btc_lifecycle.adapters.feast_repo import open_store

            self._store = open_store(self.repository())
        return self._store
