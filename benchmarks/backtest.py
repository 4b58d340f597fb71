"""Figure 12: the backtest of a year of one-minute out-of-sample calls (525,600), at 10 bps a side.

The year comes from generated candles (a seeded random walk) through ``compute_features``, and
the calls are seeded random up-probabilities in six blocks, shaped as ``train_walk_forward``
returns them: five folds and the held-out window, each block's threshold evidence the last 15 %
of the candles before it (the early-stopping tail of an expanding window). A seventh of the
candles comes first and is only evidence, so that exactly a year is called.

- 12a: ``run_backtest`` on the calls with their returns already joined and the thresholds chosen.
- 12b: ``backtest_out_of_sample`` end to end: joining the returns to the calls and to the
  evidence, choosing each block's threshold, then the backtest.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from benchmarks.harness import Figure, peak_rss_mb, reset_peak_rss, say, time_runs
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.modelling.backtest import (
    MINUTES_A_YEAR,
    TradingCosts,
    backtest_out_of_sample,
    out_of_sample_calls,
    run_backtest,
    selective_thresholds,
)
from btc_lifecycle.modelling.features import compute_features

BLOCKS = ("fold 0", "fold 1", "fold 2", "fold 3", "fold 4", "held-out")
EVIDENCE_FRACTION = 0.15
HORIZON = 1
SEED = 12


def generated_calls(calls: int = MINUTES_A_YEAR) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Features of generated candles, ``calls`` of them called in six blocks after a block that is
    only evidence, and each block's threshold evidence: (out_of_sample, threshold_evidence, features)."""
    block_size = calls // len(BLOCKS)
    features = compute_features(synthetic_candles(block_size + calls + 1, seed=SEED), "1m", horizon=HORIZON)
    rng = np.random.default_rng(SEED)
    # Confidences like the model's: within a few points of a coin.
    probability = np.clip(rng.normal(0.5, 0.02, len(features)), 0.0, 1.0)
    # The last candle has no target; every call before it does.
    called = np.arange(len(features) - 1 - calls, len(features) - 1)
    starts = called[0] + np.arange(len(BLOCKS)) * block_size
    block = np.repeat(np.array(BLOCKS), np.diff(np.append(starts, called[-1] + 1)))
    out_of_sample = pd.DataFrame(
        {
            "open_time": features["open_time"].to_numpy()[called],
            "block": block,
            "target": features["target"].iloc[called].to_numpy(dtype="int64"),
            "up_probability": probability[called],
        }
    )
    evidence = []
    for name, start in zip(BLOCKS, starts, strict=True):
        rows = np.arange(start - int(start * EVIDENCE_FRACTION), start)
        times = features["open_time"].to_numpy()[rows]
        evidence.append(pd.DataFrame({"open_time": times, "up_probability": probability[rows], "block": name}))
    return out_of_sample, pd.concat(evidence, ignore_index=True), features


def run(options: argparse.Namespace) -> list[Figure]:
    out_of_sample, evidence, features = generated_calls()
    costs = TradingCosts()
    calls = out_of_sample_calls(out_of_sample, features, HORIZON)
    thresholds = selective_thresholds(evidence, features, HORIZON, costs)
    say(f"  {len(calls):,} calls in {len(BLOCKS)} blocks, {len(evidence):,} evidence rows")

    reset_peak_rss()
    before = peak_rss_mb()
    alone = time_runs(lambda: run_backtest(calls, costs, HORIZON, "1m", thresholds), options.runs)
    alone_peak = peak_rss_mb()
    reset_peak_rss()
    joined = time_runs(
        lambda: backtest_out_of_sample(out_of_sample, evidence, features, costs, HORIZON, "1m"),
        options.runs,
    )
    joined_peak = peak_rss_mb()
    per_second = len(calls) / alone.median
    return [
        Figure(
            key="12a",
            name=f"run_backtest on {len(calls):,} one-minute calls (1 year), 5 strategies, gross and net",
            runs=alone.wall,
            cpu_seconds=alone.cpu,
            peak_rss_mb=alone_peak,
            target="< 2 s",
            met=alone.median < 2,
            throughput=f"{per_second:,.0f} calls/s",
            notes=f"horizon {HORIZON}, {costs.side_bps:g} bps a side; returns joined and thresholds chosen "
            f"before the runs; generated candles and seeded probabilities; the process held {before:,.0f} MB "
            "(features, calls, evidence) before the runs",
        ),
        Figure(
            key="12b",
            name=f"backtest_out_of_sample on {len(calls):,} calls (1 year): join, thresholds, backtest",
            runs=joined.wall,
            cpu_seconds=joined.cpu,
            peak_rss_mb=joined_peak,
            target="< 2 s",
            met=joined.median < 2,
            notes=f"the returns joined to {len(calls):,} calls and {len(evidence):,} threshold-evidence rows "
            f"from {len(features):,} feature rows, a threshold chosen per block, then 12a's backtest",
        ),
    ]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
