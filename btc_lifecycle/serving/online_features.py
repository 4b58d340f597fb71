"""The seam between the service and an online feature store: the newest candle of a market."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OnlineFeatures:
    """The newest candle's open time (UTC) and its feature values by name."""

    open_time: datetime
    values: Mapping[str, float | None]


class FeatureSource(Protocol):
    """Where the service reads features; implementations must be safe to call from many threads."""

    def latest(self, symbol: str, interval: str) -> OnlineFeatures | None:
        """The market's newest online candle, or None when the store holds none for it yet.

        Raises ``OnlineStoreUnavailable`` when the store cannot be read.
        """
        ...

    def describe(self) -> str:
        """Where the features come from, for /health (a path, a URL)."""
        ...


class OnlineStoreUnavailable(RuntimeError):
    """The online store cannot be read: the message says what is missing and what to run."""


@dataclass
class InMemoryFeatureSource:
    """Features held in a dict, for tests and for trying the service without a store."""

    rows: dict[tuple[str, str], OnlineFeatures] = field(default_factory=dict)
    unavailable: str | None = None  # set to a message to make every read fail like a lost store
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def put(self, symbol: str, interval: str, features: OnlineFeatures) -> None:
        with self._lock:
            self.rows[(symbol, interval)] = features

    def latest(self, symbol: str, interval: str) -> OnlineFeatures | None:
        if self.unavailable is not None:
            raise OnlineStoreUnavailable(self.unavailable)
        with self._lock:
            return self.rows.get((symbol, interval))

    def describe(self) -> str:
        return "in memory"
