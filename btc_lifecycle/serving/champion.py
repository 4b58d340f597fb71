"""The champion in memory, and the watcher that swaps in a new one when ``@champion`` moves.

A request only reads ``ChampionWatcher.current`` (one attribute read): checking the alias and
loading a new version happen on the watcher's thread or on ``POST /reload``, and the new model
replaces the old one only once it is loaded and checked, so a request never waits for a load.

The model comes through MLflow's xgboost flavor, which reads XGBoost's own ubj file (never a
pickle); the service keeps its ``Booster`` and predicts with ``inplace_predict`` on one row,
several times faster than ``XGBClassifier.predict_proba`` on a one-row DataFrame.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class NoChampion(LookupError):
    """No version carries the champion alias (or there is no registry yet); the message says
    what to run."""


class IncompatibleChampion(ValueError):
    """The champion cannot score this code's features (other columns, another objective)."""


@dataclass(frozen=True)
class LoadedChampion:
    """One model version, loaded and checked, ready to score rows in FEATURE_COLUMNS order."""

    name: str
    version: str
    booster: Any  # xgboost.Booster
    iteration_range: tuple[int, int]  # the trees XGBClassifier.predict_proba uses (early stopping)
    loaded_at: datetime
    load_seconds: float

    def up_probability(self, row: Sequence[float]) -> float:
        """P(the close a label horizon later is higher; the next candle by default) for one row of feature values."""
        import numpy as np

        values = np.asarray([row], dtype="float64")
        return float(self.booster.inplace_predict(values, iteration_range=self.iteration_range)[0])


def champion_from_classifier(
    model, name: str, version: str, feature_columns: Sequence[str], loaded_at: datetime, load_seconds: float = 0.0
) -> LoadedChampion:
    """An ``XGBClassifier`` as a ``LoadedChampion``, refused unless it reads ``feature_columns``
    in that order and predicts a binary logistic probability."""
    booster = model.get_booster()
    names = list(booster.feature_names or [])
    if names != list(feature_columns):
        raise IncompatibleChampion(
            f"model {name} version {version} was trained on other features ({len(names)} columns; this code "
            f"computes {len(feature_columns)}): materialize the model asset once (make run) so that a model "
            "on today's features becomes champion"
        )
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    if objective != "binary:logistic":
        raise IncompatibleChampion(
            f"model {name} version {version} has objective {objective!r}, not binary:logistic: "
            "its output is not the probability of an up candle"
        )
    booster.set_param({"nthread": 1})  # one row per request: threads only add their start-up cost
    try:
        iteration_range = (0, booster.best_iteration + 1)
    except AttributeError:  # trained without early stopping: every tree
        iteration_range = (0, 0)
    return LoadedChampion(name, str(version), booster, iteration_range, loaded_at, load_seconds)


class ChampionLoader(Protocol):
    """Which version is champion, and that version loaded."""

    model_name: str

    def champion_version(self) -> str:
        """The version the champion alias points at; raises ``NoChampion``."""
        ...

    def load(self, version: str) -> LoadedChampion:
        """That version, loaded and checked; raises ``IncompatibleChampion``."""
        ...


@dataclass(frozen=True)
class MlflowChampionLoader:
    """The champion of ``model_name`` in an MLflow registry; touches no process-wide MLflow state."""

    tracking_uri: str
    registry_uri: str
    model_name: str
    feature_columns: tuple[str, ...]
    clock: Clock = utc_now

    @cached_property
    def _client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def champion_version(self) -> str:
        from mlflow.exceptions import MlflowException

        from btc_lifecycle.adapters.model_registry import CHAMPION_ALIAS

        for uri in {self.tracking_uri, self.registry_uri}:
            # Opening a missing SQLite store would create one (and run every migration).
            if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
                raise NoChampion(
                    f"no MLflow store at {uri.removeprefix('sqlite:///')}: run `make run` (or `make demo`) "
                    "to train and register a champion"
                )
        try:
            version = self._client.get_model_version_by_alias(self.model_name, CHAMPION_ALIAS)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise NoChampion(
                    f"no version of model {self.model_name!r} is champion yet: run `make run` to train and register one"
                ) from None
            raise
        return str(version.version)

    def load(self, version: str) -> LoadedChampion:
        import mlflow.xgboost

        began = time.perf_counter()
        location = self._client.get_model_version_download_uri(self.model_name, version)
        model = mlflow.xgboost.load_model(location)  # XGBClassifier.load_model on the ubj file
        return champion_from_classifier(
            model, self.model_name, version, self.feature_columns, self.clock(), time.perf_counter() - began
        )


@dataclass(frozen=True)
class ReloadOutcome:
    """What one check of the alias did."""

    checked_at: datetime
    previous_version: str | None
    version: str | None  # the version served after the check
    changed: bool
    error: str | None = None  # why the check could not load the champion (the old one stays)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at.isoformat(),
            "previous_version": self.previous_version,
            "version": self.version,
            "changed": self.changed,
            "error": self.error,
        }


class ChampionWatcher:
    """Holds the served champion; ``check()`` swaps in a new version when the alias has moved.

    ``start(interval)`` checks every ``interval`` seconds on a daemon thread; ``check()`` may be
    called at any time (``POST /reload``). Checks never run two at a time.
    """

    def __init__(self, loader: ChampionLoader, clock: Clock = utc_now) -> None:
        self.loader = loader
        self._clock = clock
        self._current: LoadedChampion | None = None
        self._check_lock = threading.Lock()
        self.last_outcome: ReloadOutcome | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.interval_seconds: float | None = None

    @property
    def current(self) -> LoadedChampion | None:
        return self._current

    def check(self) -> ReloadOutcome:
        with self._check_lock:
            previous = self._current
            previous_version = previous.version if previous else None
            try:
                version = self.loader.champion_version()
                if version == previous_version:
                    outcome = ReloadOutcome(self._clock(), previous_version, version, changed=False)
                else:
                    loaded = self.loader.load(version)
                    self._current = loaded  # the swap: the next request scores with it
                    outcome = ReloadOutcome(self._clock(), previous_version, loaded.version, changed=True)
            except (NoChampion, IncompatibleChampion) as error:
                outcome = ReloadOutcome(self._clock(), previous_version, previous_version, False, str(error))
            except Exception as error:  # a registry that is down must not kill the watcher thread
                message = f"cannot read the champion from the registry: {type(error).__name__}: {error}"
                outcome = ReloadOutcome(self._clock(), previous_version, previous_version, False, message)
            self.last_outcome = outcome
            return outcome

    def start(self, interval_seconds: float) -> None:
        """Check now, then every ``interval_seconds`` (0: only on request) until ``stop()``."""
        self.interval_seconds = interval_seconds
        self.check()
        if interval_seconds > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="champion-watcher", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
