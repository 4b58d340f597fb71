"""Feature windows from seeded synthetic candles: calm, calm again, and three times wilder."""

from __future__ import annotations

import pandas as pd
import pytest

from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.modelling.features import compute_features, feature_complete
from btc_lifecycle.monitoring.drift import MonitoringConfig

CALM_VOLATILITY = 0.0008
WINDOW = 1_500
# The synthetic candles carry no model, so the feature columns are monitored without prediction.
FEATURES_ONLY = MonitoringConfig().columns[:-1]


def feature_window(
    seed: int, volatility: float = CALM_VOLATILITY, count: int = WINDOW, start: str = "2024-01-01T00:00:00Z"
) -> pd.DataFrame:
    candles = synthetic_candles(count + 100, start=start, seed=seed, volatility=volatility)
    features = compute_features(candles, "1m")
    return features.loc[feature_complete(features)].tail(count).reset_index(drop=True)


@pytest.fixture(scope="session")
def reference_features() -> pd.DataFrame:
    return feature_window(seed=101, count=3_000)


@pytest.fixture(scope="session")
def calm_features() -> pd.DataFrame:
    return feature_window(seed=202, start="2024-01-05T00:00:00Z")


@pytest.fixture(scope="session")
def volatile_features() -> pd.DataFrame:
    return feature_window(seed=303, volatility=3 * CALM_VOLATILITY, start="2024-01-05T00:00:00Z")
