"""The lifecycle loop in process: drift fails on shifted volatility, the sensor retrains, the gate decides."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.simulation import Simulation, simulate
from btc_lifecycle_tests.conftest import write_generic_csv

pytestmark = pytest.mark.e2e


def calm_then_volatile(calm: int, volatile: int) -> pd.DataFrame:
    quiet = synthetic_candles(calm, seed=5, volatility=0.0006)
    wild = synthetic_candles(
        volatile, seed=6, volatility=0.004,
        start=quiet["open_time"].iloc[-1] + pd.Timedelta(minutes=1), start_price=float(quiet["close"].iloc[-1]),
    )
    return pd.concat([quiet, wild], ignore_index=True)


def test_shifted_volatility_fails_the_drift_check_and_the_sensor_retrains_once(tmp_path):
    candles = calm_then_volatile(calm=5_000, volatile=1_600)
    path = write_generic_csv(candles, tmp_path / "candles.csv")
    calm_end = candles["open_time"].iloc[5_000]
    with Simulation(candles, path, tmp_path / "state", start=calm_end) as simulation:
        simulation.bootstrap()
        simulation.tick()  # nothing new: the calm window passes and nothing is retrained
        simulation.advance_to(candles["open_time"].iloc[-1] + pd.Timedelta(minutes=1))
        simulation.tick()
        timeline = simulation.timeline

    drifts = timeline.of_kind("drift")
    assert drifts[0]["data_drift"] == "pass" and drifts[0]["by"] == "schedule"
    assert drifts[1]["data_drift"] == "FAIL" and drifts[1]["by"] == "schedule"
    assert "volatility_15" in drifts[1]["drifted"]
    assert len(timeline.of_kind("retrain")) == 1
    promotion = timeline.of_kind("promotion")[0]
    assert promotion["version"] == 2 and promotion["alias"] in ("champion", "challenger")
    client = MlflowClient(f"sqlite:///{tmp_path / 'state' / 'mlflow' / 'mlflow.db'}")
    version = client.get_model_version("btc_direction", "2")
    assert version.tags["promotion_decision"] in ("promote", "keep_champion")
    runs = client.search_runs([client.get_experiment_by_name("btc_direction").experiment_id])
    assert {run.info.status for run in runs} == {"FINISHED"}


@pytest.mark.real_data
def test_the_replayed_march_retrains_after_the_crash_and_not_in_the_calm_week(shared_candles_path, tmp_path):
    # Replayed up to the crash's second day: enough to see the calm week and the first retraining.
    until = pd.Timestamp("2023-03-11T06:00Z")
    timeline = simulate(shared_candles_path, warmup_days=3, tick_hours=6, state=tmp_path / "state", until=until)
    first_week_end = pd.Timestamp("2023-03-08T00:00Z")
    crash_start = pd.Timestamp("2023-03-10T00:00Z")
    retrains = [event["at"] for event in timeline.of_kind("retrain")]
    calm = [event for event in timeline.of_kind("drift") if event["at"] < first_week_end]
    assert calm and all(event["data_drift"] == "pass" for event in calm)
    assert retrains and min(retrains) >= crash_start
    assert timeline.of_kind("promotion")
