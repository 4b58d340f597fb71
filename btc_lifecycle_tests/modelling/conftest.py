"""Seeded candles (a random walk, a mean-reverting walk), the shared real file, a fast config."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter

from btc_lifecycle.domain.candles import complete_candle_frame
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.modelling.walk_forward import WalkForwardConfig

SHARED_CANDLES_VARIABLE = "BTC_SHARED_CANDLES"

# Small enough for a test suite, big enough that pooled test folds hold ~20k candles.
# One thread: two OpenMP threads spin for seconds when other processes hold the cores.
FAST_CONFIG = WalkForwardConfig(n_folds=3, n_estimators=80, early_stopping_rounds=10, n_jobs=1)


def mean_reverting_candles(count: int, seed: int = 3, reversion: float = -0.35) -> pd.DataFrame:
    """Candles whose minute returns are AR(1) with negative autocorrelation: learnable."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.0008, count)
    returns = lfilter([1.0], [1.0, -reversion], noise)  # r[t] = reversion * r[t-1] + noise[t]
    close = 30_000 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[30_000.0], close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.0003, (2, count))) * close
    frame = pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=count, freq="1min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) + wick[0],
            "low": np.minimum(open_, close) - wick[1],
            "close": close,
            "volume": rng.gamma(2.0, 1.5, count),
        }
    )
    return complete_candle_frame(frame, "1m")


@pytest.fixture(scope="session")
def random_walk_candles() -> pd.DataFrame:
    return synthetic_candles(40_000, seed=21)


@pytest.fixture(scope="session")
def shared_candles() -> pd.DataFrame:
    path = os.environ.get(SHARED_CANDLES_VARIABLE)
    if not path:
        pytest.skip(f"{SHARED_CANDLES_VARIABLE} is unset: set it to the shared real candle CSV")
    frame = pd.read_csv(Path(path))
    frame["open_time"] = pd.to_datetime(frame["open_time"], utc=True)
    return complete_candle_frame(frame, "1m")


@pytest.fixture(autouse=True)
def forget_tracking_uri(tmp_path, monkeypatch):
    """The registry sets MLflow's global tracking URI; no test may inherit another's store.

    Each test also runs in its own directory, so a stray default store never lands in the repo.
    """
    monkeypatch.chdir(tmp_path)
    yield
    if mlflow.active_run() is not None:
        mlflow.end_run(status="KILLED")
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
