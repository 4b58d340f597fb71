"""Figure 14: ``make run`` on one, two and four markets of 30 days each: the whole graph.

Each market is its own 30-day random walk, replayed at once by one replay exchange
(``--candles SYMBOL=FILE`` per market) and named in a config's ``more_markets`` (binanceus BTC/USD,
binance BTC/USDC, binance BTC/FDUSD beside the main binance BTC/USDT). The run is figure 7's
(``python -m btc_lifecycle.launch --history ... -- dagster asset materialize --select '*'``) in a fresh
workspace each time. With more than one market the graph holds every market's lifecycle and the
market comparison; the main market's backtest, ingestion report and Feast export run once.

Target: four markets in at most 3× the wall time of one, on the machine's two cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from benchmarks.backfill import write_candle_csv
from benchmarks.graph import DAYS, GraphRun, materialize, phase_notes
from benchmarks.harness import REPO_ROOT, Figure, say
from btc_lifecycle.domain.synthetic import synthetic_candles

TARGET_RATIO = 3.0
MARKETS = (
    ("binance", "BTC/USDT"),
    ("binanceus", "BTC/USD"),
    ("binance", "BTC/USDC"),
    ("binance", "BTC/FDUSD"),
)


def write_markets(folder: Path, count: int) -> tuple[dict[str, Path], Path]:
    """``count`` markets' candle files and a config naming them (the project's, plus more_markets)."""
    files = {
        symbol: write_candle_csv(
            synthetic_candles(DAYS * 1440, start="2024-01-01T00:00:00Z", seed=11 + number),
            folder / f"{symbol.replace('/', '_').lower()}_30d.csv",
        )
        for number, (_, symbol) in enumerate(MARKETS[:count])
    }
    config = json.loads((REPO_ROOT / "config" / "bitcoin_ingest.json").read_text())
    config["more_markets"] = [
        {"exchange": exchange, "symbol": symbol, "interval": "1m"} for exchange, symbol in MARKETS[1:count]
    ]
    path = folder / f"markets_{count}.json"
    path.write_text(json.dumps(config))
    return files, path


def runs_of(folder: Path, count: int, runs: int) -> list[GraphRun]:
    files, config = write_markets(folder, count)
    results = []
    for number in range(runs):
        root = folder / f"{count}markets_run{number}"
        result = materialize(files, root, folder / "cache", config=config)
        say(
            f"  {count} market(s) run {number + 1}: {result.wall:.1f} s ({result.cpu:.1f} CPU s), steps "
            f"{result.steps_total:.1f} s, peak {result.peak_tree_mb:,.0f} MB"
        )
        results.append(result)
    return results


def run(options: argparse.Namespace) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-markets-") as folder:
        # Interleaved would need three workspaces alive at once; the counts run one after another.
        by_count = {count: runs_of(Path(folder), count, options.runs) for count in (1, 2, 4)}
    one = statistics.median(result.wall for result in by_count[1])
    figures = []
    for count, results in by_count.items():
        walls = [result.wall for result in results]
        ratio = statistics.median(walls) / one
        figures.append(
            Figure(
                key=f"14{'abc'[(1, 2, 4).index(count)]}",
                name=f"whole graph on {count} market(s) of {DAYS} days each ({count * DAYS * 1440:,} candles)",
                runs=walls,
                cpu_seconds=[result.cpu for result in results],
                peak_rss_mb=max(result.peak_tree_mb for result in results),
                target=f"≤ {TARGET_RATIO:g}× one market" if count == 4 else "—",
                met=ratio <= TARGET_RATIO if count == 4 else None,
                ratio=f"{ratio:.2f}× one market",
                notes=phase_notes(results),
            )
        )
    return figures


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
