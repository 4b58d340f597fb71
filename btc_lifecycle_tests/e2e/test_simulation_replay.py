"""The replayed month without the asset graph: how runs become timeline events, how the replay
clock is stepped through the file, where a simulation keeps its state, and the command line.

The asset graph's own part (bootstrap and ticks against the real definitions) is exercised end
to end in test_retraining_loop.py.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.request

import dagster as dg
import pandas as pd
import pytest

from btc_lifecycle import simulation
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.simulation import Simulation, Timeline, main, simulate, summary
from btc_lifecycle_tests.conftest import REPO_ROOT, write_generic_csv

AT = pd.Timestamp("2024-01-02T00:00Z")
NAN = math.nan


# --- runs → timeline events --------------------------------------------------------------------


def run_of(assets: dict[str, dict], checks: dict[str, tuple[bool, dict, str]] | None = None):
    """A real in-process run materializing ``assets`` with their metadata and evaluating
    ``checks`` ({name: (passed, metadata, description)}) on drift_report."""
    checks = checks or {}

    @dg.multi_asset(
        specs=[dg.AssetSpec(name) for name in assets],
        check_specs=[dg.AssetCheckSpec(name, asset="drift_report") for name in checks],
    )
    def everything():
        for name, metadata in assets.items():
            yield dg.MaterializeResult(asset_key=name, metadata=metadata)
        for name, (passed, metadata, description) in checks.items():
            yield dg.AssetCheckResult(
                check_name=name, asset_key="drift_report", passed=passed, metadata=metadata, description=description
            )

    return dg.materialize([everything], instance=dg.DagsterInstance.ephemeral())


def model_metadata(**changes) -> dict:
    """The model asset's metadata for a first champion, with ``changes``."""
    return {
        "model_version": 1,
        "alias": "champion",
        "promoted": True,
        "decision": "first_champion",
        "gate_p_value": dg.MetadataValue.float(NAN),
        "gate_improvement": dg.MetadataValue.float(NAN),
        "heldout_log_loss": 0.693_871,
        "heldout_prior_log_loss": 0.693_12,
        "serving_model_beats_prior": False,
        "promotion_reason": "no champion yet",
        "data_end": "2024-01-01T23:59:00+00:00",
        **changes,
    }


def drift_metadata(**changes) -> dict:
    return {
        "drift_share": 0.615_4,
        "drifted_columns": "volatility_15, volatility_60",
        "realized_labels": 540,
        "realized_log_loss": dg.MetadataValue.float(NAN),
        "realized_prior_log_loss": dg.MetadataValue.float(NAN),
        **changes,
    }


@pytest.fixture
def replaying(tmp_path):
    """A simulation whose replay clock stands at AT (its server and definitions never started)."""
    candles = synthetic_candles(1_500, start=AT - pd.Timedelta(hours=24))
    return Simulation(candles, tmp_path / "candles.csv", tmp_path / "state", start=AT)


def test_an_ingest_is_recorded_with_the_new_rows_and_the_stores_total(replaying):
    result = run_of({"raw_candles": {"new_rows": 360}, "ingestion_stats": {"dagster/row_count": 2_880}})
    replaying._record_ingest(result)
    assert replaying.timeline.events == [{"at": AT, "kind": "ingest", "new_rows": 360, "total": 2_880}]


def test_the_first_champion_is_a_promotion_without_a_gate_test(replaying):
    replaying._record_training(run_of({"model": model_metadata()}))

    [event] = replaying.timeline.events
    assert event == {
        "at": AT,
        "kind": "promotion",
        "version": 1,
        "alias": "champion",
        "decision": "first_champion",
        "p_value": None,  # NaN: there was nothing to compare with
        "improvement": None,
        "heldout_log_loss": 0.6939,
        "prior_log_loss": 0.6931,
        "serving_beats_prior": False,
        "reason": "no champion yet",
    }


def test_a_kept_champion_is_recorded_with_its_gate_numbers_and_a_new_drift_reference(replaying):
    kept = model_metadata(
        model_version=2,
        alias="challenger",
        promoted=False,
        decision="keep_champion",
        gate_p_value=0.043_21,
        gate_improvement=0.000_123_456,
        promotion_reason="beats the champion but not the constant prior",
        data_end="2024-01-02T05:59:00+00:00",
    )
    replaying._record_training(run_of({"model": kept}))

    keep, rebaseline = replaying.timeline.events
    assert keep["kind"] == "keep" and keep["version"] == 2 and keep["alias"] == "challenger"
    assert (keep["p_value"], keep["improvement"]) == (0.0432, 0.00012)
    assert rebaseline["kind"] == "rebaseline" and rebaseline["reference_until"] == "2024-01-02T05:59:00+00:00"
    assert "re-validated" in rebaseline["why"]


def test_a_promoted_challenger_moves_no_reference(replaying):
    promoted = model_metadata(model_version=3, decision="promote_challenger", gate_p_value=0.001, gate_improvement=0.01)
    replaying._record_training(run_of({"model": promoted}))
    assert [event["kind"] for event in replaying.timeline.events] == ["promotion"]


def test_a_retraining_on_unchanged_inputs_is_recorded_as_such_instead_of_a_gate_decision(replaying):
    # The model asset's metadata when a version was already trained on exactly these features
    # (a tick that brought no new candle, as during an exchange outage): no gate ran.
    unchanged = {
        "decision": "unchanged_inputs",
        "model_version": 2,
        "alias": "champion",
        "input_fingerprint": "0f" * 32,
        "promotion_reason": "version 2 was trained on exactly these inputs; launch with force_retrain to train anyway",
    }
    replaying._record_training(run_of({"model": unchanged}))

    assert replaying.timeline.events == [
        {
            "at": AT,
            "kind": "unchanged",
            "version": 2,
            "alias": "champion",
            "reason": unchanged["promotion_reason"],
        }
    ]
    # Neither a promotion nor a kept champion: the summary counts no training.
    assert "0 promotion(s)" in summary(replaying.timeline) and "0 kept champion(s)" in summary(replaying.timeline)


def test_a_drift_evaluation_records_each_checks_verdict_and_a_skipped_check_as_skip(replaying):
    result = run_of(
        {"drift_report": drift_metadata()},
        {
            "data_drift": (False, {"skipped": False}, "8 of 13 monitored columns drifted"),
            "realized_performance": (True, {"skipped": True}, "only 540 realized labels (720 needed)"),
        },
    )
    replaying._record_drift(result)

    [event] = replaying.timeline.events
    assert event == {
        "at": AT,
        "kind": "drift",
        "by": "schedule",
        "share": 0.62,
        "data_drift": "FAIL",
        "performance": "skip",  # it passed, but only because it was skipped
        "realized_labels": 540,
        "realized_log_loss": None,
        "prior_log_loss": None,
        "drifted": "volatility_15, volatility_60",
        "performance_why": "only 540 realized labels (720 needed)",
    }


def test_a_drift_evaluation_after_a_retraining_says_so_and_keeps_its_realized_numbers(replaying):
    result = run_of(
        {"drift_report": drift_metadata(drift_share=0.2, realized_log_loss=0.701_26, realized_prior_log_loss=0.693_1)},
        {
            "data_drift": (True, {"skipped": False}, "2 of 13"),
            "realized_performance": (False, {"skipped": False}, "realized 0.7013 > constant prior 0.6931"),
        },
    )
    replaying._record_drift(result, by="retraining")

    [event] = replaying.timeline.events
    assert (event["by"], event["data_drift"], event["performance"]) == ("retraining", "pass", "FAIL")
    assert (event["realized_log_loss"], event["prior_log_loss"]) == (0.7013, 0.6931)
    assert event["performance_why"] == "realized 0.7013 > constant prior 0.6931"


def test_an_echoing_timeline_prints_each_event_as_one_line_when_it_happens(capsys):
    timeline = Timeline(echo=True)
    timeline.add(pd.Timestamp("2023-03-10T18:00Z"), "drift", by="schedule", share=0.62)
    assert capsys.readouterr().out == "2023-03-10 18:00  drift      by=schedule  share=0.62\n"
    timeline.add(pd.Timestamp("2023-03-11T00:00Z"), "retrain", because="data_drift")
    assert capsys.readouterr().out == "2023-03-11 00:00  retrain    because=data_drift\n"
    assert [event["kind"] for event in timeline.events] == ["drift", "retrain"]


# --- the replay loop ---------------------------------------------------------------------------


class RecordingSimulation:
    """Stands in for Simulation in ``simulate``: records what the loop asks of it."""

    made: list[RecordingSimulation] = []

    def __init__(self, candles, candle_file, state, start, echo=False):
        self.candles, self.candle_file, self.state, self.start, self.echo = candles, candle_file, state, start, echo
        self.calls: list = []
        self.timeline = Timeline()
        self.moment = start
        RecordingSimulation.made.append(self)

    def __enter__(self):
        self.calls.append("enter")
        return self

    def __exit__(self, *exc_info):
        self.calls.append("exit")

    def bootstrap(self, *args, **kwargs):
        self.calls.append(("bootstrap", self.moment))

    def advance_to(self, moment):
        self.moment = moment

    def tick(self):
        self.calls.append(("tick", self.moment))
        self.timeline.add(self.moment, "tick")


@pytest.fixture
def two_days(tmp_path):
    """A candle file of 48 hours from 1 January 2024 00:00 (the last candle opens at 23:59 on the 2nd)."""
    return write_generic_csv(synthetic_candles(2 * 1440, start="2024-01-01T00:00Z", seed=4), tmp_path / "two_days.csv")


@pytest.fixture
def recording(monkeypatch):
    RecordingSimulation.made = []
    monkeypatch.setattr(simulation, "Simulation", RecordingSimulation)
    return RecordingSimulation.made


def test_the_replay_trains_after_the_warm_up_then_ticks_every_interval_up_to_the_files_end(
    two_days, recording, tmp_path
):
    timeline = simulate(two_days, warmup_days=1, tick_hours=10, state=tmp_path / "state")

    [replay] = recording
    start = pd.Timestamp("2024-01-02T00:00Z")
    assert replay.start == start and replay.state == tmp_path / "state" and len(replay.candles) == 2 * 1440
    # The last tick is cut to the end of the file: the last candle's close, 3 January 00:00.
    ticks = [start + pd.Timedelta(hours=h) for h in (10, 20)] + [pd.Timestamp("2024-01-03T00:00Z")]
    assert replay.calls == ["enter", ("bootstrap", start), *(("tick", t) for t in ticks), "exit"]
    assert [event["at"] for event in timeline.of_kind("tick")] == ticks


@pytest.mark.parametrize(
    ("until", "last_tick"),
    [
        ("2024-01-02T19:00Z", "2024-01-02T19:00Z"),  # before the file's end: the replay stops there
        ("2024-01-05T00:00Z", "2024-01-03T00:00Z"),  # after it: the file's end still ends the replay
    ],
)
def test_the_replay_stops_at_until_or_at_the_files_end_whichever_comes_first(
    two_days, recording, tmp_path, until, last_tick
):
    simulate(two_days, 1.5, 4, tmp_path / "state", until=pd.Timestamp(until))

    [replay] = recording
    assert replay.start == pd.Timestamp("2024-01-02T12:00Z")
    ticks = [call[1] for call in replay.calls if call[0] == "tick"]
    assert ticks[:2] == [
        pd.Timestamp("2024-01-02T16:00Z"),
        min(pd.Timestamp("2024-01-02T20:00Z"), pd.Timestamp(last_tick)),
    ]
    assert ticks[-1] == pd.Timestamp(last_tick)


def test_a_warm_up_as_long_as_the_file_leaves_nothing_to_replay(two_days, recording, tmp_path):
    with pytest.raises(SystemExit, match="2 warm-up days leave nothing to replay"):
        simulate(two_days, warmup_days=2, tick_hours=6, state=tmp_path / "state")
    assert recording == []


# --- the state folder ---------------------------------------------------------------------------


def klines_open_times(base_url: str) -> list[pd.Timestamp]:
    with urllib.request.urlopen(f"{base_url}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1000") as response:
        return [pd.Timestamp(row[0], unit="ms", tz="UTC") for row in json.load(response)]


def test_a_simulation_keeps_its_stores_in_its_state_folder_and_serves_candles_up_to_its_clock(tmp_path, monkeypatch):
    candles = synthetic_candles(600, start="2024-01-01T00:00Z", seed=2)
    path = write_generic_csv(candles, tmp_path / "candles.csv")
    state = tmp_path / "state"
    start = pd.Timestamp("2024-01-01T05:00Z")
    built = []
    monkeypatch.setattr(simulation, "build_definitions", lambda settings: built.append(settings) or "definitions")

    with Simulation(candles, path, state, start=start) as replay:
        [settings] = built
        home = state / "dagster_home"
        assert replay.defs == "definitions"
        # Every store of the month lives in the state folder, fed by the replay exchange.
        assert settings.feature_db_path == state / "feature_store" / "bitcoin.duckdb"
        assert settings.report_dir == state / "reports"
        assert settings.mlflow_tracking_uri == f"sqlite:///{state / 'mlflow' / 'mlflow.db'}"
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", settings.binance_api_url)
        assert settings.replay_file == path and settings.ingest.backfill_days is None  # the whole file
        assert json.loads((state / "simulation.json").read_text()) == {
            "candles": str(path),
            "feature_db_path": str(state / "feature_store" / "bitcoin.duckdb"),
            "report_dir": str(state / "reports"),
            "mlflow_tracking_uri": f"sqlite:///{state / 'mlflow' / 'mlflow.db'}",
            "dagster_home": str(home),
        }
        assert (home / "dagster.yaml").read_text() == (REPO_ROOT / "config" / "dagster.yaml").read_text()
        assert replay.instance.root_directory == str(home)

        # The exchange answers at the simulated time, not the wall clock's: its newest candle is
        # the one opening at that moment, none of the file's later ones.
        assert replay.now == start
        assert klines_open_times(settings.binance_api_url)[-1] == start
        replay.advance_to(start + pd.Timedelta(hours=2))
        assert replay.now == start + pd.Timedelta(hours=2)
        assert klines_open_times(settings.binance_api_url)[-1] == start + pd.Timedelta(hours=2)

    with pytest.raises(urllib.error.URLError):  # stopped with the simulation
        klines_open_times(settings.binance_api_url)
    assert (home / "dagster.yaml").is_file()  # the instance stays for make dev SIMULATION=


# --- the command line ---------------------------------------------------------------------------


def a_replayed_month() -> Timeline:
    timeline = Timeline()
    timeline.add(AT, "promotion", version=1, decision="first_champion")
    timeline.add(AT + pd.Timedelta(hours=6), "drift", by="schedule", data_drift="FAIL", performance="skip")
    timeline.add(AT + pd.Timedelta(hours=6), "retrain", because="data_drift")
    return timeline


@pytest.fixture
def recorded_simulate(monkeypatch):
    calls = []

    def fake(candle_file, warmup_days, tick_hours, state, until=None, echo=False):
        calls.append(
            dict(candles=candle_file, warmup=warmup_days, tick=tick_hours, state=state, until=until, echo=echo)
        )
        return a_replayed_month()

    monkeypatch.setattr(simulation, "simulate", fake)
    return calls


def test_the_command_replays_into_a_new_state_folder_and_leaves_the_timeline_there(
    tmp_path, recorded_simulate, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "months" / "march"

    assert main(["--candles", "march.csv", "--tick-hours", "3", "--state", str(state)]) == 0

    [call] = recorded_simulate
    assert call == {
        "candles": tmp_path / "march.csv",
        "warmup": 3.0,
        "tick": 3.0,
        "state": state,
        "until": None,
        "echo": True,  # the timeline is printed as it happens
    }
    events = json.loads((state / "timeline.json").read_text())
    assert [event["kind"] for event in events] == ["promotion", "drift", "retrain"]
    assert (state / "timeline.csv").is_file()
    output = capsys.readouterr().out
    assert summary(a_replayed_month()) in output
    assert "1 drift evaluations (1 with data drift, 0 with realized performance failing), 1 retraining(s)" in output
    assert f"make dev SIMULATION={state}" in output and f"make mlflow-ui SIMULATION={state}" in output


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        ("2024-01-09 12:00", pd.Timestamp("2024-01-09T12:00Z")),  # no zone: UTC
        ("2024-01-09T14:00+02:00", pd.Timestamp("2024-01-09T12:00Z")),
    ],
)
def test_until_is_read_as_utc(tmp_path, recorded_simulate, until, expected):
    main(["--candles", "march.csv", "--until", until, "--state", str(tmp_path / "state")])
    assert recorded_simulate[0]["until"] == expected
    assert str(recorded_simulate[0]["until"].tz) == "UTC"


def test_without_a_state_folder_each_replay_gets_a_new_utc_stamped_one(tmp_path, recorded_simulate, monkeypatch):
    monkeypatch.setattr(simulation, "SIMULATIONS_DIR", tmp_path / "simulations")
    main(["--candles", "march.csv"])
    state = recorded_simulate[0]["state"]
    assert state.parent == tmp_path / "simulations"
    assert re.fullmatch(r"\d{8}T\d{6}Z", state.name)
    assert (state / "timeline.json").is_file()
