"""Hand-written one-minute candles for the quality checks' tests, at minutes from a fixed start."""

from __future__ import annotations

import json

import pandas as pd

from btc_lifecycle.domain.candles import complete_candle_frame
from btc_lifecycle.domain.quality import CheckOutcome

START = pd.Timestamp("2024-03-01T00:00:00Z")


def at(minute: int) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=minute)


def iso(minute: int) -> str:
    return at(minute).isoformat()


def candles(minutes: list[int], closes: list[float] | None = None, interval: str = "1m") -> pd.DataFrame:
    """Valid candles at ``START + minutes``: open at the previous close, a 1-wide wick each side."""
    closes = [float(c) for c in closes] if closes is not None else [100.0 + (i % 3) for i in range(len(minutes))]
    opens = [closes[0], *closes[:-1]]
    frame = pd.DataFrame(
        {
            "open_time": [at(m) for m in minutes],
            "open": opens,
            "high": [max(o, c) + 1 for o, c in zip(opens, closes, strict=True)],
            "low": [min(o, c) - 1 for o, c in zip(opens, closes, strict=True)],
            "close": closes,
            "volume": 2.0,
        }
    )
    return complete_candle_frame(frame, interval)


def assert_json_able(outcome: CheckOutcome) -> None:
    json.dumps(outcome.metadata, allow_nan=False)
