"""Live predictions: which candles the champion scores, and joining the truth when it arrives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from btc_lifecycle.modelling.features import TARGET_COLUMN, feature_complete

PREDICTION_COLUMNS = ("open_time", "up_probability", "model_version", "predicted_at", "realized_label")


def rows_to_score(
    features: pd.DataFrame, last_predicted: pd.Timestamp | None, out_of_sample_from: pd.Timestamp | None, max_rows: int
) -> pd.DataFrame:
    """Complete feature rows not predicted yet and not seen in training, the most recent ``max_rows``.

    Scoring candles the champion was trained on would report in-sample performance as live.
    """
    rows = features.loc[feature_complete(features)]
    if last_predicted is not None:
        rows = rows.loc[rows["open_time"] > last_predicted]
    if out_of_sample_from is not None:
        rows = rows.loc[rows["open_time"] >= out_of_sample_from]
    return rows.tail(max_rows)


def prediction_rows(
    scored: pd.DataFrame, up_probability: np.ndarray, model_version: str, predicted_at: pd.Timestamp
) -> pd.DataFrame:
    """One row per scored candle: P(next close higher), who predicted it, when, and the truth if known."""
    return pd.DataFrame(
        {
            "open_time": scored["open_time"].to_numpy(),
            "up_probability": np.asarray(up_probability, dtype="float64"),
            "model_version": str(model_version),
            "predicted_at": predicted_at,
            "realized_label": scored[TARGET_COLUMN].astype("Int8").to_numpy(),
        }
    )


def with_realized_labels(predictions: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """``predictions`` with ``realized_label`` filled from the features' target where it is now known."""
    truth = features.set_index("open_time")[TARGET_COLUMN]
    joined = predictions["open_time"].map(truth)
    realized = predictions["realized_label"].astype("Int8").fillna(joined.astype("Int8"))
    return predictions.assign(realized_label=realized)
