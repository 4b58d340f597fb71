"""The drift share only falls as the per-column threshold rises; the fast path matches evidently."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_lifecycle.domain.synthetic import synthetic_candles, thin_venue_candles
from btc_lifecycle.modelling.features import compute_features, feature_complete
from btc_lifecycle.monitoring import MonitoringConfig, data_drift, drift_scores
from btc_lifecycle_tests.monitoring.conftest import CALM_VOLATILITY, FEATURES_ONLY


def features_of(seed: int, volatility: float, count: int, thin: bool) -> pd.DataFrame:
    """The last ``count`` feature-complete rows of seeded candles; a thin venue's gap flags move."""
    candles = synthetic_candles(count * 3 if thin else count + 100, seed=seed, volatility=volatility)
    if thin:
        candles = thin_venue_candles(candles, no_trade_share=0.5, seed=seed)
    features = compute_features(candles, "1m", max_fill_minutes=30 if thin else 0)
    return features.loc[feature_complete(features)].tail(count).reset_index(drop=True)


@st.composite
def feature_windows(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a current window: same or other market, calm or several times wilder."""
    thin = draw(st.booleans())
    reference = features_of(draw(st.integers(0, 10_000)), CALM_VOLATILITY, draw(st.integers(100, 500)), thin)
    wilder = draw(st.sampled_from([0.5, 1.0, 1.5, 3.0]))
    current = features_of(draw(st.integers(0, 10_000)), wilder * CALM_VOLATILITY, draw(st.integers(60, 300)), thin)
    return reference, current


thresholds = st.lists(st.floats(0.01, 3.0), min_size=2, max_size=6, unique=True).map(sorted)


@settings(max_examples=30)
@given(feature_windows(), thresholds)
def test_raising_the_stattest_threshold_never_raises_the_drift_share(windows, ascending):
    reference, current = windows
    results = [
        drift_scores(reference, current, FEATURES_ONLY, MonitoringConfig(stattest_threshold=threshold))
        for threshold in ascending
    ]
    shares = [result.drift_share for result in results]
    assert shares == sorted(shares, reverse=True), dict(zip(ascending, shares, strict=True))
    # Column by column: a column that drifts at a higher threshold drifts at every lower one.
    for lower, higher in zip(results, results[1:], strict=False):
        assert set(higher.drifted_columns) <= set(lower.drifted_columns)
        assert higher.monitored_columns == lower.monitored_columns


# The evidently report takes about a second: a few examples check the fast path against it.
# Its correlation metrics divide by a flat column's zero spread; that warning is evidently's.
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
@settings(max_examples=4)
@given(feature_windows(), st.floats(0.05, 1.0))
def test_the_fast_drift_path_agrees_with_the_evidently_report(windows, threshold):
    reference, current = windows
    config = dataclasses.replace(MonitoringConfig(), stattest_threshold=threshold)
    fast = drift_scores(reference, current, FEATURES_ONLY, config)
    report = data_drift(reference, current, FEATURES_ONLY, config)
    assert fast.drifted_columns == report.drifted_columns
    assert fast.drift_share == report.drift_share
    assert fast.constant_columns == report.constant_columns
    for name, column in report.per_column.items():
        assert fast.per_column[name].score == pytest.approx(column.score)
        assert fast.per_column[name].threshold == pytest.approx(column.threshold)
