"""The one typed configuration: ``config/bitcoin_ingest.json`` plus environment overrides.

The environment is the real one over the optional ``.env`` file at the project root
(``read_env_file``): every process that loads the settings sees the same values.

Read once with ``load_settings()``. Every problem is reported as one ``ConfigError`` that names
the file (or environment variable) and the field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from btc_lifecycle.adapters.sql_text import is_plain_identifier
from btc_lifecycle.domain.candles import INTERVAL_MS, CandleSeries
from btc_lifecycle.monitoring.drift import MonitoringConfig

# Defaults sit in the checkout the package runs from (installed editable, as the Makefile does),
# whatever the working directory; paths given in the environment are taken as given.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "bitcoin_ingest.json"
DEFAULT_FEATURE_DB_PATH = PROJECT_ROOT / "data" / "feature_store" / "bitcoin.duckdb"
DEFAULT_REPORT_DIR = PROJECT_ROOT / "data" / "reports"
DEFAULT_MLFLOW_DIR = PROJECT_ROOT / "data" / "mlflow"
DEFAULT_ENV_FILE = PROJECT_ROOT / ".env"  # BTC_ENV_FILE names another (the tests point it away)

SUPPORTED_EXCHANGES = ("binance",)
# FEATURE_STORE_BACKEND: "duckdb" (one embedded file, one writer at a time) or "parquet" (a file
# per table and UTC day that DuckDB queries: runs of different days write at the same time).
FEATURE_STORE_BACKENDS = ("duckdb", "parquet")
MAX_CANDLES_PER_REQUEST = 1000  # Binance's klines maximum
_SYMBOL = re.compile(r"^[A-Z0-9]{2,12}/[A-Z0-9]{2,12}$")


Rule = tuple[type | tuple[type, ...], float | None, float | None]  # types, minimum, maximum


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type, or out of range."""


@dataclass(frozen=True)
class IngestConfig:
    """What to ingest and how hard to try."""

    exchange: str
    symbol: str
    interval: str
    limit: int
    table: str
    backfill_days: int | None  # None: everything the exchange has
    request_timeout_seconds: float = 10.0
    max_retries: int = 5
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    # The first UTC day of the daily partitions (Binance listed BTC/USDT on 17 August 2017): the
    # days a person can backfill from the UI. Candles before it are never fetched.
    history_start: str = "2017-08-17"
    # Data checks on the raw candles: a gap longer than this is a warning (an outage, or a thin
    # market: the gap policy fills only features.max_fill_minutes) ...
    max_gap_minutes: int = 60
    # ... and the newest candle may be at most this far behind the exchange's clock at ingest.
    max_lag_minutes: int = 15

    @property
    def series(self) -> CandleSeries:
        return CandleSeries(table=self.table, symbol=self.symbol, interval=self.interval)


@dataclass(frozen=True)
class ReportConfig:
    keep_last: int = 10


@dataclass(frozen=True)
class FeaturesConfig:
    """The gap policy of the model inputs (docs/gap_policy.md)."""

    # Gaps of up to this many candles between two stored ones are trade-less minutes, filled
    # with flat candles; longer gaps (outages) stay gaps. 0 disables filling.
    max_fill_minutes: int = 30


FEAST_ONLINE_STORES = ("sqlite", "postgres", "redis")
# The connection of a server online store, from the environment only: it may carry a password.
FEAST_ONLINE_STORE_URL = "FEAST_ONLINE_STORE_URL"
_FEAST_URL_SCHEMES = {"postgres": ("postgresql", "postgres"), "redis": ("redis", "rediss")}
_FEAST_URL_EXAMPLES = {
    "sqlite": "a file path",
    "postgres": "postgresql://user:password@host:5432/database",
    "redis": "redis://:password@host:6379/0",
}


@dataclass(frozen=True)
class FeastConfig:
    """The serving side of the feature store: the generated Feast repository (docs: README)."""

    project: str = "btc_lifecycle"  # Feast's project name: letters, digits and '_'
    # How far back a point-in-time lookup may reach for a candle's row. Feast's join cost grows
    # with it (30k rows: 1.5 s at 5 minutes, 26 s and 7.8 GB at a day): a few candles, no more.
    ttl_minutes: int = 5
    # sqlite (a file under the repository), or a server named by FEAST_ONLINE_STORE_URL.
    online_store: str = "sqlite"

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_]{0,62}$", self.project):
            raise ValueError(f"field 'feast.project' must be letters, digits and '_'; got {self.project!r}")
        if self.online_store not in FEAST_ONLINE_STORES:
            raise ValueError(
                f"field 'feast.online_store' must be one of {', '.join(FEAST_ONLINE_STORES)}; got {self.online_store!r}"
            )


@dataclass(frozen=True)
class ModelConfig:
    """Training, registration and the promotion gate."""

    name: str = "btc_direction"
    # A challenger must beat the champion's held-out log loss by more than the margin, with a
    # paired test's one-sided p-value below alpha (and beat the constant prior at alpha too).
    promotion_margin: float = 0.0
    promotion_alpha: float = 0.05
    n_folds: int = 5
    heldout_fraction: float = 0.15
    train_window_days: float | None = None  # None: expanding window over all history
    prediction_rows: int = 1440  # at most this many recent candles scored per run

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9_.-]{1,64}$", self.name):
            raise ValueError(f"field 'model.name' must be letters, digits, '_', '.', '-'; got {self.name!r}")


@dataclass(frozen=True)
class ScheduleConfig:
    """When the routine runs (cron, UTC), and whether schedules start running on their own."""

    ingestion_cron: str = "*/5 * * * *"
    report_cron: str = "0 6 * * *"
    monitoring_cron: str = "0 * * * *"
    running_by_default: bool = False  # they call live Binance: a person switches them on

    def __post_init__(self) -> None:
        for name in ("ingestion_cron", "report_cron", "monitoring_cron"):
            if len(getattr(self, name).split()) != 5:
                raise ValueError(f"field 'schedules.{name}' must be a 5-field cron string, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class ServingConfig:
    """The online scoring service (``python -m btc_lifecycle.serving``, docs/serving.md)."""

    host: str = "127.0.0.1"
    port: int = 8765  # SERVING_PORT overrides it; --port too
    # How often the service asks the registry whether @champion moved; 0: only on POST /reload.
    reload_interval_seconds: float = 30.0
    # The service has no authentication: a host that is not loopback is refused unless true.
    allow_remote: bool = False
    # SERVING_PREDICTIONS_DB (environment only): the log of served predictions; None: beside the DuckDB file.
    predictions_db: Path | None = None

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise ValueError("field 'serving.host' must not be empty")


_SERVING_RULES: dict[str, Rule] = {
    "host": (str, None, None),
    "port": (int, 1, 65535),
    "reload_interval_seconds": ((int, float), 0, 86_400),
    "allow_remote": (bool, None, None),
}
_SCHEDULE_RULES: dict[str, Rule] = {
    "ingestion_cron": (str, None, None),
    "report_cron": (str, None, None),
    "monitoring_cron": (str, None, None),
    "running_by_default": (bool, None, None),
}
_MONITORING_RULES: dict[str, Rule] = {
    "current_window": (int, 2, 1_000_000),
    "reference_window": ((int, type(None)), 2, 10_000_000),
    "stattest": (str, None, None),
    "stattest_threshold": ((int, float), 0, 100),
    "drift_share_threshold": ((int, float), 0, 1),
    "min_realized_labels": (int, 1, 1_000_000),
    "performance_margin": ((int, float), 0, 10),
    "retrain_cooldown_hours": ((int, float), 0, 24 * 365),
}
_REPORT_RULES: dict[str, Rule] = {"keep_last": (int, 1, 1000)}
_FEAST_RULES: dict[str, Rule] = {
    "project": (str, None, None),
    "ttl_minutes": (int, 1, 1440),
    "online_store": (str, None, None),
}
_FEATURES_RULES: dict[str, Rule] = {"max_fill_minutes": (int, 0, 1440)}
_MODEL_RULES: dict[str, Rule] = {
    "name": (str, None, None),
    "promotion_margin": ((int, float), 0, 1),
    "promotion_alpha": ((int, float), 0.0001, 0.5),
    "n_folds": (int, 1, 20),
    "heldout_fraction": ((int, float), 0.01, 0.5),
    "train_window_days": ((int, float, type(None)), 0.1, 3650),
    "prediction_rows": (int, 1, 1_000_000),
}


@dataclass(frozen=True)
class Settings:
    """Everything the code location needs, resolved to absolute paths."""

    config_path: Path
    ingest: IngestConfig
    report: ReportConfig
    model: ModelConfig
    monitoring: MonitoringConfig
    schedules: ScheduleConfig
    feature_db_path: Path
    report_dir: Path
    mlflow_tracking_uri: str
    mlflow_registry_uri: str
    feast_repo_dir: Path  # the generated Feast repository: feature_store.yaml, registry, offline Parquet
    binance_api_url: str | None = None
    replay_file: Path | None = None  # the candle file behind BINANCE_API_URL, when replaying
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    features: FeaturesConfig = FeaturesConfig()
    feast: FeastConfig = FeastConfig()
    serving: ServingConfig = ServingConfig()
    # FEAST_ONLINE_STORE_URL: a server online store's connection; a sqlite file path, if set.
    feast_online_store_url: str | None = field(default=None, repr=False)
    feature_store_backend: str = "duckdb"  # FEATURE_STORE_BACKEND, one of FEATURE_STORE_BACKENDS
    feature_parquet_dir: Path | None = None  # FEATURE_PARQUET_DIR, else beside the DuckDB file

    @property
    def feature_store_parquet_dir(self) -> Path:
        """Where the Parquet backend keeps its day files."""
        return self.feature_parquet_dir or self.feature_db_path.parent / "parquet"

    @property
    def feature_store_location(self) -> Path:
        """What the store's readers open: the DuckDB file, or the Parquet store's folder."""
        return self.feature_store_parquet_dir if self.feature_store_backend == "parquet" else self.feature_db_path

    @property
    def mlflow_artifact_location(self) -> str:
        """File artifacts beside a SQLite tracking store; through a tracking server (http), the
        server's own artifact store (its --artifacts-destination), so clients on any host share
        them; else under data/mlflow."""
        if self.mlflow_tracking_uri.startswith("sqlite:///"):
            return str(Path(self.mlflow_tracking_uri.removeprefix("sqlite:///")).parent / "artifacts")
        if self.mlflow_tracking_uri.startswith(("http://", "https://")):
            return f"mlflow-artifacts:/{self.model.name}"
        return str(DEFAULT_MLFLOW_DIR.resolve() / "artifacts")

    @property
    def ingestion_stats_path(self) -> Path:
        return self.feature_db_path.parent / "ingestion_stats.json"

    @property
    def online_predictions_path(self) -> Path:
        """The served predictions' SQLite log: SERVING_PREDICTIONS_DB, else beside the DuckDB file."""
        return self.serving.predictions_db or self.feature_db_path.parent / "online_predictions.sqlite"


def _check_type(source: str, name: str, value: Any, expected: type | tuple[type, ...]) -> None:
    # bool is an int in Python; a config that says "limit": true is still wrong.
    if isinstance(value, bool) and bool not in (expected if isinstance(expected, tuple) else (expected,)):
        raise ConfigError(f"{source}: field '{name}' must be {_type_name(expected)}, got {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"{source}: field '{name}' must be {_type_name(expected)}, got {value!r}")


def _type_name(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def _parse_ingest(source: str, raw: dict[str, Any]) -> IngestConfig:
    known = {f.name for f in fields(IngestConfig)}
    sections = {"report", "features", "model", "monitoring", "schedules", "feast", "serving"}
    unknown = sorted(set(raw) - known - sections)
    if unknown:
        raise ConfigError(f"{source}: unknown field '{unknown[0]}' (known: {', '.join(sorted(known))})")
    required = [f.name for f in fields(IngestConfig) if f.default is MISSING]
    for name in required:
        if name not in raw:
            raise ConfigError(f"{source}: field '{name}' is missing")

    def number(name: str, default: float, *, minimum: float, maximum: float) -> float:
        value = raw.get(name, default)
        _check_type(source, name, value, (int, float))
        if not minimum <= value <= maximum:
            raise ConfigError(f"{source}: field '{name}' must be between {minimum} and {maximum}, got {value}")
        return float(value)

    exchange = raw["exchange"]
    _check_type(source, "exchange", exchange, str)
    if exchange not in SUPPORTED_EXCHANGES:
        raise ConfigError(f"{source}: field 'exchange' must be one of {SUPPORTED_EXCHANGES}, got {exchange!r}")
    symbol = raw["symbol"]
    _check_type(source, "symbol", symbol, str)
    if not _SYMBOL.match(symbol):
        raise ConfigError(f"{source}: field 'symbol' must look like 'BTC/USDT', got {symbol!r}")
    interval = raw["interval"]
    _check_type(source, "interval", interval, str)
    if interval not in INTERVAL_MS:
        raise ConfigError(f"{source}: field 'interval' must be one of {', '.join(INTERVAL_MS)}, got {interval!r}")
    limit = raw["limit"]
    _check_type(source, "limit", limit, int)
    if not 1 <= limit <= MAX_CANDLES_PER_REQUEST:
        raise ConfigError(f"{source}: field 'limit' must be between 1 and {MAX_CANDLES_PER_REQUEST}, got {limit}")
    table = raw["table"]
    _check_type(source, "table", table, str)
    if not is_plain_identifier(table):
        raise ConfigError(
            f"{source}: field 'table' must be a plain SQL identifier "
            f"(letters, digits, underscore; not starting with a digit), got {table!r}"
        )
    backfill_days = _parse_backfill(source, "backfill_days", raw["backfill_days"])
    max_retries = raw.get("max_retries", 5)
    _check_type(source, "max_retries", max_retries, int)
    if not 0 <= max_retries <= 20:
        raise ConfigError(f"{source}: field 'max_retries' must be between 0 and 20, got {max_retries}")
    retry_initial = number("retry_initial_seconds", 0.5, minimum=0, maximum=60)
    retry_max = number("retry_max_seconds", 30.0, minimum=0, maximum=600)
    if retry_max < retry_initial:
        raise ConfigError(f"{source}: field 'retry_max_seconds' must not be below 'retry_initial_seconds'")
    return IngestConfig(
        exchange=exchange,
        symbol=symbol,
        interval=interval,
        limit=limit,
        table=table,
        backfill_days=backfill_days,
        request_timeout_seconds=number("request_timeout_seconds", 10.0, minimum=0.1, maximum=300),
        max_retries=max_retries,
        retry_initial_seconds=retry_initial,
        retry_max_seconds=retry_max,
        history_start=_parse_day(source, "history_start", raw.get("history_start", "2017-08-17")),
        max_gap_minutes=int(number("max_gap_minutes", 60, minimum=1, maximum=10_080)),
        max_lag_minutes=int(number("max_lag_minutes", 15, minimum=1, maximum=10_080)),
    )


def _parse_day(source: str, name: str, value: Any) -> str:
    """A UTC calendar day written YYYY-MM-DD."""
    _check_type(source, name, value, str)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or len(value) != 10:
        raise ConfigError(f"{source}: field '{name}' must be a day written YYYY-MM-DD, got {value!r}")
    return value


def _parse_backfill(source: str, name: str, value: Any) -> int | None:
    if value == "all":
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{source}: field '{name}' must be a whole number of days >= 1 or \"all\", got {value!r}")
    return value


def _parse_section(source: str, section: str, raw: Any, cls: type, rules: dict[str, Rule]):
    """A config section as ``cls``: unknown fields refused, each value type- and range-checked."""
    if raw is None:
        return cls()
    _check_type(source, section, raw, dict)
    unknown = sorted(set(raw) - set(rules))
    if unknown:
        raise ConfigError(f"{source}: unknown field '{section}.{unknown[0]}' (known: {', '.join(rules)})")
    values = {}
    for name, (types, minimum, maximum) in rules.items():
        if name not in raw:
            continue
        value, label = raw[name], f"{section}.{name}"
        if value is None and type(None) in (types if isinstance(types, tuple) else (types,)):
            values[name] = None
            continue
        _check_type(source, label, value, types)
        if isinstance(value, (int, float)) and (
            (minimum is not None and value < minimum) or (maximum is not None and value > maximum)
        ):
            raise ConfigError(f"{source}: field '{label}' must be between {minimum} and {maximum}, got {value}")
        values[name] = value
    try:
        return cls(**values)
    except ValueError as error:
        raise ConfigError(f"{source}: section '{section}': {error}") from None


def _parse_feast(source: str, raw: Any, env: dict[str, str]) -> FeastConfig:
    """The ``feast`` section, ``FEAST_ONLINE_STORE`` over its ``online_store``, and a check that
    ``FEAST_ONLINE_STORE_URL`` suits the store (never echoed: it may hold a password)."""
    feast = _parse_section(source, "feast", raw, FeastConfig, _FEAST_RULES)
    if env.get("FEAST_ONLINE_STORE"):
        try:
            feast = replace(feast, online_store=env["FEAST_ONLINE_STORE"])
        except ValueError:
            raise ConfigError(
                f"environment: FEAST_ONLINE_STORE must be one of {', '.join(FEAST_ONLINE_STORES)}, "
                f"got {env['FEAST_ONLINE_STORE']!r}"
            ) from None
    url = env.get(FEAST_ONLINE_STORE_URL) or None
    store = feast.online_store
    if store == "sqlite":
        if url is not None and "://" in url:
            raise ConfigError(
                f"environment: {FEAST_ONLINE_STORE_URL} must be a file path for feast.online_store 'sqlite' "
                "(or unset: a file in the Feast repository)"
            )
        return feast
    example = _FEAST_URL_EXAMPLES[store]
    if url is None:
        raise ConfigError(
            f"environment: {FEAST_ONLINE_STORE_URL} is required when feast.online_store is {store!r} (e.g. {example})"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in _FEAST_URL_SCHEMES[store] or not parts.hostname:
        raise ConfigError(
            f"environment: {FEAST_ONLINE_STORE_URL} must look like {example} for feast.online_store {store!r}"
        )
    if store == "postgres" and not parts.path.strip("/"):
        raise ConfigError(f"environment: {FEAST_ONLINE_STORE_URL} must name the database ({example})")
    return feast


def _parse_serving(source: str, raw: Any, env: dict[str, str]) -> ServingConfig:
    """The ``serving`` section, with SERVING_PORT and SERVING_PREDICTIONS_DB over it."""
    serving = _parse_section(source, "serving", raw, ServingConfig, _SERVING_RULES)
    port = env.get("SERVING_PORT")
    if port:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"environment: SERVING_PORT must be a port number from 1 to 65535, got {port!r}")
        serving = replace(serving, port=int(port))
    if env.get("SERVING_PREDICTIONS_DB"):
        serving = replace(serving, predictions_db=Path(env["SERVING_PREDICTIONS_DB"]).resolve())
    return serving


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (set INGEST_CONFIG to another path)") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    return raw


_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def env_file_path(environ: dict[str, str] | None = None) -> Path:
    """The ``.env`` file: ``BTC_ENV_FILE`` when set, else ``.env`` at the project root."""
    env = os.environ if environ is None else environ
    return Path(env.get("BTC_ENV_FILE") or os.environ.get("BTC_ENV_FILE") or DEFAULT_ENV_FILE)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file; ``#`` comments, blank lines, optional quotes.

    A missing file is an empty one; a malformed line is a ``ConfigError`` naming file and line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the .env file ({error})") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.match(stripped)
        if not match:
            # The line is not echoed: it may hold a key or secret.
            raise ConfigError(
                f"{path}, line {number}: expected KEY=VALUE (KEY: letters, digits and '_', not starting with a digit)"
            )
        key, value = match.groups()
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            rest = value[end + 1 :].strip() if end > 0 else ""
            if end < 0 or (rest and not rest.startswith("#")):
                raise ConfigError(f"{path}, line {number}: unbalanced {quote} quote in the value of {key}")
            value = value[1:end]
        else:
            value = re.sub(r"\s+#.*$", "", value).strip()  # an unquoted value ends at " #"
        values[key] = value
    return values


def with_env_file(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` over the ``.env`` file's values: the real environment always wins."""
    return {**read_env_file(env_file_path(environ)), **environ}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the config file and the environment once into ``Settings``."""
    env = with_env_file(dict(os.environ if environ is None else environ))
    config_path = Path(env.get("INGEST_CONFIG") or DEFAULT_CONFIG_PATH).resolve()
    raw = read_config_file(config_path)
    ingest = _parse_ingest(str(config_path), raw)
    if env.get("INGEST_BACKFILL_DAYS"):
        backfill = _parse_backfill("environment", "INGEST_BACKFILL_DAYS", env["INGEST_BACKFILL_DAYS"])
        ingest = replace(ingest, backfill_days=backfill)
    mlflow_dir = DEFAULT_MLFLOW_DIR.resolve()
    default_tracking = f"sqlite:///{mlflow_dir / 'mlflow.db'}"
    tracking_uri = env.get("MLFLOW_TRACKING_URI") or default_tracking
    api_url = env.get("BINANCE_API_URL") or None
    feature_db_path = Path(env.get("FEATURE_DB_PATH") or DEFAULT_FEATURE_DB_PATH).resolve()
    feast = _parse_feast(str(config_path), raw.get("feast"), env)
    backend = env.get("FEATURE_STORE_BACKEND") or "duckdb"
    if backend not in FEATURE_STORE_BACKENDS:
        raise ConfigError(
            f"environment: FEATURE_STORE_BACKEND must be one of {', '.join(FEATURE_STORE_BACKENDS)}, got {backend!r}"
        )
    if api_url is not None and not re.match(r"^https?://[^\s/]+", api_url):
        raise ConfigError(f"environment: BINANCE_API_URL must be an http(s) URL, got {api_url!r}")
    return Settings(
        config_path=config_path,
        ingest=ingest,
        report=_parse_section(str(config_path), "report", raw.get("report"), ReportConfig, _REPORT_RULES),
        model=_parse_section(str(config_path), "model", raw.get("model"), ModelConfig, _MODEL_RULES),
        features=_parse_section(str(config_path), "features", raw.get("features"), FeaturesConfig, _FEATURES_RULES),
        monitoring=_parse_section(
            str(config_path), "monitoring", raw.get("monitoring"), MonitoringConfig, _MONITORING_RULES
        ),
        schedules=_parse_section(str(config_path), "schedules", raw.get("schedules"), ScheduleConfig, _SCHEDULE_RULES),
        feature_db_path=feature_db_path,
        feature_store_backend=backend,
        feature_parquet_dir=Path(env["FEATURE_PARQUET_DIR"]).resolve() if env.get("FEATURE_PARQUET_DIR") else None,
        # Beside the DuckDB file it exports from, unless FEAST_REPO_DIR says otherwise: a test's or
        # a simulation's own FEATURE_DB_PATH takes its Feast repository along.
        feast_repo_dir=Path(env.get("FEAST_REPO_DIR") or feature_db_path.parent / "feast").resolve(),
        feast=feast,
        feast_online_store_url=env.get(FEAST_ONLINE_STORE_URL) or None,
        serving=_parse_serving(str(config_path), raw.get("serving"), env),
        report_dir=Path(env.get("BTC_REPORT_DIR") or DEFAULT_REPORT_DIR).resolve(),
        mlflow_tracking_uri=tracking_uri,
        mlflow_registry_uri=env.get("MLFLOW_REGISTRY_URI") or tracking_uri,
        binance_api_url=api_url.rstrip("/") if api_url else None,
        replay_file=Path(env["REPLAY_CANDLES"]).resolve() if env.get("REPLAY_CANDLES") else None,
        mlflow_ui_url=(env.get("MLFLOW_UI_URL") or "http://127.0.0.1:5000").rstrip("/"),
    )


_settings_in_use: ContextVar[Settings | None] = ContextVar("settings_in_use", default=None)


def project_settings() -> Settings:
    """The settings the code location is being built with: those of ``settings_in_use``, else
    the config file and environment (``load_settings``)."""
    return _settings_in_use.get() or load_settings()


@contextmanager
def settings_in_use(settings: Settings | None) -> Iterator[None]:
    """Build the definitions with ``settings`` (a simulation's own store, a test's temp folders)."""
    token = _settings_in_use.set(settings)
    try:
        yield
    finally:
        _settings_in_use.reset(token)
