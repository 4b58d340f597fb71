"""The lifecycle loop in process: drift fails on shifted volatility, the sensor retrains, the gate decides."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.simulation import Simulation
from btc_lifecycle_tests.conftest import write_generic_csv

pytestmark = pytest.mark.e2e


def regimes(*lengths_and_volatilities: tuple[int, float]) -> pd.DataFrame:
    """Random-walk segments one after another: no model can beat the prior on any of them."""
    parts: list[pd.DataFrame] = []
    for seed, (count, volatility) in enumerate(lengths_and_volatilities, start=5):
        start = parts[-1]["open_time"].iloc[-1] + pd.Timedelta(minutes=1) if parts else "2024-01-01T00:00:00Z"
        price = float(parts[-1]["close"].iloc[-1]) if parts else 30_000.0
        parts.append(synthetic_candles(count, seed=seed, volatility=volatility, start=start, start_price=price))
    return pd.concat(parts, ignore_index=True)


def test_shifted_volatility_fails_the_drift_check_and_the_sensor_retrains_once(tmp_path):
    candles = regimes((5_000, 0.0006), (1_600, 0.004))
    path = write_generic_csv(candles, tmp_path / "candles.csv")
    calm_end = candles["open_time"].iloc[5_000]
    with Simulation(candles, path, tmp_path / "state", start=calm_end) as simulation:
        simulation.bootstrap(candles["open_time"].iloc[0])
        simulation.tick()  # nothing new: the calm window passes and nothing is retrained
        simulation.advance_to(candles["open_time"].iloc[-1] + pd.Timedelta(minutes=1))
        simulation.tick()
        timeline = simulation.timeline

    drifts = timeline.of_kind("drift")
    assert drifts[0]["data_drift"] == "pass" and drifts[0]["by"] == "schedule"
    assert drifts[1]["data_drift"] == "FAIL" and drifts[1]["by"] == "schedule"
    assert "volatility_15" in drifts[1]["drifted"]
    assert len(timeline.of_kind("retrain")) == 1
    first = timeline.of_kind("promotion")[0]
    assert first["version"] == 1 and first["decision"] == "first_champion"
    # A random walk: the challenger, trained partly on the volatile regime, is less overconfident
    # than the calm-trained champion there, but nothing beats the constant prior: it is not promoted.
    kept = timeline.of_kind("keep")[0]
    assert kept["version"] == 2 and kept["alias"] == "challenger" and kept["decision"] == "keep_champion"
    assert kept["p_value"] < 0.05 and "beats the champion but not the constant prior" in kept["reason"]
    assert kept["serving_beats_prior"] is False
    client = MlflowClient(f"sqlite:///{tmp_path / 'state' / 'mlflow' / 'mlflow.db'}")
    challenger = client.get_model_version("btc_direction", "2")
    assert challenger.tags["promotion_decision"] == "keep_champion"
    assert float(challenger.tags["gate_p_value"]) == pytest.approx(kept["p_value"], abs=1e-4)
    champion = client.get_model_version_by_alias("btc_direction", "champion")
    assert str(champion.version) == "1"
    # The kept champion was re-validated on the challenger's held-out window: the new reference.
    assert champion.tags["validated_until"] == challenger.tags["heldout_end"]
    assert champion.tags["rebaselined_by_version"] == "2"
    assert (
        timeline.of_kind("rebaseline")[0]["reference_until"] == pd.Timestamp(challenger.tags["heldout_end"]).isoformat()
    )
    runs = client.search_runs([client.get_experiment_by_name("btc_direction").experiment_id])
    assert {run.info.status for run in runs} == {"FINISHED"}


def test_a_kept_champion_settles_the_alarm_until_the_market_moves_again(tmp_path, write_config, monkeypatch):
    # calm → volatile long enough to fill the reference → calm again
    candles = regimes((5_000, 0.0006), (4_400, 0.004), (1_800, 0.0006))
    path = write_generic_csv(candles, tmp_path / "candles.csv")
    monkeypatch.setenv("INGEST_CONFIG", str(write_config(monitoring={"retrain_cooldown_hours": 24})))
    minute = pd.Timedelta(minutes=1)
    at = lambda position: candles["open_time"].iloc[position - 1] + minute  # noqa: E731 (after candle N)
    with Simulation(candles, path, tmp_path / "state", start=at(5_000)) as simulation:
        simulation.bootstrap(candles["open_time"].iloc[0])
        simulation.advance_to(at(9_400))
        simulation.tick()  # the volatile regime fails the check: retrain, keep, re-baseline
        simulation.advance_to(at(9_400 + 360))
        simulation.tick()  # six hours later, same regime: the alarm has settled
        simulation.advance_to(at(9_400 + 1_080))
        simulation.tick()  # calm again: new drift, but within the 24 h cool-down
        simulation.advance_to(at(9_400 + 1_800))
        simulation.tick()  # 30 h after the keep: the persisting drift retrains
        timeline = simulation.timeline

    # Every candle up to each tick is stored, none of the three days before the first tick
    # skipped: the volatile regime fills the reference the kept champion is re-validated on.
    assert [event["total"] for event in timeline.of_kind("ingest")] == [5_000, 9_400, 9_760, 10_480, 11_200]
    scheduled = [event for event in timeline.of_kind("drift") if event["by"] == "schedule"]
    assert [event["data_drift"] for event in scheduled] == ["FAIL", "pass", "FAIL", "FAIL"]
    retrains = [event["at"] for event in timeline.of_kind("retrain")]
    assert retrains == [at(9_400), at(9_400 + 1_800)]
    [skip] = timeline.of_kind("skip")
    assert skip["at"] == at(9_400 + 1_080) and "cool-down" in skip["reason"]
    assert timeline.of_kind("keep")[0]["at"] == at(9_400) and timeline.of_kind("rebaseline")
