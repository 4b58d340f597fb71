"""The generated candles: a reproducible random walk and a thin venue printed from it.

Reproducible to the cent: the same arguments give the same frame on every machine, which the
benchmarks, the demo and every seeded test rely on. Pinned by column sums (a changed constant of
the random walk or the thin venue moves them by far more than the tolerance) and exact counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.candles import OHLCV_COLUMNS, validate_candles
from btc_lifecycle.domain.synthetic import _trade_rate, synthetic_candles, thin_venue_candles, without_minutes

SUMMED_COLUMNS = ("open", "high", "low", "close", "volume")


def fingerprint(frame: pd.DataFrame) -> dict[str, object]:
    return {
        **{name: pytest.approx(float(frame[name].sum()), rel=1e-9) for name in SUMMED_COLUMNS},
        "rows": len(frame),
        "first": str(frame["open_time"].iloc[0]),
        "last": str(frame["open_time"].iloc[-1]),
        "ties": int((frame["close"].diff() == 0).sum()),
    }


DEFAULT_500 = {
    "open": 14600695.45,
    "high": 14609088.48,
    "low": 14592719.63,
    "close": 14599147.89,
    "volume": 1494.276869,
    "rows": 500,
    "first": "2024-01-01 00:00:00+00:00",
    "last": "2024-01-01 08:19:00+00:00",
    "ties": 11,
}


def test_the_default_random_walk_is_reproducible():
    frame = synthetic_candles(500)
    assert fingerprint(frame) == DEFAULT_500
    assert frame["open"].iloc[0] == 30_000.0 and frame["close"].iloc[0] == 30_000.03
    assert frame["open"].iloc[1:].tolist() == frame["close"].iloc[:-1].tolist()


def every_parameter_set():
    """A walk with every parameter away from its default: one that is ignored shows in the sums."""
    return synthetic_candles(
        300,
        start="2024-05-01 12:00",
        interval="5m",
        seed=3,
        start_price=100.0,
        volatility=0.01,
        tick=0.5,
        tie_share=0.3,
    )


def test_every_parameter_of_the_walk_is_used():
    frame = every_parameter_set()
    assert fingerprint(frame) == {
        "open": 34340.0,
        "high": 34583.77,
        "low": 34176.96,
        "close": 34371.5,
        "volume": 913.420098,
        "rows": 300,
        "first": "2024-05-01 12:00:00+00:00",  # a naive start is UTC
        "last": "2024-05-02 12:55:00+00:00",
        "ties": 141,  # the tie share, and a 0.5 tick on a price near 100
    }
    assert frame["open"].iloc[0] == 100.0
    assert (np.round(frame["close"] / 0.5) * 0.5 == frame["close"]).all()  # on the tick


def test_a_start_in_another_zone_is_converted_to_utc():
    frame = synthetic_candles(3, start=pd.Timestamp("2024-05-01 14:00", tz="Europe/Paris"))
    assert str(frame["open_time"].iloc[0]) == "2024-05-01 12:00:00+00:00"


def test_the_default_thin_venue_is_reproducible():
    assert fingerprint(thin_venue_candles(synthetic_candles(500))) == {
        "open": 5349255.41,
        "high": 5349446.7,
        "low": 5349010.39,
        "close": 5349194.89,
        "volume": 152.88185501,
        "rows": 183,
        "first": "2024-01-01 00:01:00+00:00",
        "last": "2024-01-01 08:09:00+00:00",
        "ties": 0,
    }


def test_every_parameter_of_the_thin_venue_is_used():
    liquid = every_parameter_set()
    thin = thin_venue_candles(liquid, no_trade_share=0.3, seed=4, interval="5m", price_decimals=1)
    assert fingerprint(thin) == {
        "open": 26002.78,
        "high": 26048.28,
        "low": 25972.94,
        "close": 26015.9,
        "volume": 350.4857056,
        "rows": 226,
        "first": "2024-05-01 12:00:00+00:00",
        "last": "2024-05-02 12:55:00+00:00",
        "ties": 14,
    }


def test_thin_venue_prices_stay_inside_the_liquid_range_and_volume_is_positive():
    liquid = synthetic_candles(2_000, seed=5).set_index("open_time")
    thin = thin_venue_candles(synthetic_candles(2_000, seed=5), seed=6).set_index("open_time")
    matched = liquid.loc[thin.index]
    assert (thin["high"] <= matched["high"] + 1e-9).all() and (thin["low"] >= matched["low"] - 1e-9).all()
    assert (thin["low"] <= thin[["open", "close"]].min(axis=1)).all()
    assert (thin["high"] >= thin[["open", "close"]].max(axis=1)).all()
    assert (thin["volume"] > 0).all()
    # About 62 % of minutes get no trade by default.
    assert 0.55 < 1 - len(thin) / len(liquid) < 0.69


@pytest.mark.parametrize("share, seed", [(0.55, 1), (0.62, 2), (0.70, 3)])
def test_a_thin_venue_misses_about_the_asked_share_of_minutes(share, seed):
    liquid = synthetic_candles(6_000, seed=seed)
    thin = thin_venue_candles(liquid, no_trade_share=share, seed=seed)
    assert abs((1 - len(thin) / len(liquid)) - share) < 0.03
    validate_candles(thin, "thin venue")
    assert set(thin["open_time"]) <= set(liquid["open_time"])


def test_a_thin_venues_candles_are_rebuilt_from_its_own_trades_inside_the_liquid_range():
    liquid = synthetic_candles(3_000, seed=8).set_index("open_time")
    thin = thin_venue_candles(liquid.reset_index(), seed=8).set_index("open_time")
    same_minutes = liquid.loc[thin.index]
    assert (thin["high"] <= same_minutes["high"] + 1e-9).all()
    assert (thin["low"] >= same_minutes["low"] - 1e-9).all()
    assert not np.allclose(thin["close"], same_minutes["close"])  # its last trade, not the liquid close
    assert (thin["volume"] > 0).all()


def test_a_thin_venue_is_the_same_for_the_same_seed_and_differs_for_another():
    liquid = synthetic_candles(2_000, seed=9)
    first, again = thin_venue_candles(liquid, seed=5), thin_venue_candles(liquid, seed=5)
    pd.testing.assert_frame_equal(first, again)
    other = thin_venue_candles(liquid, seed=6)
    assert not first["open_time"].equals(other["open_time"])
    assert list(first.columns)[: len(OHLCV_COLUMNS) + 1] == ["open_time", *OHLCV_COLUMNS]


@pytest.mark.parametrize("share", [0, 1, -0.1, 1.5])
def test_a_no_trade_share_outside_0_and_1_is_refused(share):
    with pytest.raises(ValueError, match=rf"^no_trade_share must be between 0 and 1, got {share}$"):
        thin_venue_candles(synthetic_candles(10), no_trade_share=share)


def test_a_venue_without_volume_still_trades_at_the_requested_share():
    liquid = synthetic_candles(3_000, seed=8).assign(volume=0.0)
    thin = thin_venue_candles(liquid, no_trade_share=0.5, seed=2)
    assert 0.45 < 1 - len(thin) / len(liquid) < 0.55
    assert (thin["volume"] > 0).all()


@pytest.mark.parametrize("share", [0.05, 0.62, 0.95])
def test_the_trade_rate_leaves_the_requested_share_of_minutes_without_a_trade(share):
    weight = np.random.default_rng(1).gamma(2.0, 1.5, 1_000)
    weight /= weight.mean()
    rate = _trade_rate(weight, share)
    assert np.mean(np.exp(-rate * weight)) == pytest.approx(share, abs=1e-9)


def test_without_minutes_drops_exactly_those_positions_and_renumbers():
    frame = synthetic_candles(6)
    rest = without_minutes(frame, [1, 4])
    assert rest["open_time"].tolist() == frame["open_time"].iloc[[0, 2, 3, 5]].tolist()
    assert list(rest.index) == [0, 1, 2, 3]


def test_without_minutes_adds_no_index_column():
    frame = synthetic_candles(6)
    assert list(without_minutes(frame, [1, 4]).columns) == list(frame.columns)


def liquid_with_volumes(volumes: np.ndarray) -> pd.DataFrame:
    frame = synthetic_candles(len(volumes), seed=3)
    frame["volume"] = volumes
    return frame


def test_a_thin_venue_trades_more_in_busier_minutes_whatever_the_volume_unit():
    volumes = np.tile([0.1, 0.9], 1_000)  # mean 0.5: below one unit
    thin = thin_venue_candles(liquid_with_volumes(volumes), seed=5)
    busy = pd.Series(volumes, index=synthetic_candles(len(volumes), seed=3)["open_time"])
    traded = busy.loc[thin["open_time"]]
    assert (traded == 0.9).sum() > 3 * (traded == 0.1).sum()


def test_thin_trade_sizes_scale_with_the_liquid_volume_below_one_unit():
    volumes = np.full(2_000, 0.5)
    thin = thin_venue_candles(liquid_with_volumes(volumes), seed=5)
    # About 0.48 trades a minute of 0.5 / 4 each: an eighth of the liquid volume, not all of it.
    assert 0.05 < thin["volume"].sum() / volumes.sum() < 0.25


def test_trade_sizes_come_from_the_minutes_that_had_volume():
    volumes = np.tile([0.0] * 11 + [2.0] * 9, 100)  # most minutes without volume, fewer than the share
    thin = thin_venue_candles(liquid_with_volumes(volumes), seed=5)
    assert len(thin) > 0 and (thin["volume"] > 0).all()


def test_without_liquid_volume_a_trade_has_a_size_of_one_on_average():
    thin = thin_venue_candles(liquid_with_volumes(np.zeros(2_000)), seed=5)
    # A traded minute holds 1.26 trades on average at the default share (0.48 / (1 - 0.62)).
    assert 1.0 < thin["volume"].mean() < 1.6


def test_thin_volumes_are_rounded_to_eight_decimals():
    thin = thin_venue_candles(synthetic_candles(500, seed=2), seed=5)
    assert (thin["volume"] == thin["volume"].round(8)).all()
    assert not (thin["volume"] == thin["volume"].round(7)).all()
