"""Time featurizing and walk-forward training: one year of generated candles, and a CSV.

    python benchmarks/bench_training.py [--days 365] [--csv PATH]

The generated year is a random walk with a few gaps, so it also measures how close to 0.5 the
walk-forward AUC stays when there is nothing to learn. On a machine shared with other busy
processes, run with ``OMP_WAIT_POLICY=PASSIVE``: XGBoost's two OpenMP threads otherwise spin
and the same training takes ten to thirty times longer.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from btc_lifecycle.domain.candles import complete_candle_frame  # noqa: E402
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes  # noqa: E402
from btc_lifecycle.modelling import compute_features, train_walk_forward  # noqa: E402


def generated_year(days: int) -> pd.DataFrame:
    candles = synthetic_candles(days * 1440, start="2024-01-01T00:00:00Z", seed=11)
    step = len(candles) // 7
    holes = [position for start in range(step, len(candles) - 100, step)
             for position in range(start, start + 30)]
    return without_minutes(candles, holes)


def read_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame["open_time"] = pd.to_datetime(frame["open_time"], utc=True)
    return complete_candle_frame(frame, "1m")


def bench(name: str, candles: pd.DataFrame) -> None:
    began = time.perf_counter()
    features = compute_features(candles, "1m")
    featurized = time.perf_counter() - began
    result = train_walk_forward(features)
    total = time.perf_counter() - began
    print(f"{name}: {len(candles):,} candles, features {featurized:.2f} s, "
          f"walk-forward + final model {result.training_seconds:.1f} s, total {total:.1f} s")
    for label, metrics in [("walk-forward pooled", result.overall),
                           ("held-out window", result.heldout_metrics)]:
        print(f"  {label}:")
        for model, scores in metrics.items():
            print(f"    {model:<12} AUC {scores.roc_auc:.4f}  log loss {scores.log_loss:.4f}  "
                  f"Brier {scores.brier:.4f}  accuracy {scores.accuracy:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args()
    if args.csv is not None:
        bench(args.csv.name, read_csv(args.csv))
    if args.days > 0:
        bench(f"generated {args.days} days", generated_year(args.days))


if __name__ == "__main__":
    main()
