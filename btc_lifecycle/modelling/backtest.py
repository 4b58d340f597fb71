"""Could anyone trade the model? A backtest of its out-of-sample calls, with and without costs.

The model's calls are the walk-forward predictions on candles it never trained on. Each call
at the close of candle t says up or down for the next ``horizon`` candles. A strategy turns calls
into signals (+1 long, -1 short, 0 flat), and each signal is held for ``horizon`` candles as a
tranche of 1/horizon of the capital, so a horizon of 1 is one full position a candle and longer
horizons overlap, using every call. Positions are netted: staying long pays nothing, a flip from
long to short trades twice the capital. Each unit traded pays the fee of one side plus slippage.

Returns are simple, candle to candle, compounded; a year is 365 days of 24 hours (crypto trades
every minute). Everything is a few lines of numpy: one instrument, fills at the close, no order
book, so an event-driven backtest library would add nothing but its import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candles import interval_ms

BPS = 1e-4
MINUTES_A_YEAR = 365 * 24 * 60
# The strategies that act on the model's calls, and the two that ignore them.
MODEL_STRATEGIES = ("long_short", "long_flat", "selective")
BENCHMARKS = ("buy_and_hold", "flat")
STRATEGIES = MODEL_STRATEGIES + BENCHMARKS
STRATEGY_NAMES = {
    "long_short": "long/short on every call",
    "long_flat": "long/flat on every call",
    "selective": "selective (long/short when the edge beats the cost)",
    "buy_and_hold": "buy and hold",
    "flat": "flat",
}
# Where the selective threshold may sit: quantiles of a block's confidence |2p - 1|.
THRESHOLD_QUANTILES = (0.0, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99)
NEVER = math.inf  # the selective threshold when no threshold paid for its costs


@dataclass(frozen=True)
class TradingCosts:
    """What one side of a trade costs, in basis points of the traded amount."""

    taker_fee_bps: float = 10.0  # Binance spot, regular tier: 0.1 % a side
    maker_fee_bps: float = 10.0
    slippage_bps: float = 0.0  # paid on top of the fee, on every side
    fills: Literal["taker", "maker"] = "taker"  # market orders pay the taker fee

    def __post_init__(self) -> None:
        for name in ("taker_fee_bps", "maker_fee_bps", "slippage_bps"):
            if not 0 <= getattr(self, name) < 10_000:
                raise ValueError(f"{name} must be between 0 and 10000 bps, got {getattr(self, name)}")
        if self.fills not in ("taker", "maker"):
            raise ValueError(f"fills must be 'taker' or 'maker', got {self.fills!r}")

    @property
    def side_bps(self) -> float:
        fee = self.taker_fee_bps if self.fills == "taker" else self.maker_fee_bps
        return fee + self.slippage_bps

    @property
    def round_trip_bps(self) -> float:
        return 2 * self.side_bps

    @property
    def side(self) -> float:
        """One side's cost as a fraction of the amount traded."""
        return self.side_bps * BPS


FREE = TradingCosts(taker_fee_bps=0.0, maker_fee_bps=0.0, slippage_bps=0.0)


@dataclass(frozen=True)
class Performance:
    """One strategy's result on the backtested candles, with or without costs."""

    total_return: float
    annualised_return: float
    sharpe: float
    max_drawdown: float  # the largest fall from a peak of the equity curve, as a fraction
    turnover: float  # capital traded, in multiples of the capital
    trades: int  # candles at which the position changed, the last exit included
    hit_rate: float  # share of acted-on calls whose horizon return had the called sign
    calls: int  # calls acted on (a non-zero signal)
    cost_paid: float  # sum of the per-candle costs, as a fraction of capital


@dataclass(frozen=True)
class StrategyResult:
    """A strategy before and after costs, its break-even and its equity curves."""

    name: str
    gross: Performance
    net: Performance
    break_even_side_bps: float  # the cost a side at which net returns sum to zero
    break_even_hit_rate: float  # the hit rate at which the calls would pay for their costs
    mean_gross_bps: float  # gross return per candle, in bps: the edge
    gross_equity: np.ndarray
    net_equity: np.ndarray
    net_returns: np.ndarray  # per candle, in time order


@dataclass(frozen=True)
class Backtest:
    """Every strategy on the same candles, and what the verdict says of them."""

    times: pd.Series
    strategies: dict[str, StrategyResult]
    costs: TradingCosts
    horizon: int
    interval: str
    thresholds: dict[str, float]  # per block: the selective threshold on |2p - 1|
    candles: int

    @property
    def verdict(self) -> str:
        return verdict(self)

    def table(self) -> pd.DataFrame:
        """One row per strategy and cost basis: the numbers the asset, the PDF and MLflow show."""
        rows = []
        for name, result in self.strategies.items():
            for basis, performance in (("gross", result.gross), ("net", result.net)):
                rows.append(
                    {
                        "strategy": name,
                        "costs": basis,
                        "total_return": performance.total_return,
                        "annualised_return": performance.annualised_return,
                        "sharpe": performance.sharpe,
                        "max_drawdown": performance.max_drawdown,
                        "turnover": performance.turnover,
                        "trades": performance.trades,
                        "hit_rate": performance.hit_rate,
                        "break_even_side_bps": result.break_even_side_bps,
                        "break_even_hit_rate": result.break_even_hit_rate,
                    }
                )
        return pd.DataFrame(rows)


def horizon_returns(close: pd.Series | np.ndarray, target: pd.Series | np.ndarray, horizon: int) -> np.ndarray:
    """The simple return from each close to the close ``horizon`` rows later, where the target
    is known (the rows ahead are one contiguous run); NaN elsewhere."""
    close = np.asarray(close, dtype="float64")
    ahead = np.full_like(close, np.nan)
    if horizon < len(close):
        ahead[: len(close) - horizon] = close[horizon:]
    known = ~pd.isna(np.asarray(target, dtype="object"))
    return np.where(known, ahead / close - 1, np.nan)


def next_returns(close: pd.Series | np.ndarray) -> np.ndarray:
    """The simple return from each row's close to the next row's: what a position held over that
    candle earns. The last row earns nothing."""
    close = np.asarray(close, dtype="float64")
    following = np.append(close[1:], close[-1:]) if len(close) else close
    return following / close - 1


def signals(up_probability: np.ndarray, strategy: str, threshold: np.ndarray | float = NEVER) -> np.ndarray:
    """+1, -1 or 0 for each call: what ``strategy`` does with an up-probability."""
    probability = np.asarray(up_probability, dtype="float64")
    direction = np.sign(probability - 0.5)
    if strategy == "long_short":
        return direction
    if strategy == "long_flat":
        return np.maximum(direction, 0.0)
    if strategy == "selective":
        return np.where(np.abs(2 * probability - 1) > threshold, direction, 0.0)
    if strategy == "buy_and_hold":
        return np.ones_like(probability)
    if strategy == "flat":
        return np.zeros_like(probability)
    raise ValueError(f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")


def held_positions(signal: np.ndarray, horizon: int) -> np.ndarray:
    """Each signal held ``horizon`` candles as a 1/horizon tranche: the position over each candle."""
    signal = np.asarray(signal, dtype="float64")
    cumulative = np.cumsum(np.concatenate([[0.0], signal]))
    lagged = cumulative[np.maximum(np.arange(1, len(signal) + 1) - horizon, 0)]
    return (cumulative[1:] - lagged) / horizon


def choose_threshold(up_probability: np.ndarray, forward_return: np.ndarray, costs: TradingCosts) -> float:
    """The confidence |2p - 1| above which selective calls paid for a round trip each, on evidence
    the model did not fit (a training block's own held-back tail); NEVER when none did.

    Each call is charged a whole round trip, so a threshold is kept only if its calls paid for
    themselves without the netting of neighbouring tranches. Ties go to the higher threshold.
    """
    probability = np.asarray(up_probability, dtype="float64")
    returns = np.asarray(forward_return, dtype="float64")
    usable = np.isfinite(probability) & np.isfinite(returns)
    probability, returns = probability[usable], returns[usable]
    if not len(probability):
        return NEVER
    confidence = np.abs(2 * probability - 1)
    direction = np.sign(probability - 0.5)
    best, best_gain = NEVER, 0.0
    for threshold in sorted(set(np.quantile(confidence, THRESHOLD_QUANTILES)), reverse=True):
        acted = confidence > threshold
        gain = float(np.sum(direction[acted] * returns[acted] - costs.round_trip_bps * BPS * np.abs(direction[acted])))
        if gain > best_gain:
            best, best_gain = float(threshold), gain
    return best


def run_backtest(
    calls: pd.DataFrame,
    costs: TradingCosts,
    horizon: int = 1,
    interval: str = "1m",
    thresholds: dict[str, float] | None = None,
) -> Backtest:
    """Every strategy on ``calls``: one row per out-of-sample candle in time order, with
    ``open_time``, ``block`` (positions open and close within a block), ``up_probability``,
    ``forward_return`` (over the horizon) and ``next_return`` (over the next candle).

    ``thresholds`` holds the selective threshold of each block; a block without one never trades.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 candle, got {horizon}")
    calls = calls.sort_values("open_time", kind="stable").reset_index(drop=True)
    thresholds = dict(thresholds or {})
    block = calls["block"].astype(str).to_numpy()
    per_row_threshold = np.array([thresholds.get(name, NEVER) for name in block], dtype="float64")
    probability = calls["up_probability"].to_numpy(dtype="float64")
    forward = calls["forward_return"].to_numpy(dtype="float64")
    following = np.nan_to_num(calls["next_return"].to_numpy(dtype="float64"))
    periods_a_year = MINUTES_A_YEAR * 60_000 / interval_ms(interval)
    starts = np.flatnonzero(np.concatenate([[True], block[1:] != block[:-1]]))
    ends = np.append(starts[1:], len(block))

    strategies = {}
    for name in STRATEGIES:
        signal = signals(probability, name, per_row_threshold)
        position = np.concatenate([held_positions(signal[s:e], horizon) for s, e in zip(starts, ends, strict=True)])
        traded = _traded(position, starts, ends)
        gross = position * following
        strategies[name] = _strategy(name, signal, gross, traded, forward, costs, periods_a_year, horizon)
    return Backtest(
        times=calls["open_time"],
        strategies=strategies,
        costs=costs,
        horizon=horizon,
        interval=interval,
        thresholds=thresholds,
        candles=len(calls),
    )


def net_returns(
    up_probability: np.ndarray, next_return: np.ndarray, costs: TradingCosts, horizon: int = 1
) -> np.ndarray:
    """Per-candle net returns of acting on every call long/short: what the gate compares when it
    judges models by money instead of log loss."""
    position = held_positions(signals(up_probability, "long_short"), horizon)
    traded = _traded(position, np.array([0]), np.array([len(position)]))
    return position * np.nan_to_num(np.asarray(next_return, dtype="float64")) - costs.side * traded


def _traded(position: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Capital traded at each candle: the change of position, each block opened from flat and its
    last position closed at its last candle."""
    traded = np.abs(np.diff(position, prepend=0.0))
    traded[starts] = np.abs(position[starts])
    if len(position):
        traded[ends - 1] += np.abs(position[ends - 1])
    return traded


def _strategy(
    name: str,
    signal: np.ndarray,
    gross: np.ndarray,
    traded: np.ndarray,
    forward: np.ndarray,
    costs: TradingCosts,
    periods_a_year: float,
    horizon: int,
) -> StrategyResult:
    net = gross - costs.side * traded
    acted = signal != 0
    hits = (signal * forward)[acted & np.isfinite(forward)]
    hit_rate = float(np.mean(hits > 0)) if len(hits) else math.nan
    turnover = float(traded.sum())
    cost_paid = float((costs.side * traded).sum())
    moves = np.abs(forward[acted & np.isfinite(forward)])
    # A call is a 1/horizon tranche: its full-capital cost is horizon times its share of the costs.
    cost_per_call = cost_paid * horizon / int(acted.sum()) if acted.any() else math.nan
    mean_move = float(moves.mean()) if len(moves) else math.nan
    return StrategyResult(
        name=name,
        gross=_performance(gross, traded, 0.0, hit_rate, int(acted.sum()), periods_a_year),
        net=_performance(net, traded, cost_paid, hit_rate, int(acted.sum()), periods_a_year),
        break_even_side_bps=float(gross.sum() / turnover / BPS) if turnover > 0 else math.nan,
        break_even_hit_rate=0.5 + cost_per_call / (2 * mean_move) if mean_move > 0 else math.nan,
        mean_gross_bps=float(gross.mean() / BPS) if len(gross) else math.nan,
        gross_equity=np.cumprod(1 + gross),
        net_equity=np.cumprod(1 + net),
        net_returns=net,
    )


def _performance(
    returns: np.ndarray, traded: np.ndarray, cost_paid: float, hit_rate: float, calls: int, periods_a_year: float
) -> Performance:
    equity = np.cumprod(1 + returns)
    total = float(equity[-1] - 1) if len(equity) else 0.0
    years = len(returns) / periods_a_year
    std = float(returns.std()) if len(returns) else 0.0
    peaks = np.maximum.accumulate(np.concatenate([[1.0], equity]))
    return Performance(
        total_return=total,
        annualised_return=_annualised(total, years),
        sharpe=float(returns.mean() / std * math.sqrt(periods_a_year)) if std > 0 else 0.0,
        max_drawdown=float(np.max(1 - np.concatenate([[1.0], equity]) / peaks)),
        turnover=float(traded.sum()),
        trades=int(np.count_nonzero(traded)),
        hit_rate=hit_rate,
        calls=calls,
        cost_paid=cost_paid,
    )


def _annualised(total: float, years: float) -> float:
    """The yearly return that compounds to ``total`` over ``years``; inf when a short, lucky
    backtest compounds past what a float holds (a few weeks say little about a year)."""
    if years <= 0 or total <= -1:
        return -1.0
    with np.errstate(over="ignore"):
        return float(np.expm1(np.log1p(total) / years))


def verdict(backtest: Backtest) -> str:
    """One sentence from the numbers: does any strategy on the model's calls make money after costs?"""
    side, round_trip = backtest.costs.side_bps, backtest.costs.round_trip_bps
    unit = "a candle" if backtest.interval != "1m" else "a minute"

    def edge(name: str) -> str:
        return (
            f"the edge of {STRATEGY_NAMES[name]} is {backtest.strategies[name].mean_gross_bps:.2f} bps {unit} "
            f"against a cost of {round_trip:g} bps per round trip"
        )

    trading = {name: backtest.strategies[name] for name in MODEL_STRATEGIES if backtest.strategies[name].net.calls}
    idle = [name for name in MODEL_STRATEGIES if name not in trading]
    idle_note = (
        f" ({' and '.join(STRATEGY_NAMES[name] for name in idle)} never traded: no threshold paid for its costs "
        "on the training blocks)"
        if idle
        else ""
    )
    winners = {name: result for name, result in trading.items() if result.net.total_return > 0}
    if not winners:
        subject = "every strategy that trades the model's calls" if idle else "every strategy on the model's calls"
        return f"After {side:g} bps a side, {subject} loses money{idle_note}; {edge('long_short')}."
    best_name, best = max(winners.items(), key=lambda item: item[1].net.total_return)
    hold = backtest.strategies["buy_and_hold"].net.total_return
    return (
        f"After {side:g} bps a side, {STRATEGY_NAMES[best_name]} makes money: {best.net.total_return:+.2%} net "
        f"over {backtest.candles} candles against {hold:+.2%} for buy and hold{idle_note}; {edge(best_name)}."
    )


def out_of_sample_calls(out_of_sample: pd.DataFrame, features: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The walk-forward's out-of-sample calls with the returns they would have earned, read from
    the features' closes: ``forward_return`` over the horizon and ``next_return`` over a candle."""
    prices = features[["open_time", "close", "target"]].sort_values("open_time").reset_index(drop=True)
    prices["forward_return"] = horizon_returns(prices["close"], prices["target"], horizon)
    prices["next_return"] = next_returns(prices["close"])
    return out_of_sample.merge(
        prices[["open_time", "forward_return", "next_return"]], on="open_time", how="left", validate="one_to_one"
    )


def selective_thresholds(
    threshold_evidence: pd.DataFrame, features: pd.DataFrame, horizon: int, costs: TradingCosts
) -> dict[str, float]:
    """Each block's selective threshold, chosen on its own training block's held-back tail."""
    evidence = out_of_sample_calls(threshold_evidence, features, horizon)
    return {
        str(block): choose_threshold(rows["up_probability"], rows["forward_return"], costs)
        for block, rows in evidence.groupby("block", sort=False)
    }


def backtest_out_of_sample(
    out_of_sample: pd.DataFrame,
    threshold_evidence: pd.DataFrame,
    features: pd.DataFrame,
    costs: TradingCosts,
    horizon: int = 1,
    interval: str = "1m",
) -> Backtest:
    """The backtest of a walk-forward's out-of-sample calls (``WalkForwardResult.out_of_sample``
    and ``threshold_evidence``) on the closes of ``features``."""
    return run_backtest(
        out_of_sample_calls(out_of_sample, features, horizon),
        costs,
        horizon,
        interval,
        selective_thresholds(threshold_evidence, features, horizon, costs),
    )
