"""`make simulate` on the shared real month: the loop through the SVB/USDC crash, tick by tick.

The replay evaluates monitoring every six hours from 4 to 16 March (48 ticks), retrains on the
drift sensor's request and gates each challenger. It stops a tick after the last retraining the
month sets off (on the 15th, which keeps the champion and starts a cool-down of several days):
the calm week, the crash and the whole retraining loop, in two thirds of the file's ticks. The
longest test of the suite, in a file of its own: tests are spread over workers by file, so one
worker runs it while the others run the rest.
"""

from __future__ import annotations

import pandas as pd
import pytest

from btc_lifecycle.simulation import simulate

pytestmark = pytest.mark.e2e


@pytest.mark.real_data
def test_the_replayed_march_retrains_after_the_crash_settles_and_explains_every_verdict(shared_candles_path, tmp_path):
    settled = pd.Timestamp("2023-03-16T00:00Z")
    timeline = simulate(shared_candles_path, warmup_days=3, tick_hours=6, state=tmp_path / "state", until=settled)
    first_week_end = pd.Timestamp("2023-03-08T00:00Z")
    scheduled = [event for event in timeline.of_kind("drift") if event["by"] == "schedule"]
    failing = [event["at"] for event in scheduled if "FAIL" in (event["data_drift"], event["performance"])]
    retrains = [event["at"] for event in timeline.of_kind("retrain")]
    assert all(event["data_drift"] == "pass" for event in scheduled if event["at"] < first_week_end)
    assert failing and min(retrains) - min(failing) <= pd.Timedelta(hours=12)
    assert min(retrains) >= first_week_end
    assert 1 <= len(retrains) <= 3
    # Every evaluation's realized-performance verdict carries its numbers.
    for event in scheduled:
        assert event["performance"] in ("pass", "FAIL", "skip")
        assert "realized" in event["performance_why"] and any(ch.isdigit() for ch in event["performance_why"])
        if event["performance"] != "skip":
            assert "constant prior" in event["performance_why"] and event["prior_log_loss"] is not None
    # The check speaks during the crash: the champion no better than its prior on what it predicted.
    assert any(event["performance"] == "FAIL" for event in scheduled)
    # Every gate decision after the first carries its paired test, and a keep re-bases the reference.
    trainings = sorted(timeline.of_kind("promotion") + timeline.of_kind("keep"), key=lambda event: event["version"])
    assert len(trainings) == len(retrains) + 1
    assert all(event["p_value"] is not None and "p=" in event["reason"] for event in trainings[1:])
    assert len(timeline.of_kind("rebaseline")) == len(timeline.of_kind("keep"))
    assert (tmp_path / "state" / "dagster_home" / "dagster.yaml").is_file()
