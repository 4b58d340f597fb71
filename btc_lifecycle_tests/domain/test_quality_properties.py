"""The data-quality checks pass on every valid series and catch any single planted fault."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_lifecycle.domain.labels import LABEL_COLUMN, label_candles
from btc_lifecycle.domain.quality import gaps_within, labels_match, ohlc_consistent, unique_keys
from btc_lifecycle.modelling.quality import default_cut_points, no_look_ahead
from btc_lifecycle_tests.strategies import candle_frames

MINUTE = pd.Timedelta(minutes=1)


def longest_gap(candles: pd.DataFrame) -> int:
    """The most minutes missing between two stored candles, written out."""
    times = list(candles["open_time"])
    return max([(b - a) // MINUTE - 1 for a, b in zip(times, times[1:], strict=False)], default=0)


@given(candle_frames(max_size=80))
def test_every_valid_candle_series_passes_the_key_and_ohlc_checks(candles):
    assert unique_keys(candles["open_time"]).passed
    outcome = ohlc_consistent(candles)
    assert outcome.passed, outcome.description
    json.dumps(outcome.metadata, allow_nan=False)


@given(candle_frames(min_size=2, max_size=60), st.data())
def test_repeating_any_minute_fails_the_key_check_naming_that_minute(candles, data):
    row = data.draw(st.integers(0, len(candles) - 1))
    repeated = pd.concat([candles, candles.iloc[[row]]], ignore_index=True)
    outcome = unique_keys(repeated["open_time"])
    assert not outcome.passed
    assert outcome.metadata["first_duplicated_open_times"] == [candles["open_time"].iloc[row].isoformat()]


@given(candle_frames(max_size=60), st.integers(0, 100))
def test_the_gap_check_fails_exactly_when_the_longest_gap_exceeds_the_threshold(candles, threshold):
    outcome = gaps_within(candles["open_time"], "1m", threshold)
    assert outcome.passed is (longest_gap(candles) <= threshold)
    assert outcome.metadata["longest_gap_minutes"] == longest_gap(candles)


@st.composite
def split_labeled(draw: st.DrawFn) -> tuple[pd.DataFrame, int]:
    """Labeled candles and where a day boundary splits them into context and the judged rows."""
    labeled = label_candles(draw(candle_frames(min_size=2, max_size=60, max_gap=3)), "1m")
    return labeled, draw(st.integers(1, len(labeled) - 1))


@given(split_labeled())
def test_stored_labels_match_on_any_split_with_the_earlier_part_as_context(case):
    labeled, split = case
    outcome = labels_match(labeled.iloc[split:], "1m", context=labeled.iloc[:split])
    assert outcome.passed, outcome.description
    assert outcome.metadata["rows"] == len(labeled) - split


@given(split_labeled(), st.data())
def test_flipping_any_one_stored_label_is_caught_at_its_minute(case, data):
    labeled, split = case
    judged = labeled.iloc[split:].copy()
    present = np.flatnonzero(judged[LABEL_COLUMN].notna().to_numpy())
    row = data.draw(st.sampled_from(list(present))) if len(present) else data.draw(st.integers(0, len(judged) - 1))
    column = judged.columns.get_loc(LABEL_COLUMN)
    # A present label is flipped; where none is due, one is invented.
    judged.iloc[row, column] = 1 - judged.iloc[row, column] if len(present) else 1
    outcome = labels_match(judged, "1m", context=labeled.iloc[:split])
    assert not outcome.passed
    assert outcome.metadata["mismatching_rows"] == 1
    assert outcome.metadata["first_mismatching_open_times"] == [judged["open_time"].iloc[row].isoformat()]


# Each example recomputes the features once per cut point: fewer, smaller examples.
@settings(max_examples=15)
@given(candle_frames(min_size=1, max_size=120), st.one_of(st.just(0), st.integers(1, 60)))
def test_compute_features_passes_the_look_ahead_check_at_the_default_cut_points(candles, max_fill_minutes):
    cuts = default_cut_points(candles["open_time"], "1m", count=4)
    assert candles["open_time"].iloc[-1] in cuts
    outcome = no_look_ahead(candles, "1m", max_fill_minutes, cuts)
    assert outcome.passed, outcome.description
