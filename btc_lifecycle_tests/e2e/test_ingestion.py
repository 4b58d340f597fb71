"""End to end: `dagster asset materialize` through the real ccxt client and the replay exchange."""

from __future__ import annotations

import pandas as pd
import pytest

from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.domain.synthetic import without_minutes
from btc_lifecycle_tests.conftest import write_generic_csv
from btc_lifecycle_tests.e2e.workspace import Workspace

pytestmark = pytest.mark.e2e


def independent_labels(candles: pd.DataFrame) -> list:
    """Row by row, without pandas shifts: up against the previous adjacent minute, else None."""
    labels, previous = [], None
    for row in candles.itertuples():
        adjacent = previous is not None and row.open_time - previous.open_time == pd.Timedelta(minutes=1)
        labels.append(int(row.close > previous.close) if adjacent else None)
        previous = row
    return labels


def assert_stored_equals(workspace: Workspace, expected: pd.DataFrame) -> None:
    stored = workspace.stored()
    pd.testing.assert_frame_equal(
        stored[["open_time", "open", "high", "low", "close", "volume"]].reset_index(drop=True),
        expected[["open_time", "open", "high", "low", "close", "volume"]].reset_index(drop=True),
        check_dtype=False,
    )
    labeled = workspace.stored("candles_labeled")
    assert [None if pd.isna(v) else int(v) for v in labeled["price_increase_label"]] == independent_labels(expected)


def test_generated_candles_with_gaps_are_ingested_labeled_and_counted_once(tmp_path, generated_candles):
    candles = without_minutes(generated_candles, [100, 101, 102, 2500])
    path = write_generic_csv(candles, tmp_path / "generated.csv")
    workspace = Workspace(tmp_path / "state")

    workspace.materialize(path, selection="group:ingestion")
    assert_stored_equals(workspace, candles)
    stats = workspace.stats
    assert stats["new_rows"] == len(candles) == stats["total_rows"]
    assert stats["missing_minutes"] == 4 and len(stats["gaps"]) == 2
    assert stats["first_candle"] == candles["open_time"].iloc[0].isoformat()

    workspace.materialize(path, selection="group:ingestion")
    assert workspace.stats["new_rows"] == 0
    assert workspace.stats["total_rows"] == len(candles)


@pytest.mark.real_data
def test_the_shared_real_file_is_ingested_exactly_and_incrementally(tmp_path, shared_candles_path):
    real = read_candle_file(shared_candles_path)
    workspace = Workspace(tmp_path / "state")
    # The replay clock stands 30 s into the 12:00 candle of 21 March: it is visible but forming.
    noon = pd.Timestamp("2023-03-21T12:00:00Z")
    frozen_at = ["--replay-start", "2023-03-21T12:00:30Z", "--replay-speed", "0"]

    workspace.materialize(shared_candles_path, selection="group:ingestion", replay=frozen_at)
    exposed_closed = real.loc[real["open_time"] < noon]
    assert_stored_equals(workspace, exposed_closed)
    assert workspace.stats["new_rows"] == len(exposed_closed)

    workspace.materialize(shared_candles_path, selection="group:ingestion", replay=frozen_at)
    assert workspace.stats["new_rows"] == 0

    workspace.materialize(shared_candles_path, selection="group:ingestion")  # the clock at the file's end
    assert_stored_equals(workspace, real)
    assert workspace.stats["new_rows"] == len(real) - len(exposed_closed)
    assert workspace.stats["total_rows"] == 30_240 and workspace.stats["missing_minutes"] == 0
