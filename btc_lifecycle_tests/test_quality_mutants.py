"""The data-quality checks pinned down where `make mutate` found the tests loose: the exact
outcome, description and metadata of the freshness check; what the trainable-rows check
counts as not finite (docs/mutation.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.quality import fresh
from btc_lifecycle.modelling.quality import no_nan_in_trainable

START = pd.Timestamp("2024-03-01T00:00:00Z")


def at(minute: float) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=minute)


def iso(minute: float) -> str:
    return at(minute).isoformat()


def minute(n: int) -> pd.Timestamp:
    return at(n)


# fresh


def test_a_fresh_candle_is_described_and_recorded_exactly():
    outcome = fresh(at(720), at(726), "1m", max_lag_minutes=5)
    assert outcome.passed is True
    assert outcome.description == (
        f"The newest candle ({iso(720)}) closed 5 minutes before {iso(726)}, within the 5 minutes allowed."
    )
    assert outcome.metadata == {"last_open_time": iso(720), "now": iso(726), "lag_minutes": 5, "max_lag_minutes": 5}


def test_a_stale_candle_is_described_exactly():
    outcome = fresh(at(720), at(726), "1m", max_lag_minutes=4)
    assert outcome.passed is False
    assert outcome.description == (
        f"The newest candle ({iso(720)}) closed 5 minutes before {iso(726)}, more than the 4 minutes allowed."
    )


def test_the_lag_is_kept_to_three_decimals_of_a_minute():
    # Closed 20 seconds before now: a third of a minute.
    outcome = fresh(at(720), at(721 + 1 / 3), "1m", max_lag_minutes=1)
    assert outcome.metadata["lag_minutes"] == 0.333
    assert "closed 0.333 minutes before" in outcome.description


def test_a_lag_of_zero_minutes_is_allowed_and_met_by_a_candle_that_just_closed():
    outcome = fresh(at(720), at(721), "1m", max_lag_minutes=0)
    assert outcome.passed is True and outcome.metadata["lag_minutes"] == 0


def test_a_negative_lag_limit_is_refused_with_its_value():
    with pytest.raises(ValueError, match=r"^max_lag_minutes must be >= 0, got -1$"):
        fresh(at(720), at(721), "1m", max_lag_minutes=-1)


def test_no_candles_is_a_failure_with_every_metadata_key():
    outcome = fresh(None, at(0), "1m", max_lag_minutes=60)
    assert outcome.passed is False
    assert outcome.description == f"There are no candles, so none is fresh as of {iso(0)}."
    assert outcome.metadata == {"last_open_time": None, "now": iso(0), "lag_minutes": None, "max_lag_minutes": 60}


# no_nan_in_trainable


def trainable_frame(**columns) -> pd.DataFrame:
    count = len(next(iter(columns.values())))
    return pd.DataFrame({"open_time": [minute(n) for n in range(count)], "trainable": True, **columns})


def test_a_feature_frame_without_a_checked_column_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"^the feature frame lacks the column\(s\) rsi_14$"):
        no_nan_in_trainable(trainable_frame(other=[1.0]), columns=["rsi_14"])


def test_a_value_that_is_not_a_number_counts_as_not_finite():
    frame = trainable_frame(rsi_14=pd.Series([50.0, "n/a", 40.0], dtype=object))
    outcome = no_nan_in_trainable(frame, columns=["rsi_14"])
    assert outcome.passed is False
    assert outcome.metadata["non_finite_by_feature"] == {"rsi_14": 1}
    assert outcome.metadata["first_violating_open_times"] == [minute(1).isoformat()]


def test_checking_no_columns_passes_every_trainable_row():
    outcome = no_nan_in_trainable(trainable_frame(rsi_14=[np.nan, 1.0]), columns=())
    assert outcome.passed is True
    assert outcome.metadata["violating_rows"] == 0 and outcome.metadata["trainable_rows"] == 2
