"""Live predictions: which candles the champion scores, the history as stored (float probabilities,
integer labels), and the truth joined later."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.modelling.features import FEATURE_COLUMNS, TARGET_COLUMN
from btc_lifecycle.modelling.predictions import (
    PREDICTION_COLUMNS,
    prediction_rows,
    rows_to_score,
    with_realized_labels,
)

START = pd.Timestamp("2024-01-01", tz="UTC")


def minute(n: int) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=n)


def feature_frame(count: int, incomplete=(), targets=None) -> pd.DataFrame:
    """``count`` one-minute feature rows; rows in ``incomplete`` miss one feature."""
    frame = pd.DataFrame({name: np.full(count, 0.5) for name in FEATURE_COLUMNS})
    frame.insert(0, "open_time", pd.date_range(START, periods=count, freq="1min"))
    for row in incomplete:
        frame.loc[row, FEATURE_COLUMNS[0]] = np.nan
    frame[TARGET_COLUMN] = pd.array(targets if targets is not None else [1] * count, dtype="Int8")
    return frame


def scored_minutes(rows: pd.DataFrame) -> list[int]:
    return [int((t - START) / pd.Timedelta(minutes=1)) for t in rows["open_time"]]


def test_rows_to_score_skips_candles_before_the_champions_heldout_start():
    rows = rows_to_score(feature_frame(10), last_predicted=None, out_of_sample_from=minute(6), max_rows=100)
    assert scored_minutes(rows) == [6, 7, 8, 9]


def test_rows_to_score_skips_candles_already_predicted():
    rows = rows_to_score(feature_frame(10), last_predicted=minute(7), out_of_sample_from=None, max_rows=100)
    assert scored_minutes(rows) == [8, 9]


def test_rows_to_score_applies_the_later_of_last_prediction_and_heldout_start():
    frame = feature_frame(10)
    assert scored_minutes(rows_to_score(frame, minute(3), minute(6), 100)) == [6, 7, 8, 9]
    assert scored_minutes(rows_to_score(frame, minute(8), minute(6), 100)) == [9]


def test_rows_to_score_keeps_only_the_most_recent_max_rows():
    rows = rows_to_score(feature_frame(10), last_predicted=None, out_of_sample_from=None, max_rows=3)
    assert scored_minutes(rows) == [7, 8, 9]


def test_rows_to_score_skips_rows_with_a_missing_feature():
    rows = rows_to_score(feature_frame(6, incomplete=(2, 5)), None, None, max_rows=100)
    assert scored_minutes(rows) == [0, 1, 3, 4]


def test_rows_to_score_counts_max_rows_among_complete_rows_only():
    rows = rows_to_score(feature_frame(6, incomplete=(4, 5)), None, None, max_rows=2)
    assert scored_minutes(rows) == [2, 3]


def test_rows_to_score_is_empty_when_everything_is_predicted():
    assert rows_to_score(feature_frame(5), minute(4), None, max_rows=10).empty


def test_prediction_rows_carry_probability_version_time_and_the_known_truth():
    scored = feature_frame(3, targets=[1, 0, None])
    predicted_at = pd.Timestamp("2024-02-01 12:00", tz="UTC")
    rows = prediction_rows(scored, np.array([0.6, 0.4, 0.55]), 7, predicted_at)
    assert tuple(rows.columns) == PREDICTION_COLUMNS
    assert list(rows["open_time"]) == list(scored["open_time"])
    assert list(rows["up_probability"]) == [0.6, 0.4, 0.55]
    assert set(rows["model_version"]) == {"7"}
    assert set(rows["predicted_at"]) == {predicted_at}
    assert rows["realized_label"].tolist()[:2] == [1, 0] and pd.isna(rows["realized_label"].iloc[2])


def test_stored_predictions_have_float_probabilities_and_integer_labels():
    scored = pd.DataFrame({"open_time": [minute(0), minute(1)], TARGET_COLUMN: [1.0, 0.0]})
    rows = prediction_rows(scored, [1, 0], "3", minute(5))  # integer probabilities are cast
    assert rows["up_probability"].dtype == np.float64
    assert rows["realized_label"].dtype == np.int8 and rows["realized_label"].tolist() == [1, 0]


def predictions_for(minutes, labels) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open_time": [minute(n) for n in minutes],
            "up_probability": 0.5,
            "model_version": "1",
            "predicted_at": minute(100),
            "realized_label": pd.array(labels, dtype="Int8"),
        }
    )


def test_with_realized_labels_fills_labels_that_became_known():
    features = feature_frame(4, targets=[1, 0, 1, None])
    joined = with_realized_labels(predictions_for([1, 2], [None, None]), features)
    assert joined["realized_label"].tolist() == [0, 1]


def test_with_realized_labels_leaves_the_newest_candle_unknown():
    # The last candle's target needs the next close, which has not happened yet.
    features = feature_frame(4, targets=[1, 0, 1, None])
    joined = with_realized_labels(predictions_for([2, 3], [None, None]), features)
    assert joined["realized_label"].iloc[0] == 1 and pd.isna(joined["realized_label"].iloc[1])


def test_with_realized_labels_keeps_a_label_already_known():
    # A stored label wins over the features' target: the history never rewrites a judged outcome.
    features = feature_frame(3, targets=[0, 0, 0])
    joined = with_realized_labels(predictions_for([0, 1], [1, None]), features)
    assert joined["realized_label"].tolist() == [1, 0]


def test_with_realized_labels_leaves_a_prediction_whose_candle_left_the_features_unknown():
    features = feature_frame(3, targets=[1, 1, 1])
    joined = with_realized_labels(predictions_for([50], [None]), features)
    assert pd.isna(joined["realized_label"].iloc[0])


@pytest.mark.parametrize("column", ["open_time", "up_probability", "model_version", "predicted_at"])
def test_with_realized_labels_changes_no_other_column(column):
    features = feature_frame(4, targets=[1, 0, 1, None])
    predictions = predictions_for([0, 1, 3], [None, 1, None])
    pd.testing.assert_series_equal(with_realized_labels(predictions, features)[column], predictions[column])


def test_labels_stored_as_objects_come_back_as_nullable_int8():
    times = [minute(n) for n in range(3)]
    stored = pd.DataFrame({"open_time": times, "realized_label": pd.Series([None, 1, None], dtype=object)})
    features = pd.DataFrame({"open_time": times, TARGET_COLUMN: [0.0, 1.0, np.nan]})
    joined = with_realized_labels(stored, features)
    assert joined["realized_label"].dtype == pd.Int8Dtype()
    assert joined["realized_label"].tolist()[:2] == [0, 1] and pd.isna(joined["realized_label"].iloc[2])
