"""Fixtures shared by the suite: generated candles, the shared real file, isolated settings."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis.configuration import set_hypothesis_home_dir

from btc_lifecycle.domain.synthetic import synthetic_candles

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = json.loads((REPO_ROOT / "config" / "bitcoin_ingest.json").read_text())


@pytest.fixture(scope="session", autouse=True)
def isolated_env_file_and_logs(tmp_path_factory):
    """No test reads the developer's .env, writes launcher logs into data/logs, opens the project's
    Dagster instance (the Makefile exports DAGSTER_HOME) or a cache under the home folder: set for
    the whole session (before module-scoped fixtures start subprocesses), restored afterwards."""
    root = tmp_path_factory.mktemp("session_env")
    (root / "dagster_home").mkdir()
    wanted = {
        "BTC_ENV_FILE": str(root / "no.env"),
        "BTC_LOG_DIR": str(root / "logs"),
        "DAGSTER_HOME": str(root / "dagster_home"),
    }
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def isolated_mlflow_environment(monkeypatch):
    """mlflow.set_tracking_uri/set_registry_uri write os.environ; undoing them after every test
    keeps a later test's subprocesses (dagster CLI, dagster dev) off an earlier test's store."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def shared_candles_path() -> Path:
    """The real March 2023 file; CI names it in BTC_SHARED_CANDLES and must not run without it."""
    return shared_candles_file()


def shared_candles_file() -> Path:
    """``shared_candles_path`` for fixtures of a wider scope: skips without BTC_SHARED_CANDLES,
    fails when it names no file."""
    value = os.environ.get("BTC_SHARED_CANDLES")
    if not value:
        pytest.skip("BTC_SHARED_CANDLES is not set: the real-data tests run where ../shared/data exists (CI sets it)")
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"BTC_SHARED_CANDLES names {path}, which does not exist")
    return path


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a config file with ``changes`` applied to the project's default; returns its path."""

    def write(**changes) -> Path:
        raw = {**DEFAULT_CONFIG, **changes}
        for name, value in changes.items():
            if value is REMOVE:
                del raw[name]
        path = tmp_path / "bitcoin_ingest.json"
        path.write_text(json.dumps(raw))
        return path

    return write


REMOVE = object()


@pytest.fixture
def generated_candles():
    return synthetic_candles(3_000, seed=11)


def write_generic_csv(candles, path: Path) -> Path:
    """The shared data's format: open_time in ISO 8601 with offset, then OHLCV."""
    frame = candles[["open_time", "open", "high", "low", "close", "volume"]].copy()
    frame["open_time"] = frame["open_time"].map(lambda t: t.isoformat(sep=" "))
    frame.to_csv(path, index=False)
    return path


def stored_days(settings) -> dict[str, str]:
    """Run tags that materialize the daily assets over every day the labeled table holds, as one
    single-run backfill (what ``--partition-range FIRST...LAST`` sets)."""
    import duckdb as _duckdb

    series = settings.ingest.series
    with _duckdb.connect(str(settings.feature_db_path), read_only=True) as conn:
        first, last = conn.execute(
            f'SELECT min(open_time), max(open_time) FROM "{series.labeled_table}" WHERE symbol = ? AND interval = ?',
            [series.symbol, series.interval],
        ).fetchone()
    return {
        "dagster/asset_partition_range_start": f"{first:%Y-%m-%d}",
        "dagster/asset_partition_range_end": f"{last:%Y-%m-%d}",
    }


# The test files that take minutes (a replayed month, the browser, the production profile, the
# worker pool's hosts):
# handed to the two xdist workers first, so that the short files fill in beside them instead of
# leaving one worker alone with a long one at the end (the suite's wall time, not its work).
LONGEST_FILES = (
    "e2e/test_replayed_march.py",
    "e2e/test_production_profile.py",
    "e2e/test_worker_pool.py",
    "e2e/ui/test_dagster_ui.py",
    "e2e/test_retraining_loop.py",
    "e2e/test_simulation_replay.py",
    "e2e/test_graph.py",
    "e2e/test_serving.py",
)


def pytest_collection_modifyitems(config, items):
    """The longest files first, then the other files that start processes (under e2e/ or holding
    an e2e test), then the in-process tests: files of seconds come last, where they even out the
    two workers' ends instead of one worker finishing a file of a minute or two alone."""
    starts_processes = {item.path for item in items if "e2e" in item.path.parts or item.get_closest_marker("e2e")}

    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        named = next((at for at, name in enumerate(LONGEST_FILES) if path.endswith(name)), None)
        if named is not None:
            return named
        return len(LONGEST_FILES) + (item.path not in starts_processes)

    items.sort(key=rank)  # stable: the order within each file, and within each rank, is kept


# One deterministic hypothesis profile for the property tests: a fixed seed, no example database.


PROFILE = "btc_lifecycle_properties"

# derandomize: the same examples on every run and machine, so a red build is reproducible.
# database=None: no .hypothesis folder in the working tree. deadline=None: pandas and DuckDB
# timings vary with the load on a shared CI runner, and a slow example is not a wrong one.
hypothesis_settings.register_profile(
    PROFILE,
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    print_blob=False,
    # No explain phase: on a failure it reruns the example hundreds of times to annotate lines.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
hypothesis_settings.load_profile(PROFILE)
# Even without a database, hypothesis keeps a .hypothesis folder (constants it collects) in the
# working directory: tests write only to temporary folders.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="hypothesis-"))
