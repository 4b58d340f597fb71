"""Binance's kline intervals, served from a finer candle file: UTC buckets, aggregated as Binance does.

Every interval is a run of buckets aligned on UTC: a fixed length counted from the Unix epoch for
1m to 3d (a 3d bucket opens where ``open_time % 259_200_000 == 0``), Monday 00:00 for 1w, the
1st of the month 00:00 for 1M. A bucket's candle has the open of its first candle, the highest
high, the lowest low, the close of its last candle, the volumes, trade counts and taker volumes
summed, and closes 1 ms before the bucket ends. A bucket without a candle in the file is not
served, like a minute missing from the file. The bucket the replay clock is in is the forming
candle: the candles opened by now, the last of them partial (``KlineSeries.forming_values``).
"""

from __future__ import annotations

import numpy as np

from btc_lifecycle.domain.candles import INTERVAL_MS
from btc_lifecycle.replay_exchange.binance_shapes import BINANCE_INTERVALS, KlineSeries, format_rows, kline_rows

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
FIRST_MONDAY_MS = 4 * DAY_MS  # 1970-01-05T00:00Z: weeks are counted from the epoch's first Monday
# Buckets of a fixed length, counted from the epoch (1w and 1M are calendar buckets).
FIXED_MS = {**INTERVAL_MS, "3d": 3 * DAY_MS}
CALENDAR = ("1w", "1M")


def bucket_opens(times_ms: np.ndarray, interval: str) -> np.ndarray:
    """The open time (epoch ms) of the ``interval`` bucket each of ``times_ms`` falls in."""
    times_ms = np.asarray(times_ms, dtype="int64")
    if interval == "1M":
        return times_ms.astype("datetime64[ms]").astype("datetime64[M]").astype("datetime64[ms]").astype("int64")
    if interval == "1w":
        return (times_ms - FIRST_MONDAY_MS) // WEEK_MS * WEEK_MS + FIRST_MONDAY_MS
    length = FIXED_MS[interval]
    return times_ms // length * length


def bucket_ends(opens_ms: np.ndarray, interval: str) -> np.ndarray:
    """The end (exclusive, epoch ms) of the buckets that open at ``opens_ms``."""
    opens_ms = np.asarray(opens_ms, dtype="int64")
    if interval == "1M":
        next_month = opens_ms.astype("datetime64[ms]").astype("datetime64[M]") + 1
        return next_month.astype("datetime64[ms]").astype("int64")
    return opens_ms + (WEEK_MS if interval == "1w" else FIXED_MS[interval])


def servable_intervals(file_interval: str) -> tuple[str, ...]:
    """The Binance intervals whose every bucket is a run of whole candles of ``file_interval``.

    A candle of length ``step`` opens on a multiple of ``step``; a bucket boundary must be one:
    the fixed lengths that are multiples of the step, and weeks and months when the step divides
    a day (both start at midnight). 1s is finer than any file and never servable.
    """
    step = FIXED_MS[file_interval]
    return tuple(
        interval
        for interval in BINANCE_INTERVALS
        if (interval in CALENDAR and DAY_MS % step == 0) or (interval in FIXED_MS and FIXED_MS[interval] % step == 0)
    )


def aggregate(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Kline values (open, high, low, close, volume, quote volume, trades, taker base, taker
    quote) of the runs of ``values`` rows that begin at each of ``starts``: one row per run."""
    lasts = np.append(starts[1:], len(values)) - 1
    out = np.empty((len(starts), values.shape[1]))
    out[:, 0] = values[starts, 0]
    out[:, 1] = np.maximum.reduceat(values[:, 1], starts)
    out[:, 2] = np.minimum.reduceat(values[:, 2], starts)
    out[:, 3] = values[lasts, 3]
    out[:, 4:] = np.add.reduceat(values[:, 4:], starts, axis=0)
    return out


class IntervalSeries:
    """One symbol's klines at an interval coarser than its file, with ``KlineSeries.klines``'s
    semantics: inclusive bounds on open time, the latest ``limit`` without a start."""

    def __init__(self, candles: KlineSeries, interval: str) -> None:
        self.candles, self.interval = candles, interval
        buckets = bucket_opens(candles.open_ms, interval)
        # The file's candles are sorted, so each bucket is one run of rows: where the bucket changes.
        self.first = np.flatnonzero(np.concatenate([[True], buckets[1:] != buckets[:-1]]))
        self.open_ms = buckets[self.first]
        self.end_ms = bucket_ends(self.open_ms, interval)
        self.first_candle_ms = candles.open_ms[self.first]  # a bucket is visible once it has one
        self.values = aggregate(candles.values, self.first)

    def forming_values(self, index: int, now_ms: int) -> np.ndarray:
        """Bucket ``index`` as seen at ``now_ms``, inside it: its candles opened by now, the last
        one as far as it has formed."""
        first = int(self.first[index])
        visible = int(np.searchsorted(self.candles.open_ms, now_ms, side="right"))
        block = self.candles.values[first:visible]
        last = visible - 1
        if now_ms < self.candles.open_ms[last] + self.candles.step_ms:
            block = block.copy()
            block[-1] = self.candles.forming_values(last, now_ms)
        return aggregate(block, np.array([0]))[0]

    def klines(self, now_ms: int, start_ms: int | None, end_ms: int | None, limit: int) -> list:
        visible = int(np.searchsorted(self.first_candle_ms, now_ms, side="right"))
        low, high = kline_rows(self.open_ms, visible, start_ms, end_ms, limit)
        if low >= high:
            return []
        block = self.values[low:high]
        last = high - 1
        if now_ms < self.end_ms[last]:  # the replay clock is inside the last bucket: it is forming
            block = block.copy()
            block[-1] = self.forming_values(last, now_ms)
        return format_rows(self.open_ms[low:high], self.end_ms[low:high] - 1, block)

    def earlier_start(self, start_ms: int, candles: int) -> int:
        """A start time ``candles`` buckets before the first bucket from ``start_ms`` on (the
        ``overlap`` fault)."""
        index = int(np.searchsorted(self.open_ms, start_ms, side="left")) - candles
        return int(self.open_ms[index]) if index >= 0 else 0
