"""Figure 1: backfill through ccxt from the replay exchange, against a bare ccxt pagination loop.

The replay exchange runs as the project's own subprocess (as ``make run`` starts it), frozen at
the end of the file. Both sides build a fresh client with ccxt's rate limiter on, so both pay
``load_markets`` and the limiter's spacing; neither pays ccxt's import.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks.harness import (
    DEFAULT_CANDLES,
    Figure,
    Timing,
    peak_rss_mb,
    reset_peak_rss,
    say,
    time_runs,
)
from btc_lifecycle.adapters.exchange import CandleClient, RetryPolicy, make_ccxt_client
from btc_lifecycle.domain.candle_files import read_candle_file
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.launch import replay_exchange

DAYS = 30
SYMBOL, INTERVAL, LIMIT = "BTC/USDT", "1m", 1000


class _Quiet:
    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        say(f"  warning: {msg}")


def write_candle_csv(candles: pd.DataFrame, path: Path) -> Path:
    """The generic candle CSV the replay exchange reads (epoch-ms open times)."""
    frame = candles[["open_time", "open", "high", "low", "close", "volume"]].copy()
    frame["open_time"] = frame["open_time"].astype("int64") // 1_000_000
    frame.to_csv(path, index=False)
    return path


def project_backfill(url: str, since: pd.Timestamp) -> int:
    client = CandleClient(make_ccxt_client(api_url=url), RetryPolicy(), _Quiet())
    return len(client.fetch_closed_candles(SYMBOL, INTERVAL, since, LIMIT).candles)


def bare_backfill(url: str, since: pd.Timestamp) -> int:
    """The textbook loop: ``fetch_ohlcv`` with since/limit until an empty page."""
    exchange = make_ccxt_client(api_url=url)
    cursor, total = int(since.timestamp() * 1000), 0
    while True:
        rows = exchange.fetch_ohlcv(SYMBOL, INTERVAL, since=cursor, limit=LIMIT)
        if not rows:
            return total
        total += len(rows)
        cursor = rows[-1][0] + 60_000


def measure_file(path: Path, runs: int, with_bare: bool) -> tuple[Timing, Timing | None, int, int]:
    since = read_candle_file(path, INTERVAL)["open_time"].iloc[0]
    counts = {}
    with replay_exchange(path, ["--speed", "0"]) as url:
        ours, bare = Timing(), Timing() if with_bare else None
        for _ in range(runs):  # interleaved, so a busy moment hits both sides alike
            time_runs(lambda: counts.__setitem__("ours", project_backfill(url, since)), 1, timing=ours)
            if bare is not None:
                time_runs(lambda: counts.__setitem__("bare", bare_backfill(url, since)), 1, timing=bare)
    return ours, bare, counts["ours"], counts.get("bare", 0)


def run(options: argparse.Namespace) -> list[Figure]:
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as folder:
        path = write_candle_csv(
            synthetic_candles(DAYS * 1440, start="2024-01-01T00:00:00Z"), Path(folder) / "candles_30d.csv"
        )
        reset_peak_rss()
        ours, bare, count, bare_count = measure_file(path, options.runs, with_bare=True)
        peak = peak_rss_mb()
        ratio = ours.median / bare.median
        figures.append(
            Figure(
                key="1a",
                name=f"backfill {count:,} candles (30 days) via CandleClient",
                runs=ours.wall,
                cpu_seconds=ours.cpu,
                peak_rss_mb=peak,
                target="< 5 s and ≤ 1.3× bare loop",
                met=ours.median < 5 and ratio <= 1.3,
                throughput=f"{count / ours.median:,.0f} candles/s",
                ratio=f"{ratio:.2f}× bare fetch_ohlcv loop ({bare.median:.2f} s, {bare_count:,} candles)",
                notes="replay exchange as a subprocess; ccxt rate limiter on for both sides; "
                "client construction and load_markets included on both sides",
            )
        )
    candles = options.candles or (DEFAULT_CANDLES if DEFAULT_CANDLES.is_file() else None)
    if candles is not None:
        reset_peak_rss()
        ours, _, count, _ = measure_file(candles, options.runs, with_bare=False)
        figures.append(
            Figure(
                key="1b",
                name=f"backfill {candles.name} ({count:,} candles) via CandleClient",
                runs=ours.wall,
                cpu_seconds=ours.cpu,
                peak_rss_mb=peak_rss_mb(),
                target="< 15 s",
                met=ours.median < 15,
                throughput=f"{count / ours.median:,.0f} candles/s",
            )
        )
    return figures


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
