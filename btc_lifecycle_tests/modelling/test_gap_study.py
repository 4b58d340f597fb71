"""The gap-policy study (docs/ml-method.md): its thinning, its counts per gap limit K and its report.

The counts are checked against series whose gaps are placed by hand, so the expected numbers
follow from the feature windows alone: a row is trainable when the 60 candles before it lie in
its contiguous run (LONGEST_WINDOW - 1) and the candle after it does too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.domain.synthetic import synthetic_candles, thin_venue_candles, without_minutes
from btc_lifecycle.modelling.features import LONGEST_WINDOW
from btc_lifecycle.modelling.gap_study import (
    LIMITS,
    gap_lengths,
    main,
    thinned,
    trainable_by_limit,
    walk_forward_numbers,
)
from btc_lifecycle_tests.conftest import write_generic_csv

# A study script's tests: make mutate does not mutate the script, nor run these ([tool.mutmut]).
pytestmark = pytest.mark.study

HISTORY = LONGEST_WINDOW - 1  # candles of the same run a row's features read: 60


def trainable_in_runs(*lengths: int) -> int:
    """Trainable rows of contiguous runs of these lengths: positions HISTORY .. length - 2 of each."""
    return sum(max(0, length - HISTORY - 1) for length in lengths)


@pytest.fixture(scope="module")
def two_gaps() -> pd.DataFrame:
    """400 minutes with a 3-minute gap after minute 99 and a 10-minute gap after minute 249."""
    return without_minutes(synthetic_candles(400, seed=3), [*range(100, 103), *range(250, 260)])


def test_gap_lengths_are_the_missing_minutes_of_each_hole(two_gaps):
    assert list(gap_lengths(two_gaps)) == [3, 10]
    assert len(gap_lengths(synthetic_candles(300, seed=3))) == 0


def test_each_gap_limit_fills_the_gaps_up_to_it_and_counts_what_becomes_trainable(two_gaps):
    table = trainable_by_limit(two_gaps, minutes=400, limits=(0, 3, 10)).set_index("K")

    # K = 0 fills nothing; K = 3 fills the short gap only; K = 10 both.
    assert list(table["gaps_filled_share"]) == [0.0, 0.5, 1.0]
    assert list(table["rows"]) == [387, 387 + 3, 387 + 3 + 10]
    expected = {0: trainable_in_runs(100, 147, 140), 3: trainable_in_runs(250, 140), 10: trainable_in_runs(400)}
    assert table["trainable"].to_dict() == expected == {0: 204, 3: 268, 10: 339}
    assert table["trainable_share"].to_dict() == pytest.approx({k: v / 400 for k, v in expected.items()})
    # Every filled minute lies deep inside a run, so all of them are trainable.
    assert table["filled_share_of_trainable"].to_dict() == pytest.approx({0: 0.0, 3: 3 / 268, 10: 13 / 339})


def test_rows_a_limit_leaves_untrainable_are_counted_once_under_their_reason(two_gaps):
    table = trainable_by_limit(two_gaps, minutes=400, limits=(0, 3, 10)).set_index("K")

    assert list(table["incomplete_window_start_of_history"]) == [HISTORY] * 3
    # The first HISTORY rows after every gap left open.
    assert list(table["incomplete_window_after_gap"]) == [2 * HISTORY, HISTORY, 0]
    # The last row before each gap left open, and the newest row.
    assert list(table["no_next_candle"]) == [3, 2, 1]
    reasons = ["incomplete_window_start_of_history", "incomplete_window_after_gap", "no_next_candle"]
    assert (table["trainable"] + table[reasons].sum(axis=1)).equals(table["rows"])


def test_a_limit_that_leaves_nothing_trainable_reports_no_filled_share():
    # Runs of 30 minutes between 5-minute gaps: no feature window fits unless the gaps are filled.
    positions = [m for start in range(30, 600, 35) for m in range(start, start + 5)]
    table = trainable_by_limit(without_minutes(synthetic_candles(600, seed=8), positions), 600, limits=(0, 5))
    table = table.set_index("K")
    assert table.loc[0, "trainable"] == 0 and np.isnan(table.loc[0, "filled_share_of_trainable"])
    assert table.loc[5, "trainable"] > 0 and table.loc[5, "gaps_filled_share"] == 1.0


def test_an_outage_removes_exactly_the_thin_venues_candles_inside_it():
    candles = synthetic_candles(2_000, seed=4)
    thin = thin_venue_candles(candles, 0.5, seed=2)
    middle = candles["open_time"].iloc[1_000]
    inside = (thin["open_time"] >= middle) & (thin["open_time"] < middle + pd.Timedelta(minutes=90))
    assert inside.sum() > 10  # the window held candles to remove

    cut = thinned(candles, 0.5, seed=2, outage_minutes=90)

    pd.testing.assert_frame_equal(cut, thin.loc[~inside].reset_index(drop=True))
    assert gap_lengths(cut).max() >= 90 > gap_lengths(thin).max()


def test_without_an_outage_the_thin_venue_is_kept_as_printed():
    candles = synthetic_candles(1_000, seed=4)
    pd.testing.assert_frame_equal(thinned(candles, 0.6, seed=9, outage_minutes=0), thin_venue_candles(candles, 0.6, 9))


def test_walk_forward_numbers_train_where_the_limit_leaves_rows_and_report_an_error_where_not():
    thin = thinned(synthetic_candles(3_000, seed=3), 0.5, seed=1, outage_minutes=60)

    table = walk_forward_numbers(thin, [0, 10]).set_index("K")

    # Half the minutes without a trade: no 61-minute run survives unless short gaps are filled.
    assert "too few trainable candles" in table.loc[0, "error"]
    assert np.isnan(table.loc[0, "trainable"])
    counted = trainable_by_limit(thin, 3_000, limits=(10,))["trainable"].iloc[0]
    assert table.loc[10, "trainable"] == counted
    assert pd.isna(table.loc[10, "error"])
    # A random walk: the model's pooled log loss stays near the prior's, AUC near a coin's.
    assert table.loc[10, "xgboost_log_loss"] == pytest.approx(table.loc[10, "prior_log_loss"], abs=0.05)
    assert 0.4 < table.loc[10, "xgboost_auc"] < 0.6 and 0.4 < table.loc[10, "heldout_auc"] < 0.6


def printed_table(output: str, title: str) -> pd.DataFrame:
    """The whitespace-separated table printed under ``title`` (up to the next blank line)."""
    block = output.split(title, 1)[1].strip("\n").split("\n\n", 1)[0].splitlines()
    header = block[0].split()
    rows = [line.split() for line in block[2:]]  # the second line names the index (K)
    return pd.DataFrame(rows, columns=["K", *header]).astype(float).set_index("K")


def test_the_study_reports_each_share_and_seed_and_summarizes_every_limit(tmp_path, capsys):
    path = write_generic_csv(synthetic_candles(3_000, seed=6), tmp_path / "candles.csv")
    candles = read_candle_file(path)

    main(["--candles", str(path), "--shares", "0.5", "--seeds", "1", "2", "--outage-minutes", "60", "--train", "0"])
    output = capsys.readouterr().out

    for seed in (1, 2):
        thin = thinned(candles, 0.5, seed, 60)
        lengths = gap_lengths(thin)
        assert (
            f"no-trade share 0.50, seed {seed}: {len(thin):,} candles of 3,000 minutes "
            f"({1 - len(thin) / 3_000:.1%} missing); {len(lengths):,} gaps"
        ) in output
        assert f"max {lengths.max()}\n" in output
    summary = printed_table(output, "over every share and seed:")
    assert list(summary.index) == list(LIMITS)
    shares = [trainable_by_limit(thinned(candles, 0.5, seed, 60), 3_000)["trainable_share"] for seed in (1, 2)]
    assert list(summary["trainable_share_min"]) == list(np.minimum(*shares).round(3))
    assert list(summary["trainable_share_mean"]) == list(((shares[0] + shares[1]) / 2).round(3))
    # Filling longer gaps never makes fewer rows trainable.
    assert summary["trainable_share_mean"].is_monotonic_increasing
    assert "walk-forward on no-trade share 0.5, seed 1:" in output and "too few trainable candles" in output
