"""The calibration study (docs/ml-method.md) on generated candles: a calm day, then a
regime five times as volatile. Its hourly verdicts must follow the regimes, its champions the
retraining it simulates, and its report the verdicts. The real-data calibration is in
test_calibrate.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, LONGEST_WINDOW, TARGET_COLUMN
from btc_lifecycle.monitoring import calibrate
from btc_lifecycle.monitoring.calibrate import (
    Champion,
    WindowVerdict,
    simulate_monitoring,
    study_features,
    summarize,
    verdict_table,
)
from btc_lifecycle.monitoring.drift import MonitoringConfig
from btc_lifecycle_tests.conftest import write_generic_csv

# A study script's tests: make mutate does not mutate the script, nor run these ([tool.mutmut]).
pytestmark = pytest.mark.study

DAY_ONE = pd.Timestamp("2024-01-01T00:00Z")
CHAMPION_UNTIL = DAY_ONE + pd.Timedelta(days=1)  # one reference day after the first day starts
VOLATILE_FROM = CHAMPION_UNTIL + pd.Timedelta(hours=6)
CONFIG = MonitoringConfig(current_window=180, reference_window=720)
HOUR = pd.Timedelta(hours=1)


def calm_then_volatile() -> pd.DataFrame:
    """30 calm hours from DAY_ONE, then 6 hours at five times the volatility."""
    calm = synthetic_candles(30 * 60, start=DAY_ONE, seed=5, volatility=0.0008)
    wild = synthetic_candles(6 * 60, start=VOLATILE_FROM, seed=6, volatility=0.004)
    return pd.concat([calm, wild], ignore_index=True)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return study_features(calm_then_volatile())


@pytest.fixture(scope="module")
def monitored(features):
    return simulate_monitoring(features, reference_days=1, config=CONFIG)


def test_study_rows_are_the_feature_complete_rows_with_a_known_next_candle():
    # Two runs of 200 and 195 minutes: positions 60 .. length - 2 of each are usable.
    candles = without_minutes(synthetic_candles(400, seed=2), range(200, 205))
    rows = study_features(candles)
    history = LONGEST_WINDOW - 1
    assert len(rows) == (200 - history - 1) + (195 - history - 1)
    assert list(rows.index) == list(range(len(rows)))
    assert np.isfinite(rows[list(FEATURE_COLUMNS)].to_numpy(dtype="float64")).all()
    assert rows[TARGET_COLUMN].notna().all()
    # Neither the last candle before the gap nor the newest one: their next candle is unknown.
    assert candles["open_time"].iloc[199] not in set(rows["open_time"])
    assert rows["open_time"].iloc[-1] == candles["open_time"].iloc[-2]


def test_the_first_champion_trains_on_the_reference_days_and_keeps_their_tail_as_reference(features, monitored):
    _, [champion] = monitored
    assert champion.trained_until == CHAMPION_UNTIL
    reference_times = champion.reference["open_time"]
    assert len(champion.reference) == CONFIG.reference_window
    assert reference_times.iloc[-1] == CHAMPION_UNTIL - pd.Timedelta(minutes=1)
    assert reference_times.is_monotonic_increasing and reference_times.diff().dropna().eq(pd.Timedelta("1min")).all()
    # The reference carries the champion's own prediction for each of its rows.
    np.testing.assert_array_equal(
        champion.reference["prediction"].to_numpy(), champion.predictions[champion.reference.index]
    )
    assert (
        len(champion.predictions) == len(features) and ((champion.predictions > 0) & (champion.predictions < 1)).all()
    )
    assert 0.6 < champion.heldout_log_loss < 0.8  # a random walk: about ln 2


def test_the_check_runs_every_hour_after_the_champion_up_to_the_last_candle(monitored):
    verdicts, _ = monitored
    last_end = pd.Timestamp("2024-01-02T11:00Z")  # the newest row with a known next candle is 11:58
    assert [v.end for v in verdicts] == list(pd.date_range(CHAMPION_UNTIL + HOUR, last_end, freq="h"))
    assert all(v.champion_trained_until == CHAMPION_UNTIL for v in verdicts)


def test_calm_windows_stay_green_and_windows_reaching_into_the_volatile_regime_turn_red(monitored):
    verdicts, _ = monitored
    calm = [v for v in verdicts if v.end <= VOLATILE_FROM]
    # A third of the window (60 of 180 candles) in the new regime is enough.
    volatile = [v for v in verdicts if v.end >= VOLATILE_FROM + HOUR]
    assert len(calm) == 6 and len(volatile) == 5
    assert not any(v.red for v in calm)
    assert all(v.red for v in volatile)
    assert all(v.red == (v.drift_share > CONFIG.drift_share_threshold) for v in verdicts)
    assert all({"volatility_15", "volatility_60", "range_to_close"} <= set(v.drifted_columns) for v in volatile)


def test_realized_log_loss_scores_the_champion_on_the_windows_candles_since_it_was_trained(features, monitored):
    verdicts, [champion] = monitored
    times = features["open_time"]
    for verdict in (verdicts[0], verdicts[3]):  # 60 candles since training; a full window of 180
        since = features.loc[
            (times >= max(CHAMPION_UNTIL, verdict.end - 180 * pd.Timedelta("1min"))) & (times < verdict.end)
        ]
        expected = log_loss(since[TARGET_COLUMN].astype(int), champion.predictions[since.index], labels=[0, 1])
        assert verdict.realized_log_loss == pytest.approx(expected, rel=1e-6)


def test_with_retraining_every_red_window_trains_a_champion_that_judges_the_next_window(features):
    until_nine = features.loc[features["open_time"] < pd.Timestamp("2024-01-02T09:00Z")]
    verdicts, champions = simulate_monitoring(until_nine, reference_days=1, config=CONFIG, retrain=True)

    red_ends = [v.end for v in verdicts if v.red]
    assert red_ends == [VOLATILE_FROM + HOUR, VOLATILE_FROM + 2 * HOUR, VOLATILE_FROM + 3 * HOUR]
    assert [c.trained_until for c in champions] == [CHAMPION_UNTIL, *red_ends]
    # Each verdict is judged by the newest champion trained before it.
    judged_by = {v.end: v.champion_trained_until for v in verdicts}
    assert judged_by[VOLATILE_FROM + HOUR] == CHAMPION_UNTIL
    assert judged_by[VOLATILE_FROM + 2 * HOUR] == VOLATILE_FROM + HOUR
    # A retrained champion's reference is the tail of the day before its red window.
    assert champions[1].reference["open_time"].iloc[-1] == VOLATILE_FROM + HOUR - pd.Timedelta(minutes=1)


AT = pd.Timestamp("2023-03-10T06:00Z")


def verdict(hours: int, share: float, red: bool, drifted: tuple[str, ...] = ()) -> WindowVerdict:
    return WindowVerdict(AT + pd.Timedelta(hours=hours), share, drifted, red, 0.69314718, AT)


def test_the_verdict_table_shows_one_row_per_window_with_short_column_names():
    table = verdict_table(
        [
            verdict(0, 0.125, False),
            verdict(1, 0.6666, True, ("log_return_15", "volatility_60", "range_to_close", "log_volume_ratio_60")),
            verdict(2, 0.51, True, ("body_to_open", "upper_wick_to_close", "prediction")),
        ]
    )
    assert table.to_dict("records") == [
        {
            "window_end": "03-10 06:00",
            "drift_share": 0.12,
            "check": "green",
            "realized_log_loss": 0.6931,
            "drifted": "-",
        },
        {
            "window_end": "03-10 07:00",
            "drift_share": 0.67,
            "check": "RED",
            "realized_log_loss": 0.6931,
            "drifted": "ret15, vol60, range, volr60",
        },
        {
            "window_end": "03-10 08:00",
            "drift_share": 0.51,
            "check": "RED",
            "realized_log_loss": 0.6931,
            "drifted": "body, upper_wick, pred",
        },
    ]


def test_the_summary_counts_red_windows_in_the_calm_and_in_the_crash():
    verdicts = [
        verdict(-30, 0.2, False),
        verdict(-20, 0.45, False),
        verdict(-10, 0.6, True),  # a false alarm in the calm
        verdict(0, 0.3, False),  # the calm ends before this window: neither calm nor crash
        verdict(20, 0.4, False),
        verdict(30, 0.8, True),
        verdict(40, 0.9, True),
        verdict(120, 0.9, True),  # the crash ends before this window
    ]
    champions = [
        Champion(AT - pd.Timedelta(days=3), pd.DataFrame(), np.array([]), 0.69121),
        Champion(AT + pd.Timedelta(hours=30), pd.DataFrame(), np.array([]), 0.68),
    ]
    calm_until = AT
    crash = (AT + pd.Timedelta(hours=18), AT + pd.Timedelta(days=5))
    assert summarize(verdicts, champions, calm_until, crash) == [
        "windows: 8, red: 4",
        "calm windows (ending before 03-10 06:00): 3, red: 1, highest drift share 0.60",
        "crash windows (03-11 to 03-15): 3, red: 2",
        "first red window ends at: 2023-03-09 20:00:00+00:00",
        "champion trained until 03-07 06:00, held-out log loss 0.6912",
        "champion trained until 03-11 12:00, held-out log loss 0.6800",
    ]


def test_the_summary_says_never_when_no_window_went_red():
    lines = summarize([verdict(-1, 0.1, False), verdict(1, 0.2, False)], [], AT, (AT, AT + HOUR))
    assert lines[0] == "windows: 2, red: 0" and lines[3] == "first red window ends at: never"


def test_the_study_prints_the_changes_of_colour_and_the_summary(tmp_path, capsys, monkeypatch):
    path = write_generic_csv(calm_then_volatile(), tmp_path / "candles.csv")
    # The evidently timing is a measurement, not a result: a fixed number stands in for it.
    monkeypatch.setattr(calibrate, "time_report_path", lambda features, config: 1.25)

    calibrate.main(
        [
            "--candles", str(path), "--reference-days", "1", "--window", "180", "--print-every-hours", "3",
            "--calm-until", str(VOLATILE_FROM), "--crash", f"{VOLATILE_FROM},{VOLATILE_FROM + 6 * HOUR}",
        ]
    )  # fmt: skip
    output = capsys.readouterr().out

    assert output.startswith(
        "reference: first 1 days; window 180 candles; wasserstein >= 0.4 per column; "
        "red when drift share > 0.5; retrain on red: False\n"
    )
    shown = [line.split()[1] for line in output.splitlines() if line.startswith("01-02 ")]
    # Every third hour, and the hour the check turned red.
    assert shown == ["03:00", "06:00", "07:00", "09:00"]
    assert "\nwindows: 11, red: 5\n" in output
    assert "calm windows (ending before 01-02 06:00): 5, red: 0" in output
    assert "crash windows (01-02 to 01-02): 6, red: 5" in output
    assert "first red window ends at: 2024-01-02 07:00:00+00:00" in output
    assert output.count("champion trained until") == 1
    assert "study: 11 windows in" in output
    assert output.rstrip().endswith(f"1,500 vs 1,500 rows x {len(CONFIG.columns)} columns: 1.25 s")
