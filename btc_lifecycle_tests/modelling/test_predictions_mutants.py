"""Stored predictions: float probabilities and integer labels (found loose by `make mutate`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from btc_lifecycle.modelling.features import TARGET_COLUMN
from btc_lifecycle.modelling.predictions import prediction_rows, with_realized_labels

START = pd.Timestamp("2024-01-01", tz="UTC")


def minute(n: int) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=n)


# prediction_rows


def test_stored_predictions_have_float_probabilities_and_integer_labels():
    scored = pd.DataFrame({"open_time": [minute(0), minute(1)], TARGET_COLUMN: [1.0, 0.0]})
    rows = prediction_rows(scored, [1, 0], "3", minute(5))  # integer probabilities are cast
    assert rows["up_probability"].dtype == np.float64
    assert rows["realized_label"].dtype == np.int8 and rows["realized_label"].tolist() == [1, 0]


# with_realized_labels


def test_labels_stored_as_objects_come_back_as_nullable_int8():
    times = [minute(n) for n in range(3)]
    stored = pd.DataFrame({"open_time": times, "realized_label": pd.Series([None, 1, None], dtype=object)})
    features = pd.DataFrame({"open_time": times, TARGET_COLUMN: [0.0, 1.0, np.nan]})
    joined = with_realized_labels(stored, features)
    assert joined["realized_label"].dtype == pd.Int8Dtype()
    assert joined["realized_label"].tolist()[:2] == [0, 1] and pd.isna(joined["realized_label"].iloc[2])
