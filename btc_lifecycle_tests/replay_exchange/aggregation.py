"""Minute files with Binance's extras, and the klines every interval should show, computed with
pandas ``resample`` from the file: an aggregation independent of the replay exchange's own."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.synthetic import synthetic_candles

PRICES = ["open", "high", "low", "close"]
SUMS = ["volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume"]
# pandas' spelling of each Binance interval: left-closed buckets labelled by their start, 3d
# counted from the epoch, weeks from Monday, months from the 1st.
RULES = {
    "3m": ("3min", "start_day"),
    "5m": ("5min", "start_day"),
    "15m": ("15min", "start_day"),
    "30m": ("30min", "start_day"),
    "1h": ("1h", "start_day"),
    "2h": ("2h", "start_day"),
    "4h": ("4h", "start_day"),
    "6h": ("6h", "start_day"),
    "8h": ("8h", "start_day"),
    "12h": ("12h", "start_day"),
    "1d": ("1D", "start_day"),
    "3d": ("3D", "epoch"),
    "1w": ("W-MON", "start_day"),
    "1M": ("MS", "start_day"),
}


def minutes_with_extras(count: int, start: str, seed: int = 5) -> pd.DataFrame:
    """``count`` synthetic minutes from ``start`` with quote volume, trades and taker volumes."""
    frame = synthetic_candles(count, start=start, seed=seed)
    rng = np.random.default_rng(seed)
    frame["quote_volume"] = np.round(frame["volume"] * frame["close"] * rng.uniform(0.999, 1.001, count), 8)
    frame["trades"] = rng.integers(1, 500, count).astype("float64")
    taker_share = rng.uniform(0, 1, count)
    frame["taker_buy_base_volume"] = np.round(frame["volume"] * taker_share, 8)
    frame["taker_buy_quote_volume"] = np.round(frame["quote_volume"] * taker_share, 8)
    return frame


def resampled(minutes: pd.DataFrame, interval: str) -> pd.DataFrame:
    """The ``interval`` candles of ``minutes`` by pandas, with ``open_ms`` and ``close_ms``."""
    rule, origin = RULES[interval]
    columns = {"open": "first", "high": "max", "low": "min", "close": "last", "trades": "sum"}
    columns |= {name: "sum" for name in SUMS}
    bars = minutes.set_index("open_time").resample(rule, closed="left", label="left", origin=origin).agg(columns)
    counted = minutes.set_index("open_time")["open"].resample(rule, closed="left", label="left", origin=origin)
    bars = bars[counted.count().to_numpy() > 0]  # a bucket without a minute is no candle
    ends = bars.index + pd.tseries.frequencies.to_offset(rule)
    bars["open_ms"] = bars.index.as_unit("ms").asi8
    bars["close_ms"] = ends.as_unit("ms").asi8 - 1
    return bars.reset_index(drop=True)


def assert_klines_match(rows: list[list], bars: pd.DataFrame) -> None:
    """Binance kline rows, as served, equal pandas' candles."""
    assert [int(row[0]) for row in rows] == bars["open_ms"].tolist()
    assert [int(row[6]) for row in rows] == bars["close_ms"].tolist()
    for position, name in enumerate(PRICES, start=1):  # prices as Binance prints them
        assert [row[position] for row in rows] == [f"{price:.8f}" for price in bars[name]], name
    # Sums: the same numbers added in another order, printed with 8 decimals.
    for position, name in zip((5, 7, 9, 10), SUMS, strict=True):
        served = [float(row[position]) for row in rows]
        assert served == pytest.approx(bars[name].tolist(), rel=1e-11, abs=1e-8), name
    assert [int(row[8]) for row in rows] == bars["trades"].astype("int64").tolist()


def get(url: str) -> tuple[int, str, object]:
    """Status, Content-Type and parsed JSON (or text) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            status, kind, body = response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        status, kind, body = error.code, error.headers["Content-Type"], error.read()
    try:
        return status, kind, json.loads(body)
    except ValueError:
        return status, kind, body.decode()


def set_clock(base_url: str, now) -> None:
    moment = now if isinstance(now, int) else pd.Timestamp(now).isoformat()
    request = urllib.request.Request(
        base_url + "/replay/clock", data=json.dumps({"now": moment}).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()
