"""Calibration study: what the drift check would have said, hour by hour, on a candle file.

A champion is trained on the first ``--reference-days`` days; every hour the last ``--window``
candles are compared with its reference window, as the ``drift_report`` asset will do. With
``--retrain`` a red window retrains the champion on the most recent days, as the sensor will.

    python -m btc_lifecycle.monitoring.calibrate --candles FILE [--reference-days 3] [--window 1440]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.modelling.features import TARGET_COLUMN, compute_features, feature_complete
from btc_lifecycle.modelling.walk_forward import (
    WalkForwardConfig,
    predict_up_probability,
    train_walk_forward,
)
from btc_lifecycle.monitoring.drift import (
    PREDICTION_COLUMN,
    MonitoringConfig,
    data_drift,
    drift_scores,
)
from btc_lifecycle.monitoring.performance import realized_performance

# Small and fast: the study retrains several times; the champion's quality is not the point.
STUDY_TRAINING = WalkForwardConfig(n_folds=2, n_estimators=150, early_stopping_rounds=20)


@dataclass(frozen=True)
class WindowVerdict:
    """The drift check on one current window, and how the champion did on its candles."""

    end: pd.Timestamp  # when the window closes: its last candle's open time + 1 minute
    drift_share: float
    drifted_columns: tuple[str, ...]
    red: bool
    realized_log_loss: float
    champion_trained_until: pd.Timestamp


@dataclass(frozen=True)
class Champion:
    """A trained model, its reference window and predictions for every feature row."""

    trained_until: pd.Timestamp
    reference: pd.DataFrame
    predictions: np.ndarray
    heldout_log_loss: float


def study_features(candles: pd.DataFrame) -> pd.DataFrame:
    """Feature-complete rows with a known target: what a champion trains on and is judged by."""
    features = compute_features(candles, "1m")
    keep = feature_complete(features) & features[TARGET_COLUMN].notna().to_numpy()
    return features.loc[keep].reset_index(drop=True)


def train_champion(features: pd.DataFrame, until: pd.Timestamp, days: float, config: MonitoringConfig) -> Champion:
    """Train on the ``days`` before ``until``; its reference is the tail of that window."""
    times = features["open_time"]
    training = features.loc[(times >= until - pd.Timedelta(days=days)) & (times < until)]
    result = train_walk_forward(training, STUDY_TRAINING)
    predictions = predict_up_probability(result.model, features)
    reference = training.assign(**{PREDICTION_COLUMN: predictions[training.index]})
    if config.reference_window is not None:
        reference = reference.tail(config.reference_window)
    return Champion(until, reference, predictions, result.heldout_metrics["xgboost"].log_loss)


def simulate_monitoring(
    features: pd.DataFrame,
    reference_days: float,
    config: MonitoringConfig,
    step: pd.Timedelta = pd.Timedelta(hours=1),
    retrain: bool = False,
) -> tuple[list[WindowVerdict], list[Champion]]:
    """Every ``step`` after the first champion: the drift check on the last window of candles."""
    times = features["open_time"]
    start = times.iloc[0].floor("D") + pd.Timedelta(days=reference_days)
    champions = [train_champion(features, start, reference_days, config)]
    verdicts = []
    for end in pd.date_range(start + step, times.iloc[-1] + pd.Timedelta("1min"), freq=step):
        champion = champions[-1]
        current = features.loc[times < end].tail(config.current_window)
        current = current.assign(**{PREDICTION_COLUMN: champion.predictions[current.index]})
        result = drift_scores(champion.reference, current, config.columns, config)
        red = result.drift_share > config.drift_share_threshold
        since = current.loc[current["open_time"] >= champion.trained_until]
        realized = realized_performance(since[PREDICTION_COLUMN], since[TARGET_COLUMN])
        verdicts.append(
            WindowVerdict(
                end=end,
                drift_share=result.drift_share,
                drifted_columns=result.drifted_columns,
                red=red,
                realized_log_loss=np.nan if realized is None else realized.log_loss,
                champion_trained_until=champion.trained_until,
            )
        )
        if red and retrain:
            champions.append(train_champion(features, end, reference_days, config))
    return verdicts, champions


def verdict_table(verdicts: list[WindowVerdict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "window_end": v.end.strftime("%m-%d %H:%M"),
                "drift_share": round(v.drift_share, 2),
                "check": "RED" if v.red else "green",
                "realized_log_loss": round(v.realized_log_loss, 4),
                "drifted": ", ".join(_short(name) for name in v.drifted_columns) or "-",
            }
            for v in verdicts
        ]
    )


def summarize(
    verdicts: list[WindowVerdict],
    champions: list[Champion],
    calm_until: pd.Timestamp,
    crash: tuple[pd.Timestamp, pd.Timestamp],
) -> list[str]:
    """The numbers the calibration is judged by."""
    ends = pd.DatetimeIndex([v.end for v in verdicts])
    share = np.array([v.drift_share for v in verdicts])
    red = np.array([v.red for v in verdicts])
    calm = ends < calm_until
    in_crash = (ends >= crash[0]) & (ends < crash[1])
    first_red = next((v.end for v in verdicts if v.red), None)
    lines = [
        f"windows: {len(verdicts)}, red: {int(red.sum())}",
        f"calm windows (ending before {calm_until:%m-%d %H:%M}): {int(calm.sum())}, red: "
        f"{int(red[calm].sum())}, highest drift share {share[calm].max():.2f}",
        f"crash windows ({crash[0]:%m-%d} to {crash[1]:%m-%d}): {int(in_crash.sum())}, red: {int(red[in_crash].sum())}",
        f"first red window ends at: {first_red if first_red is not None else 'never'}",
    ]
    for champion in champions:
        lines.append(
            f"champion trained until {champion.trained_until:%m-%d %H:%M}, held-out "
            f"log loss {champion.heldout_log_loss:.4f}"
        )
    return lines


def time_report_path(features: pd.DataFrame, config: MonitoringConfig, rows: int = 1500) -> float:
    """Seconds for one full evidently drift report on ``rows`` vs ``rows`` (import excluded)."""
    import evidently  # noqa: F401  (imported first: the import is not what is measured)

    frame = features.assign(**{PREDICTION_COLUMN: 0.5 + 0.01 * np.sin(np.arange(len(features)))})
    data_drift(frame.head(rows), frame.tail(rows), config.columns, config)  # warm caches
    started = time.perf_counter()
    data_drift(frame.head(rows), frame.tail(rows), config.columns, config)
    return time.perf_counter() - started


def _short(name: str) -> str:
    return (
        name.replace("log_return_", "ret")
        .replace("volatility_", "vol")
        .replace("_to_close", "")
        .replace("_to_open", "")
        .replace("log_volume_ratio_", "volr")
        .replace("prediction", "pred")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candles", type=Path, required=True)
    parser.add_argument("--reference-days", type=float, default=3.0)
    parser.add_argument("--window", type=int, default=MonitoringConfig.current_window)
    parser.add_argument("--stattest", default=MonitoringConfig.stattest)
    parser.add_argument("--threshold", type=float, default=MonitoringConfig.stattest_threshold)
    parser.add_argument("--drift-share", type=float, default=MonitoringConfig.drift_share_threshold)
    parser.add_argument("--print-every-hours", type=int, default=6)
    parser.add_argument("--retrain", action="store_true", help="retrain on every red window")
    parser.add_argument("--calm-until", default="2023-03-08T00:00Z")
    parser.add_argument("--crash", default="2023-03-10T00:00Z,2023-03-15T00:00Z")
    args = parser.parse_args(argv)
    config = replace(
        MonitoringConfig(),
        current_window=args.window,
        stattest=args.stattest,
        stattest_threshold=args.threshold,
        drift_share_threshold=args.drift_share,
        reference_window=int(args.reference_days * 1440),
    )

    features = study_features(read_candle_file(args.candles))
    started = time.perf_counter()
    verdicts, champions = simulate_monitoring(features, args.reference_days, config, retrain=args.retrain)
    elapsed = time.perf_counter() - started
    table = verdict_table(verdicts)
    # Every few hours, and every window where the check changes colour.
    shown = table[
        [
            v.end.hour % args.print_every_hours == 0 or v.red != (verdicts[i - 1].red if i else False)
            for i, v in enumerate(verdicts)
        ]
    ]
    print(
        f"reference: first {args.reference_days:g} days; window {args.window} candles; "
        f"{config.stattest} >= {config.stattest_threshold} per column; red when drift share "
        f"> {config.drift_share_threshold}; retrain on red: {args.retrain}"
    )
    print(shown.to_string(index=False))
    crash = tuple(pd.Timestamp(text) for text in args.crash.split(","))
    for line in summarize(verdicts, champions, pd.Timestamp(args.calm_until), crash):
        print(line)
    print(f"study: {len(verdicts)} windows in {elapsed:.1f} s (fast path, incl. training)")
    print(
        f"one evidently drift report, 1,500 vs 1,500 rows x {len(config.columns)} columns: "
        f"{time_report_path(features, config):.2f} s"
    )


if __name__ == "__main__":
    main()
