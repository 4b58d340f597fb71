"""The calibrated defaults on real candles: green through the calm first week of March 2023,
red once the SVB/USDC crash (10 to 14 March) reaches the current window."""

from __future__ import annotations

import pandas as pd
import pytest

from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.monitoring.calibrate import simulate_monitoring, study_features
from btc_lifecycle.monitoring.drift import MonitoringConfig

# A study script's tests: make mutate does not mutate the script, nor run these ([tool.mutmut]).
pytestmark = pytest.mark.study

CALM_UNTIL = pd.Timestamp("2023-03-08T00:00Z")
CRASH = (pd.Timestamp("2023-03-10T00:00Z"), pd.Timestamp("2023-03-15T00:00Z"))


@pytest.mark.real_data
def test_defaults_stay_green_in_the_calm_week_and_turn_red_in_the_crash(shared_candles_path):
    features = study_features(read_candle_file(shared_candles_path))
    features = features.loc[features["open_time"] < CRASH[1]].reset_index(drop=True)
    verdicts, _ = simulate_monitoring(features, reference_days=3, config=MonitoringConfig())

    calm = [v for v in verdicts if v.end <= CALM_UNTIL]
    assert len(calm) >= 90  # every hour from 4 March (the champion's first) to 8 March 00:00
    assert not any(v.red for v in calm), max(v.drift_share for v in calm)
    first_red = next(v for v in verdicts if v.red)
    assert CRASH[0] <= first_red.end < CRASH[1]
    assert sum(v.red for v in verdicts if CRASH[0] <= v.end < CRASH[1]) >= 10
