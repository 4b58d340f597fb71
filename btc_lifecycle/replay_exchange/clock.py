"""The replay clock: which instant of the candle file the replay exchange is living in.

Replay time runs at ``speed`` replay-seconds per wall-second from an anchor and can be set or
advanced at will (tests, simulations). The wall clock is injected so that tests never sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pandas as pd


def wall_seconds() -> float:
    # Monotonic: the replay must not jump when the machine's clock is adjusted.
    return time.monotonic()


class ReplayClock:
    """Replay "now" in epoch milliseconds; thread-safe."""

    def __init__(self, start_ms: int, speed: float = 1.0, wall: Callable[[], float] = wall_seconds) -> None:
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0, got {speed}")
        self._wall = wall
        self._lock = threading.Lock()
        self._anchor_ms = int(start_ms)
        self._anchor_wall = wall()
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> int:
        elapsed = self._wall() - self._anchor_wall
        return self._anchor_ms + int(elapsed * self._speed * 1000)

    def set_now(self, now_ms: int) -> None:
        """Jump to ``now_ms``; time keeps running from there at the same speed."""
        with self._lock:
            self._anchor_ms, self._anchor_wall = int(now_ms), self._wall()

    def advance(self, milliseconds: int) -> int:
        """Move replay time forward (or back, if negative); returns the new now."""
        with self._lock:
            now = self._now_locked() + int(milliseconds)
            self._anchor_ms, self._anchor_wall = now, self._wall()
            return self._anchor_ms

    def set_speed(self, speed: float) -> None:
        """Change the rate from this instant on; 0 freezes the replay."""
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0, got {speed}")
        with self._lock:
            self._anchor_ms, self._anchor_wall = self._now_locked(), self._wall()
            self._speed = float(speed)

    def state(self) -> dict:
        now = self.now_ms()
        return {
            "now": now,
            "now_iso": pd.Timestamp(now, unit="ms", tz="UTC").isoformat(),
            "speed": self._speed,
        }


def default_start_ms(candles: pd.DataFrame, interval_ms: int) -> int:
    """The end of the file: just after the last candle's close, so every candle is closed."""
    if candles.empty:
        raise ValueError("cannot start a replay on an empty candle frame")
    return epoch_ms(candles["open_time"].iloc[-1]) + interval_ms


def epoch_ms(moment: pd.Timestamp | str) -> int:
    """Epoch milliseconds of a time; naive times and ISO strings without offset are UTC."""
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value // 1_000_000)
