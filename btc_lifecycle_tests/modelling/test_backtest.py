"""The backtest: what the model's calls would have earned, before and after costs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.modelling.backtest import (
    BPS,
    FREE,
    NEVER,
    STRATEGIES,
    STRATEGY_NAMES,
    TradingCosts,
    backtest_out_of_sample,
    choose_threshold,
    held_positions,
    horizon_returns,
    net_returns,
    next_returns,
    run_backtest,
    selective_thresholds,
    signals,
)
from btc_lifecycle.modelling.features import LONGEST_WINDOW, compute_features
from btc_lifecycle.modelling.walk_forward import WalkForwardConfig, train_walk_forward
from btc_lifecycle_tests.modelling.conftest import FAST_CONFIG, mean_reverting_candles

MOVE = 30 * BPS
TEN_BPS = TradingCosts(taker_fee_bps=10.0)


def planted_edge(minutes: int, accuracy: float, switch_probability: float = 0.02, seed: int = 5):
    """Synthetic candles that move exactly 30 bps a minute, and calls right on exactly
    ``accuracy`` of the minutes. Calls hold their direction for about 1/switch_probability minutes.

    Returns the features (``open_time``, ``close``, ``target``) and the out-of-sample calls.
    """
    rng = np.random.default_rng(seed)
    switches = rng.random(minutes) < switch_probability
    call = np.where(np.cumsum(switches) % 2 == 0, 1.0, -1.0)
    right = np.zeros(minutes, dtype=bool)
    right[rng.permutation(minutes)[: round(accuracy * minutes)]] = True
    move = np.where(right, call, -call) * MOVE  # the candle after each call
    close = 30_000 * np.cumprod(np.concatenate([[1.0], 1 + move]))
    times = pd.date_range("2024-01-01", periods=minutes + 1, freq="1min", tz="UTC")
    features = pd.DataFrame(
        {
            "open_time": times,
            "close": close,
            "target": pd.array([*(close[1:] > close[:-1]).astype(int), pd.NA], dtype="Int8"),
        }
    )
    calls = pd.DataFrame(
        {
            "open_time": times[:-1],
            "block": "fold 0",
            "target": (move > 0).astype(int),
            "up_probability": 0.5 + 0.1 * call,
        }
    )
    return features, calls


def calls_of(minutes: int, next_return, up_probability=0.9, forward_return=0.0, block="fold 0") -> pd.DataFrame:
    """``minutes`` out-of-sample calls, one a minute: what ``run_backtest`` reads."""
    return pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=minutes, freq="1min", tz="UTC"),
            "block": block,
            "up_probability": up_probability,
            "forward_return": forward_return,
            "next_return": next_return,
        }
    )


def no_evidence() -> pd.DataFrame:
    return pd.DataFrame({"open_time": pd.Series([], dtype="datetime64[ns, UTC]"), "up_probability": [], "block": []})


def test_a_planted_edge_of_sixty_percent_on_thirty_bps_moves_pays_for_ten_bps_a_side():
    features, calls = planted_edge(20_000, accuracy=0.6)
    result = backtest_out_of_sample(calls, no_evidence(), features, TEN_BPS).strategies["long_short"]
    assert result.net.hit_rate == pytest.approx(0.6)
    # 0.2 x 30 bps a minute gross; the calls flip about every 50 minutes, each flip trading twice.
    assert result.net_returns.sum() + result.net.cost_paid == pytest.approx(20_000 * 0.2 * MOVE)
    assert result.net.total_return > 0
    assert result.break_even_side_bps > 10
    assert result.break_even_hit_rate < 0.6


def test_without_an_edge_the_loss_is_the_cost_paid():
    features, calls = planted_edge(20_000, accuracy=0.5)
    result = backtest_out_of_sample(calls, no_evidence(), features, TEN_BPS).strategies["long_short"]
    assert result.net.hit_rate == pytest.approx(0.5)
    assert result.net.cost_paid > 0
    assert result.net_returns.sum() == pytest.approx(-result.net.cost_paid, abs=1e-9)
    assert result.net.total_return < 0
    assert result.break_even_side_bps == pytest.approx(0.0, abs=1e-9)


def test_the_same_calls_without_costs_earn_the_gross_return():
    features, calls = planted_edge(5_000, accuracy=0.6)
    with_costs = backtest_out_of_sample(calls, no_evidence(), features, TEN_BPS).strategies["long_short"]
    free = backtest_out_of_sample(calls, no_evidence(), features, FREE).strategies["long_short"]
    assert free.net.total_return == pytest.approx(with_costs.gross.total_return)
    assert free.net.cost_paid == 0
    assert with_costs.net.total_return < with_costs.gross.total_return


def test_every_call_pays_four_times_the_average_move_when_each_minute_is_a_round_trip():
    # Calls that flip every minute: each minute trades twice the capital, 20 bps at 10 a side.
    features, calls = planted_edge(1_000, accuracy=0.5, switch_probability=1.0)
    result = backtest_out_of_sample(calls, no_evidence(), features, TEN_BPS).strategies["long_short"]
    assert result.net.turnover == pytest.approx(2 * 1_000)  # 1 to open, 2 a flip, 1 to close
    assert result.net.cost_paid == pytest.approx(result.net.turnover * 10 * BPS)


def test_buy_and_hold_and_flat_sit_beside_the_strategies_on_the_same_minutes():
    features, calls = planted_edge(2_000, accuracy=0.55)
    backtest = backtest_out_of_sample(calls, no_evidence(), features, TEN_BPS)
    assert set(backtest.strategies) == set(STRATEGIES)
    hold, flat = backtest.strategies["buy_and_hold"], backtest.strategies["flat"]
    market = features["close"].iloc[-1] / features["close"].iloc[0] - 1
    assert hold.gross.total_return == pytest.approx(market)
    assert hold.net.turnover == 2 and hold.net.trades == 2
    assert (flat.net.total_return, flat.net.turnover, flat.net.trades, flat.net.calls) == (0.0, 0.0, 0, 0)
    table = backtest.table()
    assert len(table) == 2 * len(STRATEGIES)
    assert set(table["costs"]) == {"gross", "net"}


def test_positions_are_held_for_the_horizon_as_overlapping_tranches():
    assert held_positions(np.array([1.0, 1.0, -1.0, 0.0, 0.0, 0.0]), 3).tolist() == pytest.approx(
        [1 / 3, 2 / 3, 1 / 3, 0.0, -1 / 3, 0.0]
    )
    assert held_positions(np.array([1.0, -1.0, 0.0]), 1).tolist() == [1.0, -1.0, 0.0]


def test_each_block_opens_from_flat_and_closes_its_last_position():
    calls = calls_of(4, 0.0, up_probability=[0.6, 0.6, 0.4, 0.4], block=["fold 0", "fold 0", "fold 1", "fold 1"])
    result = run_backtest(calls, TEN_BPS).strategies["long_short"]
    # long in, long out, short in, short out: four sides of one unit each.
    assert result.net.turnover == 4
    assert result.net.cost_paid == pytest.approx(4 * 10 * BPS)


def test_the_annualised_return_counts_every_minute_of_a_year():
    minutes = 525_600
    calls = calls_of(minutes, 1e-6)
    hold = run_backtest(calls, FREE).strategies["buy_and_hold"]
    assert hold.gross.annualised_return == pytest.approx(hold.gross.total_return)


def test_the_maximum_drawdown_is_the_largest_fall_from_a_peak():
    calls = calls_of(4, [0.10, -0.20, 0.05, 0.0])
    hold = run_backtest(calls, FREE).strategies["buy_and_hold"]
    assert hold.gross.max_drawdown == pytest.approx(0.20)


def test_strategies_read_calls_as_directions():
    probability = np.array([0.2, 0.5, 0.55, 0.9])
    assert signals(probability, "long_short").tolist() == [-1, 0, 1, 1]
    assert signals(probability, "long_flat").tolist() == [0, 0, 1, 1]
    assert signals(probability, "selective", 0.5).tolist() == [-1, 0, 0, 1]
    assert signals(probability, "selective", NEVER).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="unknown strategy 'martingale'"):
        signals(probability, "martingale")


def test_the_selective_threshold_keeps_only_calls_that_paid_a_round_trip():
    probability = np.array([0.52, 0.48, 0.9, 0.1, 0.51])
    # The confident calls moved 50 bps their way; the timid ones 5 bps the wrong way.
    forward = np.array([-5, 5, 50, -50, -5]) * BPS
    threshold = choose_threshold(probability, forward, TEN_BPS)
    assert 0.04 <= threshold < 0.8
    assert choose_threshold(probability, forward / 10, TEN_BPS) == NEVER  # 5 bps never pays 20
    assert choose_threshold(np.array([]), np.array([]), TEN_BPS) == NEVER


def test_horizon_returns_reach_the_close_the_target_compares_and_stop_where_it_is_unknown():
    close = np.array([100.0, 101.0, 102.0, 99.0, 100.0])
    target = pd.array([1, 0, 0, pd.NA, pd.NA], dtype="Int8")
    returns = horizon_returns(close, target, 2)
    assert returns[:3] == pytest.approx([0.02, 99 / 101 - 1, 100 / 102 - 1])
    assert np.isnan(returns[3:]).all()
    assert next_returns(close).tolist() == pytest.approx([0.01, 1 / 101, -3 / 102, 1 / 99, 0.0])


def test_costs_out_of_range_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="slippage_bps"):
        TradingCosts(slippage_bps=-1)
    with pytest.raises(ValueError, match="fills"):
        TradingCosts(fills="limit")
    assert TradingCosts(maker_fee_bps=2, fills="maker", slippage_bps=1).round_trip_bps == 6


def test_the_gate_net_returns_charge_each_flip():
    returns = net_returns(np.array([0.6, 0.4, 0.4]), np.array([0.01, -0.01, 0.0]), TEN_BPS)
    assert returns.tolist() == pytest.approx([0.01 - 10 * BPS, 0.01 - 20 * BPS, -10 * BPS])


# The selective threshold is chosen on evidence the model did not fit and the block it trades
# never reaches: its training block's held-back tail.


@pytest.fixture(scope="module")
def learnable():
    features = compute_features(mean_reverting_candles(12_000), "1m", horizon=5)
    config = WalkForwardConfig(**{**FAST_CONFIG.__dict__, "embargo_candles": LONGEST_WINDOW + 5})
    return features, train_walk_forward(features, config), config


def test_each_blocks_threshold_evidence_ends_an_embargo_before_the_block(learnable):
    features, result, config = learnable
    embargo = pd.Timedelta(minutes=config.embargo_candles)
    calls = result.out_of_sample.groupby("block")["open_time"].min()
    evidence = result.threshold_evidence.groupby("block")["open_time"].max()
    assert set(evidence.index) == set(calls.index) == {"fold 0", "fold 1", "fold 2", "held-out"}
    for block, first_call in calls.items():
        # the evidence's last horizon return is known before the block's first call
        assert evidence[block] + pd.Timedelta(minutes=5) < first_call
        assert evidence[block] <= first_call - embargo


def test_scrambling_a_blocks_prices_leaves_its_threshold_unchanged(learnable):
    features, result, _ = learnable
    thresholds = selective_thresholds(result.threshold_evidence, features, 5, TEN_BPS)
    block = result.out_of_sample.loc[result.out_of_sample["block"] == "fold 2", "open_time"]
    scrambled = features.copy()
    inside = scrambled["open_time"].between(block.min(), block.max())
    scrambled.loc[inside, "close"] = np.random.default_rng(0).permutation(scrambled.loc[inside, "close"].to_numpy())
    assert selective_thresholds(result.threshold_evidence, scrambled, 5, TEN_BPS)["fold 2"] == thresholds["fold 2"]
    free = selective_thresholds(result.threshold_evidence, features, 5, FREE)
    assert any(math.isfinite(value) for value in free.values())  # the evidence is not empty


def test_a_short_lucky_backtest_annualises_to_infinity_instead_of_crashing():
    calls = calls_of(20, 0.01, forward_return=0.01)
    hold = run_backtest(calls, FREE).strategies["buy_and_hold"]
    assert hold.gross.total_return == pytest.approx(1.01**20 - 1)
    assert hold.gross.annualised_return == math.inf


def test_the_verdict_names_the_winner_and_its_own_edge():
    features, calls = planted_edge(20_000, accuracy=0.6)
    backtest = backtest_out_of_sample(calls, no_evidence(), features, TEN_BPS)
    best = max(("long_short", "long_flat"), key=lambda name: backtest.strategies[name].net.total_return)
    result = backtest.strategies[best]
    assert backtest.verdict.startswith(f"After 10 bps a side, {STRATEGY_NAMES[best]} makes money: ")
    assert f"{result.net.total_return:+.2%} net over 20000 candles" in backtest.verdict
    assert f"the edge of {STRATEGY_NAMES[best]} is {result.mean_gross_bps:.2f} bps a minute" in backtest.verdict
    assert "selective (long/short when the edge beats the cost) never traded" in backtest.verdict


def test_the_verdict_says_every_strategy_loses_when_none_pays_its_costs():
    features, calls = planted_edge(5_000, accuracy=0.5)
    backtest = backtest_out_of_sample(calls, no_evidence(), features, TEN_BPS)
    edge = backtest.strategies["long_short"].mean_gross_bps
    assert backtest.verdict == (
        "After 10 bps a side, every strategy that trades the model's calls loses money (selective (long/short "
        "when the edge beats the cost) never traded: no threshold paid for its costs on the training blocks); "
        f"the edge of long/short on every call is {edge:.2f} bps a minute against a cost of 20 bps per round trip."
    )
