"""Figure 9: the daily partitions' costs, as ratios measured in one process.

9a: a 30-day backfill through the partitioned ``raw_candles`` asset (one single-run range, in
process: fetch through the replay exchange, replace the days in DuckDB) against the bare ccxt
``fetch_ohlcv`` loop of figure 1a on the same file. Target (issue 12): ≤ 1.3×.

9b: the routine ingest (``raw_candles``, ``labeled_candles``, ``features``, ``ingestion_stats``
over yesterday and today, what the automation condition launches) on a store holding a year of
candles, against the same ingest on a store holding one day. Target: ≤ 1.5× (the ingest costs
what the newest days cost, not the history).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from benchmarks.backfill import INTERVAL, bare_backfill, write_candle_csv
from benchmarks.harness import Figure, Timing, say, time_runs
from btc_lifecycle.adapters.feature_store import (
    replace_candles_between,
    replace_features_between,
    replace_labeled_between,
)
from btc_lifecycle.config import load_settings
from btc_lifecycle.defs.ingestion.assets import ingestion_stats, labeled_candles, raw_candles
from btc_lifecycle.defs.modelling.assets import features
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.launch import replay_exchange
from btc_lifecycle.modelling.features import compute_features
from btc_lifecycle.resources import CandleExchangeResource, FeatureStoreResource

DAYS = 30
YEAR_DAYS = 365
ROUTINE = [raw_candles, labeled_candles, features, ingestion_stats]


def _day(moment: pd.Timestamp) -> str:
    return f"{moment:%Y-%m-%d}"


def _range_tags(first: pd.Timestamp, last: pd.Timestamp) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": _day(first), "dagster/asset_partition_range_end": _day(last)}


def _settings(root: Path, url: str):
    return load_settings(
        {
            "FEATURE_DB_PATH": str(root / "feature_store" / "bitcoin.duckdb"),
            "BTC_REPORT_DIR": str(root / "reports"),
            "BINANCE_API_URL": url,
        }
    )


def _materialize(assets, settings, tags: dict[str, str]) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        assets,
        resources={
            "settings": settings,
            "exchange": CandleExchangeResource.from_settings(settings),
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        tags=tags,
        raise_on_error=True,
    )
    return result


def _step_seconds(result: dg.ExecuteInProcessResult, step: str) -> float:
    [done] = [e for e in result.all_events if e.step_key == step and e.event_type_value == "STEP_SUCCESS"]
    return done.event_specific_data.duration_ms / 1000


def backfill_figure(folder: Path, runs: int) -> Figure:
    candles = synthetic_candles(DAYS * 1440, start="2024-01-01T00:00:00Z")
    path = write_candle_csv(candles, folder / "candles_30d.csv")
    first, last = candles["open_time"].iloc[0], candles["open_time"].iloc[-1]
    ours, bare, step = Timing(), Timing(), []
    with replay_exchange(path, ["--speed", "0"]) as url:
        for number in range(runs):  # interleaved, so a busy moment hits both sides alike
            root = folder / f"backfill{number}"
            settings = _settings(root, url)
            result = {}
            time_runs(
                lambda: result.setdefault("run", _materialize([raw_candles], settings, _range_tags(first, last))),
                1,
                timing=ours,
            )
            step.append(_step_seconds(result["run"], "raw_candles"))
            time_runs(lambda: bare_backfill(url, first), 1, timing=bare)
            shutil.rmtree(root)
    ratio = ours.median / bare.median
    step_ratio = sorted(step)[len(step) // 2] / bare.median
    return Figure(
        key="9a",
        name=f"backfill {len(candles):,} candles (30 days) through partitioned raw_candles, one run",
        runs=ours.wall,
        cpu_seconds=ours.cpu,
        target="≤ 1.3× bare loop",
        met=ratio <= 1.3,
        ratio=f"{ratio:.2f}× bare fetch_ohlcv loop ({bare.median:.2f} s); the raw_candles step alone {step_ratio:.2f}×",
        notes="in process (dg.materialize with the range's run tags): Dagster's run overhead, the fetch "
        "through the replay exchange and the day-replacing write into DuckDB on our side",
    )


def _seed_store(settings, candles: pd.DataFrame) -> None:
    """A store holding ``candles``: raw, labeled and features written as the assets write them."""
    series = settings.ingest.series
    start = candles["open_time"].iloc[0].floor("D")
    end = candles["open_time"].iloc[-1].floor("D") + pd.Timedelta(days=1)
    settings.feature_db_path.parent.mkdir(parents=True, exist_ok=True)
    labeled = label_candles(candles, INTERVAL)
    frame = compute_features(labeled, INTERVAL, settings.features.max_fill_minutes)
    with duckdb.connect(str(settings.feature_db_path)) as conn:
        replace_candles_between(conn, series, candles, start, end)
        replace_labeled_between(conn, series, labeled, start, end)
        replace_features_between(conn, series, frame, start, end)


def routine_figure(folder: Path, runs: int) -> Figure:
    year = synthetic_candles(YEAR_DAYS * 1440, start="2024-01-01T00:00:00Z", seed=3)
    path = write_candle_csv(year, folder / "candles_year.csv")
    last = year["open_time"].iloc[-1]
    yesterday, today = last - pd.Timedelta(days=1), last
    history = year.loc[year["open_time"] < yesterday.floor("D")]
    say(f"  seeding a store with {len(history):,} candles and one with a day")
    stores = {"year": folder / "year", "day": folder / "day"}
    with replay_exchange(path, ["--speed", "0"]) as url:
        _seed_store(_settings(stores["year"], url), history)
        _seed_store(_settings(stores["day"], url), history.tail(1440))
        timings = {name: Timing() for name in stores}
        for number in range(runs):
            for name, root in stores.items():
                run_root = folder / f"{name}{number}"
                shutil.copytree(root, run_root)
                settings = _settings(run_root, url)
                time_runs(
                    lambda: _materialize(ROUTINE, settings, _range_tags(yesterday, today)), 1, timing=timings[name]
                )
                shutil.rmtree(run_root)
    ratio = timings["year"].median / timings["day"].median
    return Figure(
        key="9b",
        name=f"routine ingest (yesterday and today) on a store holding a year ({len(history):,} candles)",
        runs=timings["year"].wall,
        cpu_seconds=timings["year"].cpu,
        target="≤ 1.5× the same ingest on a one-day store",
        met=ratio <= 1.5,
        ratio=f"{ratio:.2f}× the one-day store ({timings['day'].median:.2f} s)",
        notes="raw_candles, labeled_candles, features and ingestion_stats in one in-process run, as the "
        "routine automation launches them; the replay exchange serves the year on both sides",
    )


def run(options: argparse.Namespace) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-partitions-") as folder:
        return [backfill_figure(Path(folder), options.runs), routine_figure(Path(folder), options.runs)]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
