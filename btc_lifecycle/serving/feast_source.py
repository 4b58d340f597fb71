"""The features the service scores, read from the project's Feast online store.

Built on ``btc_lifecycle.adapters.feast_repo`` (the repository generated from FEATURE_COLUMNS,
materialized by the ``feast_online_features`` asset): one ``read_online`` per request, about
0.3 ms on the SQLite online store.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.serving.online_features import OnlineFeatures, OnlineStoreUnavailable

if TYPE_CHECKING:
    from btc_lifecycle.config import Settings

WHAT_TO_RUN = "run `make run` (or `make demo`): its feast_online_features asset applies the repository"


class FeastFeatureSource:
    """``FeatureSource`` over Feast's online store; opens the store at construction (Feast's import
    takes seconds), and again on a later read if the repository did not exist yet."""

    def __init__(self, settings: Settings) -> None:
        from btc_lifecycle.adapters.feast_repo import feast_repo

        self.repo = feast_repo(settings)
        self.table = settings.ingest.table
        self._store: Any = None
        self._lock = threading.Lock()  # Feast's SQLite store shares one connection between threads
        try:
            self._open()
        except OnlineStoreUnavailable:
            pass  # a service started before the first `make run`: reads say what to run

    def _open(self):
        if self._store is None:
            if not self.repo.registry_path.is_file():
                raise OnlineStoreUnavailable(f"no Feast registry at {self.repo.registry_path}: {WHAT_TO_RUN}")
            from btc_lifecycle.adapters.feast_repo import open_store

            self._store = open_store(self.repo)
        return self._store

    def latest(self, symbol: str, interval: str) -> OnlineFeatures | None:
        from feast.errors import FeatureViewNotFoundException

        from btc_lifecycle.adapters.feast_repo import read_online

        series = CandleSeries(table=self.table, symbol=symbol, interval=interval)
        with self._lock:
            store = self._open()
            try:
                try:
                    row = read_online(store, series, self.repo.feature_columns)
                except FeatureViewNotFoundException:
                    # The repository was applied after this process cached Feast's registry.
                    store.refresh_registry()
                    row = read_online(store, series, self.repo.feature_columns)
            except FeatureViewNotFoundException:
                raise OnlineStoreUnavailable(
                    f"the Feast registry {self.repo.registry_path} has no feature view yet: {WHAT_TO_RUN}"
                ) from None
            except Exception as error:  # a locked or missing online table, a server store that is down
                raise OnlineStoreUnavailable(f"{type(error).__name__}: {error}") from error
        if row is None:
            return None
        return OnlineFeatures(open_time=row.event_time.to_pydatetime(), values=row.values)

    def describe(self) -> str:
        store = self.repo.online_store
        where = store.get("path") or store.get("host") or "server"
        return f"feast {store['type']} online store ({where}), registry {self.repo.registry_path}"
