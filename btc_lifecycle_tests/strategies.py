"""Hypothesis strategies for valid candle frames: on the interval grid, with gaps and ties; and
gappy frames with a fill limit at the edges of their gaps (the gap policy's cases)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from btc_lifecycle.domain.candles import EXTRA_COLUMNS, complete_candle_frame, interval_ms, validate_candles

TICK = 0.5  # a price tick exactly representable in binary: equal closes are exactly equal
BASE_TICKS = 60_000  # 30 000 USD
START = pd.Timestamp("2024-01-01T00:00:00Z")


@st.composite
def candle_frames(
    draw: st.DrawFn,
    min_size: int = 1,
    max_size: int = 40,
    interval: str = "1m",
    max_gap: int = 90,
    with_extras: bool = False,
    start: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A valid candle frame: sorted open times on the ``interval`` grid with random gaps of up to
    ``max_gap`` missing candles, closes on a tick walk with ties, OHLC consistent, volume >= 0."""
    size = draw(st.integers(min_size, max_size))
    # How rare gaps are in this frame: from most candles to almost none.
    gap_odds = draw(st.integers(1, 60))
    candles = draw(
        st.lists(
            st.tuples(
                st.integers(0, gap_odds),  # 0: a gap before this candle
                st.integers(1, max_gap),  # its missing candles
                st.integers(-2, 2),  # close move in ticks: 0 is a tie
                st.integers(-1, 1),  # open against the previous close
                st.integers(0, 3),  # upper wick
                st.integers(0, 3),  # lower wick
                st.integers(0, 40),  # volume in quarters: 0 is a minute without trades
            ),
            min_size=size,
            max_size=size,
        )
    )
    first = start if start is not None else START + pd.Timedelta(minutes=draw(st.integers(0, 2 * 1440)))
    step_ms = interval_ms(interval)
    offsets, closes, opens, highs, lows, volumes = [], [], [], [], [], []
    offset, close = 0, BASE_TICKS
    for index, (gap_roll, missing, move, open_move, up, down, volume) in enumerate(candles):
        if index:
            offset += 1 + (missing if gap_roll == 0 else 0)
        open_ = close + open_move
        close = close + move
        offsets.append(offset)
        opens.append(open_)
        closes.append(close)
        highs.append(max(open_, close) + up)
        lows.append(min(open_, close) - down)
        volumes.append(volume / 4)
    frame = pd.DataFrame(
        {
            "open_time": first + pd.to_timedelta(np.array(offsets, dtype="int64") * step_ms, unit="ms"),
            "open": np.array(opens, dtype="float64") * TICK,
            "high": np.array(highs, dtype="float64") * TICK,
            "low": np.array(lows, dtype="float64") * TICK,
            "close": np.array(closes, dtype="float64") * TICK,
            "volume": np.array(volumes, dtype="float64"),
        }
    )
    if with_extras:
        # Some sources lack the Binance extras: NaN (NULL in the store) next to real values.
        extras = draw(
            st.lists(
                st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=len(EXTRA_COLUMNS), max_size=4),
                min_size=size,
                max_size=size,
            )
        )
        values = np.array([[np.nan if v is None else float(v) for v in row] for row in extras], dtype="float64")
        frame = complete_candle_frame(frame, interval, extras=values)
    else:
        frame = complete_candle_frame(frame, interval)
    validate_candles(frame, "generated candles")
    return frame


MINUTE = pd.Timedelta(minutes=1)
# A fill limit: 0 (the default, no fill) or any up to an hour.
fill_limits = st.one_of(st.just(0), st.integers(1, 60))


def stored_gaps(candles: pd.DataFrame) -> list[tuple[pd.Timestamp, pd.Timestamp, int]]:
    """(previous stored minute, next stored minute, minutes missing between them), written out."""
    times = list(candles["open_time"])
    return [(a, b, (b - a) // MINUTE - 1) for a, b in zip(times, times[1:], strict=False) if b - a > MINUTE]


@st.composite
def gappy_cases(draw: st.DrawFn, min_size: int = 1) -> tuple[pd.DataFrame, int]:
    """One-minute candles with gaps of up to 90 minutes and a fill limit: none, any, or exactly a
    stored gap's length or one less (the edges)."""
    candles = draw(candle_frames(min_size=min_size, max_size=250, max_gap=90))
    edges = sorted({n for _, _, missing in stored_gaps(candles) for n in (missing, missing - 1)})
    return candles, draw(st.one_of(fill_limits, st.sampled_from(edges)) if edges else fill_limits)
