"""Figure 10: online scoring latency, ``python -m btc_lifecycle.serving`` over HTTP on 127.0.0.1.

A real champion (walk-forward training on the real candle file, or on 20,000 generated minutes
without it, registered in an MLflow store) and a real Feast online store (SQLite, materialized
by the project's feast_repo adapter) in a temporary folder. The service runs in its own process;
this process sends ``REQUESTS`` sequential ``GET /predict`` per run over one kept-alive
connection and times each answer (10a: p50, 10b: p99). The same is also measured with a new
connection per request (as ``curl`` does), in the notes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import REPO_ROOT, Figure, real_candle_file, say

REQUESTS = 2_000
WARMUP = 100
PATH = "/predict?symbol=BTC/USDT"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def prepare(root: Path, options: argparse.Namespace) -> tuple[dict[str, str], str, int]:
    """A champion in an MLflow store and the newest candle in a Feast online store under ``root``;
    returns the environment pointing the service at them, the champion version and the candles."""
    import pandas as pd

    from btc_lifecycle.adapters.feast_repo import apply, export_days, feast_repo, materialize, open_store
    from btc_lifecycle.adapters.model_registry import ModelRegistry
    from btc_lifecycle.config import load_settings
    from btc_lifecycle.domain.candle_files import read_candle_file
    from btc_lifecycle.domain.synthetic import synthetic_candles
    from btc_lifecycle.modelling.features import compute_features
    from btc_lifecycle.modelling.walk_forward import train_walk_forward

    path = real_candle_file(options)
    candles = read_candle_file(path, "1m") if path is not None else synthetic_candles(20_000, seed=5)
    env = {
        **os.environ,
        "BTC_ENV_FILE": str(root / "no.env"),
        "FEATURE_DB_PATH": str(root / "feature_store" / "bitcoin.duckdb"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        "MLFLOW_REGISTRY_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
    }
    settings = load_settings({key: env[key] for key in ("BTC_ENV_FILE", "FEATURE_DB_PATH", "MLFLOW_TRACKING_URI")})
    features = compute_features(candles, "1m", max_fill_minutes=settings.features.max_fill_minutes)
    began = time.perf_counter()
    registry = ModelRegistry.in_directory(root / "mlflow")
    record = registry.log_training(train_walk_forward(features))
    say(f"  champion version {record.model_version} trained and registered in {time.perf_counter() - began:.1f} s")
    repo = feast_repo(settings)
    days = features["open_time"].dt.floor("D")
    export_days(repo, features, days.min(), days.max() + pd.Timedelta(days=1))
    store = open_store(repo)
    apply(store, repo)
    materialize(store, repo)
    return env, record.model_version, len(candles)


def start_service(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    ready = root / "serving.url"
    process = subprocess.Popen(
        [sys.executable, "-m", "btc_lifecycle.serving", "--port", "0", "--reload-seconds", "0"]
        + ["--ready-file", str(ready)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the service did not start: {process.communicate()[1]}")
        time.sleep(0.05)  # polling for the ready file, with a deadline
    return process, ready.read_text().strip()


def timed_requests(url: str, count: int, version: str, keep_alive: bool = True) -> list[float]:
    """Seconds per ``GET /predict``, each answer checked: 200 and the champion's version."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    latencies = []
    for _ in range(count):
        began = time.perf_counter()
        connection.request("GET", PATH)
        response = connection.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - began)
        if response.status != 200 or json.loads(body)["model"]["version"] != version:
            raise RuntimeError(f"unexpected answer {response.status}: {body[:300]!r}")
        if not keep_alive:
            connection.close()
    connection.close()
    return latencies


def service_peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run(options: argparse.Namespace) -> list[Figure]:
    requests = 1_000 if options.quick else REQUESTS
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as folder:
        root = Path(folder)
        env, version, candles = prepare(root, options)
        process, url = start_service(root, env)
        try:
            timed_requests(url, WARMUP, version)
            runs = [timed_requests(url, requests, version) for _ in range(options.runs)]
            fresh = timed_requests(url, requests // 2, version, keep_alive=False)
            peak = service_peak_rss_mb(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
    p50s = [percentile(latencies, 0.50) for latencies in runs]
    p99s = [percentile(latencies, 0.99) for latencies in runs]
    every = [latency for latencies in runs for latency in latencies]
    total = f"{len(runs)} × {requests:,} sequential requests"
    summary = (
        f"all {len(every):,}: p50 {percentile(every, 0.5) * 1000:.2f} ms, p99 {percentile(every, 0.99) * 1000:.2f} ms, "
        f"max {max(every) * 1000:.1f} ms; a new connection per request ({len(fresh):,}): p50 "
        f"{percentile(fresh, 0.5) * 1000:.2f} ms, p99 {percentile(fresh, 0.99) * 1000:.2f} ms"
    )
    say(f"  {summary}")
    source = "the real candle file" if real_candle_file(options) else "generated candles"
    notes = (
        f"GET /predict on 127.0.0.1, champion trained on {candles:,} candles ({source}), Feast SQLite online "
        f"store; one kept-alive connection, {WARMUP} warm-up requests first; every answer logged to SQLite. "
        f"{summary}. Peak memory is the service process's."
    )
    return [
        Figure(
            key="10a",
            name=f"online scoring p50 latency ({total})",
            runs=p50s,
            peak_rss_mb=peak,
            target="p50 < 10 ms",
            met=statistics.median(p50s) < 0.010,
            throughput=f"p50 {statistics.median(p50s) * 1000:.2f} ms",
            notes=notes,
        ),
        Figure(
            key="10b",
            name=f"online scoring p99 latency ({total})",
            runs=p99s,
            peak_rss_mb=peak,
            target="p99 < 50 ms",
            met=statistics.median(p99s) < 0.050,
            throughput=f"p99 {statistics.median(p99s) * 1000:.2f} ms",
        ),
    ]


if __name__ == "__main__":
    from benchmarks.harness import figure_main

    figure_main(run)
