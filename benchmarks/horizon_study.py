"""Horizon study: does the model's edge survive trading costs at horizons of 1 to 60 minutes?

For each horizon h, the features' target becomes "the close h candles later is higher", the
walk-forward is trained as production trains it (``WalkForwardConfig``'s defaults, the embargo
lengthened to ``LONGEST_WINDOW + h`` so no training row's target reaches into a test block), and
its out-of-sample calls are backtested (``modelling.backtest``) at the given costs and at no cost.
A longer horizon moves the price further per call while a round trip costs the same, so if the
model's ranking holds up, the costs weigh less.

    python -m benchmarks.horizon_study [--candles FILE] [--horizons 1,5,15,60] [--side-bps 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# XGBoost's OpenMP threads spin-wait on a shared machine unless told otherwise (see training.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.harness import DEFAULT_CANDLES, say  # noqa: E402
from btc_lifecycle.config import FeaturesConfig  # noqa: E402
from btc_lifecycle.domain.candle_files import read_candle_file  # noqa: E402
from btc_lifecycle.modelling.backtest import (  # noqa: E402
    BPS,
    FREE,
    MODEL_STRATEGIES,
    Backtest,
    TradingCosts,
    backtest_out_of_sample,
    horizon_returns,
)
from btc_lifecycle.modelling.features import LONGEST_WINDOW, compute_features  # noqa: E402
from btc_lifecycle.modelling.walk_forward import WalkForwardConfig, train_walk_forward  # noqa: E402

INTERVAL = "1m"
HORIZONS = (1, 5, 15, 60)
N_JOBS = 2
SHORT_NAMES = {"long_short": "long/short", "long_flat": "long/flat", "selective": "selective"}


@dataclass(frozen=True)
class HorizonResult:
    """One horizon: how far the price moves, how well the model ranks, and its backtests."""

    horizon: int
    mean_abs_return_bps: float  # mean |h-candle return| over every candle whose target is known
    roc_auc: float  # pooled walk-forward ROC AUC of the XGBoost model
    calls: int  # out-of-sample calls backtested
    backtests: dict[str, Backtest]  # "costs" and "free"


def study_horizon(candles: pd.DataFrame, horizon: int, costs: TradingCosts) -> HorizonResult:
    """Features, walk-forward and the backtest of its out-of-sample calls at one horizon."""
    features = compute_features(candles, INTERVAL, FeaturesConfig().max_fill_minutes, horizon=horizon)
    result = train_walk_forward(
        features, WalkForwardConfig(interval=INTERVAL, embargo_candles=LONGEST_WINDOW + horizon, n_jobs=N_JOBS)
    )
    moves = np.abs(horizon_returns(features["close"], features["target"], horizon))
    backtests = {
        basis: backtest_out_of_sample(
            result.out_of_sample, result.threshold_evidence, features, basis_costs, horizon=horizon, interval=INTERVAL
        )
        for basis, basis_costs in (("costs", costs), ("free", FREE))
    }
    return HorizonResult(
        horizon=horizon,
        mean_abs_return_bps=float(np.nanmean(moves) / BPS),
        roc_auc=float(result.overall["xgboost"].roc_auc),
        calls=len(result.out_of_sample),
        backtests=backtests,
    )


def horizon_table(results: list[HorizonResult], basis: str) -> str:
    """A Markdown table, a row per horizon, of the backtests on ``basis`` ("costs" or "free"),
    followed by each horizon's verdict."""
    costs = results[0].backtests[basis].costs if results else FREE
    strategy_columns = [f"{SHORT_NAMES[name]} {part}" for name in MODEL_STRATEGIES for part in ("gross", "net")]
    header = [
        "horizon",
        "mean abs return",
        "ROC AUC",
        *strategy_columns,
        "buy & hold net",
        "long/short break-even",
        "any strategy net > 0?",
    ]
    lines = [
        f"At {costs.side_bps:g} bps a side ({costs.round_trip_bps:g} bps a round trip, {costs.fills} fills): total "
        "returns over the out-of-sample candles; mean abs return over every candle of the file whose "
        "h-minute return is known; break-even: the cost a side at which long/short's net returns sum to 0.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" for _ in header) + "|",
    ]
    for result in results:
        backtest = result.backtests[basis]
        cells = [f"{result.horizon} min", f"{result.mean_abs_return_bps:.1f} bps", f"{result.roc_auc:.4f}"]
        for name in MODEL_STRATEGIES:
            strategy = backtest.strategies[name]
            if strategy.net.calls:
                cells += [f"{strategy.gross.total_return:+.2%}", f"{strategy.net.total_return:+.2%}"]
            else:
                cells += ["no trades", "no trades"]
        cells.append(f"{backtest.strategies['buy_and_hold'].net.total_return:+.2%}")
        cells.append(f"{backtest.strategies['long_short'].break_even_side_bps:.2f} bps a side")
        winners = [SHORT_NAMES[name] for name in MODEL_STRATEGIES if backtest.strategies[name].net.total_return > 0]
        cells.append(f"yes: {', '.join(winners)}" if winners else "no")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {result.horizon} min: {result.backtests[basis].verdict}" for result in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.horizon_study", description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=Path, default=None, help=f"1-minute candle file (default: {DEFAULT_CANDLES})")
    parser.add_argument("--horizons", default=",".join(map(str, HORIZONS)), help="horizons in minutes, comma-separated")
    parser.add_argument(
        "--side-bps", type=float, default=TradingCosts().taker_fee_bps, help="taker fee a side, in bps (default 10)"
    )
    options = parser.parse_args(argv)
    path = options.candles or DEFAULT_CANDLES
    if not path.is_file():
        parser.error(f"{path}: candle file not found")
    horizons = [int(part) for part in options.horizons.split(",") if part.strip()]
    costs = TradingCosts(taker_fee_bps=options.side_bps)
    began = time.perf_counter()

    candles = read_candle_file(path, INTERVAL)
    results = []
    for horizon in horizons:
        results.append(study_horizon(candles, horizon, costs))
        say(f"  {horizon} min: done at {time.perf_counter() - began:.0f} s")

    first, last = candles["open_time"].iloc[0], candles["open_time"].iloc[-1]
    print(f"{path.name}: {len(candles):,} candles, {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC")
    print(", ".join(f"{result.horizon} min: {result.calls:,} out-of-sample calls" for result in results))
    print()
    print(horizon_table(results, "costs"))
    print()
    print(horizon_table(results, "free"))
    print(f"\n{time.perf_counter() - began:.0f} s; XGBoost n_jobs {N_JOBS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
