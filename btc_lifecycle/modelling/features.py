"""Model inputs known at the close of candle t, and the target: whether the close ``horizon``
candles later is higher (the seed's label of t + 1 when the horizon is one candle).

One function serves training and scoring, so the two can never disagree. Every feature is
stationary (returns, ratios, cyclic time) because raw price levels drift out of any training
range. Windows never reach across a gap: a feature whose window is not contained in one
contiguous run of candles is missing, not computed over the hole.

The gap policy (``btc_lifecycle.domain.gaps``, setting ``features.max_fill_minutes``) first fills
short gaps with flat trade-less candles, so on a thin market the windows run through quiet
minutes; the ``filled`` flags let the model see which minutes had no trade.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candles import OHLCV_COLUMNS, follows_previous
from btc_lifecycle.domain.gaps import FILLED_COLUMN, fill_trade_less_minutes
from btc_lifecycle.domain.labels import price_increase_labels

RETURN_LAGS = (1, 5, 15, 60)
VOLATILITY_WINDOWS = (15, 60)
VOLUME_WINDOW = 60
RSI_WINDOW = 14
FILLED_WINDOW = 60

# How many earlier candles of the same contiguous run each feature reads.
FEATURE_HISTORY = {
    **{f"log_return_{lag}": lag for lag in RETURN_LAGS},
    # w one-minute returns need w + 1 closes.
    **{f"volatility_{window}": window for window in VOLATILITY_WINDOWS},
    "range_to_close": 0,
    "body_to_open": 0,
    "upper_wick_to_close": 0,
    "lower_wick_to_close": 0,
    f"log_volume_ratio_{VOLUME_WINDOW}": VOLUME_WINDOW - 1,
    f"rsi_{RSI_WINDOW}": RSI_WINDOW,
    "minute_of_day_sin": 0,
    "minute_of_day_cos": 0,
    # 1 for a trade-less minute the gap policy filled; on a complete series both are constant 0.
    FILLED_COLUMN: 0,
    f"filled_share_{FILLED_WINDOW}": FILLED_WINDOW - 1,
}
FEATURE_COLUMNS = tuple(FEATURE_HISTORY)
# Candles a feature row spans (t and its history): the embargo must be longer than this.
LONGEST_WINDOW = max(FEATURE_HISTORY.values()) + 1
TARGET_COLUMN = "target"
# The candle's close: not a model input (a price level is not stationary); the backtest reads it.
CLOSE_COLUMN = "close"
TRAINABLE_COLUMN = "trainable"

# Why a feature row is not trainable, in the order a row is counted under the first that applies.
EXCLUSION_REASONS = {
    "incomplete_window_start_of_history": "its feature window reaches before the first stored candle",
    "incomplete_window_after_gap": "its feature window reaches across a gap longer than "
    "features.max_fill_minutes (left open: an outage, not quiet trading)",
    "no_next_candle": "the candle after it is not known: the newest row, or the last one before a gap left open",
}

# A minute with no trades has volume 0; its log ratio is floored instead of being -inf.
_VOLUME_RATIO_FLOOR = 1e-3


def compute_features(candles: pd.DataFrame, interval: str, max_fill_minutes: int = 0, horizon: int = 1) -> pd.DataFrame:
    """``open_time``, FEATURE_COLUMNS, ``close``, ``target`` and ``trainable``: one row per stored
    candle and per minute the gap policy filled (gaps of at most ``max_fill_minutes``; 0 fills
    nothing).

    The target of t is 1 if the close ``horizon`` candles later, on the filled series, is higher
    than t's close, else 0 (a tie is 0; after a filled trade-less minute the close is unchanged);
    missing when those candles are not one contiguous run. The index is 0..n-1 in time order.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 candle, got {horizon}")
    candles = fill_trade_less_minutes(candles[["open_time", *OHLCV_COLUMNS]], interval, max_fill_minutes)
    open_times = candles["open_time"]
    position = _position_in_run(open_times, interval)

    close = candles["close"].to_numpy(dtype="float64")
    open_ = candles["open"].to_numpy(dtype="float64")
    high = candles["high"].to_numpy(dtype="float64")
    low = candles["low"].to_numpy(dtype="float64")
    volume = pd.Series(candles["volume"].to_numpy(dtype="float64"))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = pd.Series(np.log(close))
        one_minute = log_close.diff()

        values: dict[str, np.ndarray] = {}
        for lag in RETURN_LAGS:
            values[f"log_return_{lag}"] = log_close.diff(lag).to_numpy()
        for window in VOLATILITY_WINDOWS:
            values[f"volatility_{window}"] = one_minute.rolling(window).std().to_numpy()
        values["range_to_close"] = (high - low) / close
        values["body_to_open"] = (close - open_) / open_
        values["upper_wick_to_close"] = (high - np.maximum(open_, close)) / close
        values["lower_wick_to_close"] = (np.minimum(open_, close) - low) / close

        mean_volume = volume.rolling(VOLUME_WINDOW).mean().to_numpy()
        ratio = np.where(mean_volume > 0, volume.to_numpy() / mean_volume, 1.0)
        ratio = np.where(np.isnan(mean_volume), np.nan, ratio)
        values[f"log_volume_ratio_{VOLUME_WINDOW}"] = np.log(np.maximum(ratio, _VOLUME_RATIO_FLOOR))

        # Cutler's RSI on log returns, scaled to 0..1: simple means keep the window finite,
        # where Wilder's exponential smoothing would remember candles from before a gap.
        gain = one_minute.clip(lower=0).rolling(RSI_WINDOW).mean().to_numpy()
        loss = (-one_minute).clip(lower=0).rolling(RSI_WINDOW).mean().to_numpy()
        total = gain + loss
        # A flat window has neither gains nor losses: neutral, not undefined.
        values[f"rsi_{RSI_WINDOW}"] = np.where(total > 0, gain / total, 0.5)
        values[f"rsi_{RSI_WINDOW}"][np.isnan(total)] = np.nan

    minute_of_day = (open_times.dt.hour * 60 + open_times.dt.minute).to_numpy(dtype="float64")
    angle = 2 * np.pi * minute_of_day / 1440
    values["minute_of_day_sin"] = np.sin(angle)
    values["minute_of_day_cos"] = np.cos(angle)
    filled = candles[FILLED_COLUMN].to_numpy(dtype="float64")
    values[FILLED_COLUMN] = filled
    values[f"filled_share_{FILLED_WINDOW}"] = pd.Series(filled).rolling(FILLED_WINDOW).mean().to_numpy()

    # Windows computed over the whole array are only kept where they fit inside one run.
    for name, history in FEATURE_HISTORY.items():
        values[name] = np.where(position >= history, values[name], np.nan)

    features = pd.DataFrame({name: values[name] for name in FEATURE_COLUMNS}, index=candles.index)
    features.insert(0, "open_time", open_times)
    features[CLOSE_COLUMN] = close
    # The target of t: missing at the end and where a gap left open lies within the horizon.
    if horizon == 1:  # the seed's label of t + 1
        target = price_increase_labels(candles, interval).shift(-1)
    else:
        ahead = pd.Series(close).shift(-horizon)
        contiguous = pd.Series(position).shift(-horizon) >= horizon
        target = (ahead > close).astype("Int8").where(contiguous.to_numpy(), pd.NA)
    features[TARGET_COLUMN] = target.astype("Int8")
    features[TRAINABLE_COLUMN] = feature_complete(features) & target.notna().to_numpy()
    return features


def feature_complete(features: pd.DataFrame) -> np.ndarray:
    """True where every feature is present and finite: the rows a model may score."""
    matrix = features[list(FEATURE_COLUMNS)].to_numpy(dtype="float64")
    return np.isfinite(matrix).all(axis=1)


def training_exclusions(features: pd.DataFrame, interval: str) -> dict[str, int]:
    """How many rows of ``compute_features``' output are not trainable, by EXCLUSION_REASONS.

    Each excluded row counts once, under the first reason that applies.
    """
    incomplete = ~feature_complete(features)
    first_run = np.cumsum(_starts_run(features["open_time"], interval)) == 1
    no_next = features[TARGET_COLUMN].isna().to_numpy() & ~incomplete
    counts = (incomplete & first_run, incomplete & ~first_run, no_next)
    return {reason: int(rows.sum()) for reason, rows in zip(EXCLUSION_REASONS, counts, strict=True)}


def _starts_run(open_times: pd.Series, interval: str) -> np.ndarray:
    """True where a candle does not follow the previous one by exactly one interval."""
    return (~follows_previous(open_times, interval)).to_numpy()


def _position_in_run(open_times: pd.Series, interval: str) -> np.ndarray:
    """How many candles precede each one in its contiguous run (0 after a gap)."""
    index = np.arange(len(open_times))
    run_start = np.maximum.accumulate(np.where(_starts_run(open_times, interval), index, 0))
    return index - run_start
