"""The horizon study's table (benchmarks/horizon_study.py, docs/ml-method.md) on hand-made calls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.horizon_study import HorizonResult, horizon_table
from btc_lifecycle.modelling.backtest import FREE, TradingCosts, run_backtest

# A study script's tests: make mutate does not mutate the script, nor run these ([tool.mutmut]).
pytestmark = pytest.mark.study


def result(horizon: int, right: bool) -> HorizonResult:
    """20 calls, ten up then ten down, each 10 bps the way it called when ``right``, else against it."""
    up = np.arange(20) < 10
    move = np.where(up, 0.001, -0.001) * (1 if right else -1)
    calls = pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=20, freq="min", tz="UTC"),
            "block": "fold 0",
            "up_probability": np.where(up, 0.6, 0.4),
            "forward_return": move,
            "next_return": move,
        }
    )
    backtests = {basis: run_backtest(calls, costs) for basis, costs in (("costs", TradingCosts()), ("free", FREE))}
    return HorizonResult(horizon, mean_abs_return_bps=10.0, roc_auc=0.5, calls=20, backtests=backtests)


def test_a_row_per_horizon_names_the_strategies_that_clear_their_costs_then_a_verdict_per_horizon():
    table = horizon_table([result(1, right=True), result(5, right=False)], "costs").splitlines()

    rows = [line for line in table if line.startswith("| 1 min") or line.startswith("| 5 min")]
    assert rows[0].startswith("| 1 min | 10.0 bps | 0.5000 |")
    assert rows[0].endswith("| yes: long/short, long/flat |")
    assert rows[1].endswith("| no |")
    # Without a threshold from its training block, the selective strategy never trades.
    assert rows[0].count("no trades") == 2
    verdicts = [line for line in table if line.startswith("- ")]
    assert verdicts[0].startswith("- 1 min: After 10 bps a side, long/short on every call makes money")
    assert verdicts[1].startswith("- 5 min: After 10 bps a side,") and "loses money" in verdicts[1]
