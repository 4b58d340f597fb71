"""Days from the command line: a range as one run, then one day repaired, every other day as it was."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle_tests.conftest import write_generic_csv
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT, Workspace, launch_command

pytestmark = pytest.mark.e2e

REPAIRED = pd.Timestamp("2024-01-02", tz="UTC")


def materialize_days(workspace: Workspace, candles_file, selection: str, *partition: str) -> str:
    """``dagster asset materialize`` through the launcher and the replay exchange, one run."""
    command = launch_command(candles_file, selection=selection, extra=partition)
    result = subprocess.run(command, cwd=REPO_ROOT, env=workspace.env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result.stdout + result.stderr


def on_day(frame: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    return frame.loc[(frame["open_time"] >= day) & (frame["open_time"] < day + pd.Timedelta(days=1))]


@pytest.fixture(scope="module")
def repaired(tmp_path_factory):
    root = tmp_path_factory.mktemp("partitions_cli")
    workspace = Workspace(root / "state")
    candles = synthetic_candles(3 * 1440, seed=21)
    original = write_generic_csv(candles, root / "original.csv")
    log = materialize_days(
        workspace, original, "raw_candles,labeled_candles", "--partition-range", "2024-01-01...2024-01-03"
    )
    before = {table: workspace.stored(table) for table in ("candles", "candles_labeled")}
    # The exchange's 2 January revised: every candle closes at its open, the rest as it was.
    revised = candles.copy()
    second = (revised["open_time"] >= REPAIRED) & (revised["open_time"] < REPAIRED + pd.Timedelta(days=1))
    revised.loc[second, "close"] = revised.loc[second, "open"]
    revised_file = write_generic_csv(revised, root / "revised.csv")
    materialize_days(workspace, revised_file, "raw_candles,labeled_candles", "--partition", "2024-01-02")
    after = {table: workspace.stored(table) for table in ("candles", "candles_labeled")}
    return log, before, after, revised


def test_a_range_of_days_is_one_run_storing_every_candle_once(repaired):
    log, before, _, _ = repaired
    assert log.count("RUN_SUCCESS") == 1
    assert len(before["candles"]) == 3 * 1440
    assert not before["candles"]["open_time"].duplicated().any()


def test_repairing_one_day_leaves_the_other_days_as_they_were(repaired):
    _, before, after, _ = repaired
    for day in (REPAIRED - pd.Timedelta(days=1), REPAIRED + pd.Timedelta(days=1)):
        for table in ("candles", "candles_labeled"):
            pd.testing.assert_frame_equal(
                on_day(after[table], day).reset_index(drop=True), on_day(before[table], day).reset_index(drop=True)
            )


def test_the_repaired_day_holds_the_revised_candles_and_their_labels(repaired):
    _, _, after, revised = repaired
    stored = on_day(after["candles"], REPAIRED).reset_index(drop=True)
    expected = on_day(revised, REPAIRED).reset_index(drop=True)
    assert len(stored) == 1440
    pd.testing.assert_series_equal(stored["close"], expected["close"], check_dtype=False, check_names=False)
    # Its labels are those of the revised closes, the first one against 1 January's last close.
    labeled = after["candles_labeled"]
    window = labeled.loc[
        (labeled["open_time"] >= REPAIRED - pd.Timedelta(minutes=1))
        & (labeled["open_time"] < REPAIRED + pd.Timedelta(days=1))
    ].reset_index(drop=True)
    expected_labels = (window["close"] > window["close"].shift(1)).astype("Int8").iloc[1:].reset_index(drop=True)
    stored_labels = window["price_increase_label"].iloc[1:].reset_index(drop=True)
    pd.testing.assert_series_equal(stored_labels, expected_labels, check_names=False, check_dtype=False)


def test_the_repair_changed_that_days_labels(repaired):
    _, before, after, _ = repaired
    old = on_day(before["candles_labeled"], REPAIRED)["price_increase_label"].reset_index(drop=True)
    new = on_day(after["candles_labeled"], REPAIRED)["price_increase_label"].reset_index(drop=True)
    assert (old != new).sum() > 100  # the revision reached the labels, not only the prices
