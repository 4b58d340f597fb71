"""The one typed configuration: ``config/bitcoin_ingest.json`` plus environment overrides.

The environment is the real one over the optional ``.env`` file at the project root. Read once with
``load_settings()``; every problem is one ``ConfigError`` line naming the file (or variable) and the field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin
from urllib.parse import urlsplit

from dotenv.parser import parse_stream
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    InstanceOf,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from btc_lifecycle.adapters.sql_text import is_plain_identifier
from btc_lifecycle.adapters.worker_pool import DEFAULT_VISIBILITY_TIMEOUT_SECONDS
from btc_lifecycle.domain.candles import INTERVAL_MS, SYMBOL_PATTERN, CandleSeries, Market, market_slug
from btc_lifecycle.monitoring.drift import MonitoringConfig

# Defaults sit in the checkout the package runs from (installed editable, as the Makefile does),
# whatever the working directory; paths given in the environment are taken as given.
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "bitcoin_ingest.json"
DEFAULT_FEATURE_DB_PATH = PROJECT_ROOT / "data" / "feature_store" / "bitcoin.duckdb"
DEFAULT_REPORT_DIR = PROJECT_ROOT / "data" / "reports"
DEFAULT_MLFLOW_DIR = PROJECT_ROOT / "data" / "mlflow"
DEFAULT_ENV_FILE = PROJECT_ROOT / ".env"  # BTC_ENV_FILE names another (the tests point it away)
MAX_CANDLES_PER_REQUEST = 1000  # Binance's klines maximum


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type, or out of range."""


def _check(test: Callable[[Any], bool], problem: str) -> AfterValidator:
    """A validator that refuses a value failing ``test`` with ``problem`` ("must be ...")."""

    def check(value: Any) -> Any:
        if not test(value):
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def _one_of(*choices: str) -> AfterValidator:
    return _check(lambda value: value in choices, f"must be one of {', '.join(choices)}")


def _matching(pattern: str, problem: str) -> AfterValidator:
    return _check(lambda value: re.match(pattern, value) is not None, problem)


def is_day(value: str) -> bool:
    """Whether ``value`` is a calendar day written YYYY-MM-DD."""
    try:
        return len(value) == 10 and date.fromisoformat(value) is not None
    except ValueError:
        return False


def _backfill(value: Any) -> int | None:
    """Days of history, or ``"all"`` (None): everything the exchange has."""
    if value == "all":
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError('must be a whole number of days >= 1 or "all"')
    return value


def _port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return int(value)


_NotBlank = _check(lambda value: bool(value.strip()), "must not be empty")
_Cron = Annotated[str, _check(lambda value: len(value.split()) == 5, "must be a 5-field cron string")]
_Backfill = Annotated[int | None, PlainValidator(_backfill)]
_ResolvedPath = Annotated[Path, AfterValidator(Path.resolve)]
_NoTrailingSlash = AfterValidator(lambda url: url.rstrip("/"))
_ARCHIVE_URL = r"^(https?://[^\s/]+|file:///|/)"
LIVE_ARCHIVES = "https://data.binance.vision"


class _Frozen(BaseModel):
    # Strict: a config that says "limit": true or "limit": "1000" is wrong, not coerced.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


# A ccxt exchange id ("binance", "binanceus", "kraken"); the client refuses one ccxt does not know.
_ExchangeId = Annotated[str, _matching(r"^[a-z][a-z0-9]{1,31}$", "must be a ccxt exchange id like 'binance'")]
_Symbol = Annotated[str, _matching(SYMBOL_PATTERN, "must look like 'BTC/USDT'")]
_Interval = Annotated[str, _one_of(*INTERVAL_MS)]


def _tuple_of_list(value: Any) -> Any:
    """A JSON list as the tuple a frozen (hashable) setting holds; anything else is left to fail."""
    return tuple(value) if isinstance(value, list) else value


class MarketConfig(_Frozen):
    """A market ingested beside the main one: an entry of ``more_markets``."""

    exchange: _ExchangeId
    symbol: _Symbol
    interval: _Interval


class IngestConfig(_Frozen):
    """What to ingest and how hard to try: the fields at the top of the config file."""

    # The main market: the one the model, the reports and the serving are about.
    exchange: _ExchangeId
    symbol: _Symbol
    interval: _Interval
    # Markets ingested and checked beside it, each under its own asset group and store tables.
    more_markets: Annotated[tuple[MarketConfig, ...], BeforeValidator(_tuple_of_list)] = ()
    limit: int = Field(ge=1, le=MAX_CANDLES_PER_REQUEST)
    table: Annotated[
        str,
        _check(
            is_plain_identifier,
            "must be a plain SQL identifier (letters, digits, underscore; not starting with a digit)",
        ),
    ]
    backfill_days: _Backfill  # None: everything the exchange has
    request_timeout_seconds: float = Field(10.0, ge=0.1, le=300)
    max_retries: int = Field(5, ge=0, le=20)
    retry_initial_seconds: float = Field(0.5, ge=0, le=60)
    retry_max_seconds: float = Field(30.0, ge=0, le=600)
    # The first UTC day of the daily partitions (Binance listed BTC/USDT on 17 August 2017): the
    # days a person can backfill from the UI. Candles before it are never fetched.
    history_start: Annotated[str, _check(is_day, "must be a day written YYYY-MM-DD")] = "2017-08-17"
    # Data checks on the raw candles: a gap longer than this is a warning (an outage, or a thin
    # market: the gap policy fills only features.max_fill_minutes) ...
    max_gap_minutes: int = Field(60, ge=1, le=10_080)
    # ... and the newest candle may be at most this far behind the exchange's clock at ingest.
    max_lag_minutes: int = Field(15, ge=1, le=10_080)
    # Days before yesterday come from Binance's public kline archives, each checked against its
    # published SHA-256, instead of paging the API. Where they are: an http(s) host in
    # data.binance.vision's layout (a mirror) or an absolute folder path. Unset: BINANCE_ARCHIVE_URL,
    # else BINANCE_API_URL's host (the replay exchange serves both), else data.binance.vision.
    use_archives: bool = True
    archive_url: (
        Annotated[str, _matching(_ARCHIVE_URL, "must be an http(s) URL or an absolute folder path"), _NoTrailingSlash]
        | None
    ) = None

    @field_validator("retry_max_seconds")
    @classmethod
    def _not_below_initial(cls, value: float, info: ValidationInfo) -> float:
        if value < info.data.get("retry_initial_seconds", 0):
            raise ValueError("must not be below 'retry_initial_seconds'")
        return value

    @field_validator("more_markets")
    @classmethod
    def _distinct(cls, markets: tuple[MarketConfig, ...], info: ValidationInfo) -> tuple[MarketConfig, ...]:
        seen = {market_slug(*(info.data.get(name, "") for name in ("exchange", "symbol", "interval")))}
        for number, market in enumerate(markets):
            slug = market_slug(market.exchange, market.symbol, market.interval)
            if slug in seen:
                raise ValueError(f"entry {number} repeats the market {slug}")
            seen.add(slug)
        return markets

    @property
    def series(self) -> CandleSeries:
        return self.market.series

    @property
    def market(self) -> Market:
        """The main market, in the configured table."""
        return Market(self.exchange, self.symbol, self.interval, self.table)

    @property
    def markets(self) -> tuple[Market, ...]:
        """The main market first, then ``more_markets``, each in tables named after it."""
        more = (
            Market(m.exchange, m.symbol, m.interval, f"{self.table}_{market_slug(m.exchange, m.symbol, m.interval)}")
            for m in self.more_markets
        )
        return (self.market, *more)


class ReportConfig(_Frozen):
    keep_last: int = Field(10, ge=1, le=1000)


class FeaturesConfig(_Frozen):
    """The gap policy of the model inputs (docs/ml-method.md)."""

    # Gaps of up to this many candles between two stored ones are trade-less minutes, filled
    # with flat candles; longer gaps (outages) stay gaps. 0 disables filling.
    max_fill_minutes: int = Field(30, ge=0, le=1440)
    # What the model predicts: whether the close this many minutes ahead is higher (whole candles
    # of the interval); unset, the next candle's (the seed's label). The backtest holds each call
    # as long.
    horizon_minutes: int | None = Field(None, ge=1, le=1440)


class CostsConfig(_Frozen):
    """What a trade costs the backtest, per side, in basis points (Binance spot's regular tier)."""

    taker_fee_bps: float = Field(10.0, ge=0, le=1000)
    maker_fee_bps: float = Field(10.0, ge=0, le=1000)
    slippage_bps: float = Field(0.0, ge=0, le=1000)
    fills: Annotated[str, _one_of("taker", "maker")] = "taker"  # market orders pay the taker fee


_ONLINE_STORES = ("sqlite", "postgres", "redis")


class FeastConfig(_Frozen):
    """The serving side of the feature store: the generated Feast repository (docs: README)."""

    project: Annotated[str, _matching(r"^[A-Za-z0-9][A-Za-z0-9_]{0,62}$", "must be letters, digits and '_'")] = (
        "btc_lifecycle"
    )
    # How far back a point-in-time lookup may reach for a candle's row. Feast's join time and
    # memory grow with it: a few candles, no more.
    ttl_minutes: int = Field(5, ge=1, le=1440)
    # sqlite (a file under the repository), or a server named by FEAST_ONLINE_STORE_URL.
    online_store: Annotated[str, _one_of(*_ONLINE_STORES)] = "sqlite"


class ModelConfig(_Frozen):
    """Training, registration and the promotion gate."""

    name: Annotated[str, _matching(r"^[A-Za-z0-9_.-]{1,64}$", "must be letters, digits, '_', '.', '-'")] = (
        "btc_direction"
    )
    # A challenger must beat the champion's held-out log loss by more than the margin, with a
    # paired test's one-sided p-value below alpha (and beat the constant prior at alpha too).
    promotion_margin: float = Field(0.0, ge=0, le=1)
    promotion_alpha: float = Field(0.05, ge=0.0001, le=0.5)
    n_folds: int = Field(5, ge=1, le=20)
    heldout_fraction: float = Field(0.15, ge=0.01, le=0.5)
    train_window_days: float | None = Field(None, ge=0.1, le=3650)  # None: expanding window over all history
    prediction_rows: int = Field(1440, ge=1, le=1_000_000)  # at most this many recent candles scored per run
    # What the paired test at the gate compares per held-out candle: log loss, or the net return
    # of acting long/short on every call after costs.
    gate_metric: Annotated[str, _one_of("log_loss", "net_return")] = "log_loss"


class ScheduleConfig(_Frozen):
    """When the routine runs (cron, UTC), and whether schedules start running on their own."""

    ingestion_cron: _Cron = "*/5 * * * *"
    report_cron: _Cron = "0 6 * * *"
    monitoring_cron: _Cron = "0 * * * *"
    running_by_default: bool = False  # they call live Binance: a person switches them on


class _ServingSection(_Frozen):
    host: Annotated[str, _NotBlank] = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)  # SERVING_PORT overrides it; --port too
    # How often the service asks the registry whether @champion moved; 0: only on POST /reload.
    reload_interval_seconds: float = Field(30.0, ge=0, le=86_400)
    # The service has no authentication: a host that is not loopback is refused unless true.
    allow_remote: bool = False


class ServingConfig(_ServingSection):
    """The online scoring service (``python -m btc_lifecycle.serving``, docs/operations.md)."""

    # SERVING_PREDICTIONS_DB (environment only): the log of served predictions; None: beside the DuckDB file.
    predictions_db: Path | None = None


class _MonitoringSection(_Frozen):
    """The file's ``monitoring`` section: ``MonitoringConfig``'s settable fields, within bounds it accepts."""

    current_window: int = Field(MonitoringConfig.current_window, ge=2, le=1_000_000)
    reference_window: int | None = Field(MonitoringConfig.reference_window, ge=2, le=10_000_000)
    stattest: Annotated[str, _NotBlank] = MonitoringConfig.stattest
    stattest_threshold: float = Field(MonitoringConfig.stattest_threshold, gt=0, le=100)
    drift_share_threshold: float = Field(MonitoringConfig.drift_share_threshold, ge=0, lt=1)
    min_realized_labels: int = Field(MonitoringConfig.min_realized_labels, ge=1, le=1_000_000)
    performance_margin: float = Field(MonitoringConfig.performance_margin, ge=0, le=10)
    retrain_cooldown_hours: float = Field(MonitoringConfig.retrain_cooldown_hours, ge=0, le=24 * 365)


class _Sections(_Frozen):
    """The config file's sections, beside the ingest fields at its top level."""

    report: ReportConfig = ReportConfig()
    features: FeaturesConfig = FeaturesConfig()
    costs: CostsConfig = CostsConfig()
    model: ModelConfig = ModelConfig()
    monitoring: _MonitoringSection = _MonitoringSection()
    schedules: ScheduleConfig = ScheduleConfig()
    feast: FeastConfig = FeastConfig()
    serving: _ServingSection = _ServingSection()


class _Environment(BaseModel):
    """The environment variables the settings read; an empty one counts as unset."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    INGEST_CONFIG: _ResolvedPath = DEFAULT_CONFIG_PATH
    INGEST_BACKFILL_DAYS: _Backfill = None  # overrides backfill_days only when set
    FEATURE_DB_PATH: _ResolvedPath = DEFAULT_FEATURE_DB_PATH
    # duckdb (one embedded file, one writer at a time) or parquet (a file per table and UTC day
    # that DuckDB queries: runs of different days write at the same time).
    FEATURE_STORE_BACKEND: Annotated[str, _one_of("duckdb", "parquet")] = "duckdb"
    FEATURE_PARQUET_DIR: _ResolvedPath | None = None
    BTC_REPORT_DIR: _ResolvedPath = DEFAULT_REPORT_DIR
    MLFLOW_TRACKING_URI: str = f"sqlite:///{DEFAULT_MLFLOW_DIR / 'mlflow.db'}"
    MLFLOW_REGISTRY_URI: str | None = None
    MLFLOW_UI_URL: Annotated[str, _NoTrailingSlash] = "http://127.0.0.1:5000"
    BINANCE_API_URL: (
        Annotated[str, _matching(r"^https?://[^\s/]+", "must be an http(s) URL"), _NoTrailingSlash] | None
    ) = None
    REPLAY_CANDLES: _ResolvedPath | None = None
    BINANCE_ARCHIVE_URL: (
        Annotated[str, _matching(_ARCHIVE_URL, "must be an http(s) URL or an absolute folder path"), _NoTrailingSlash]
        | None
    ) = None
    FEAST_REPO_DIR: _ResolvedPath | None = None
    FEAST_ONLINE_STORE: Annotated[str, _one_of(*_ONLINE_STORES)] | None = None
    FEAST_ONLINE_STORE_URL: str | None = Field(None, repr=False)  # may carry a password: never echoed
    SERVING_PORT: Annotated[int, PlainValidator(_port)] | None = None
    SERVING_PREDICTIONS_DB: _ResolvedPath | None = None
    # The worker pool's broker (Redis): when set, a run's steps execute on Celery workers.
    CELERY_BROKER_URL: (
        Annotated[str, _matching(r"^rediss?://[^\s/]+", "must be a redis:// URL"), _NoTrailingSlash] | None
    ) = Field(None, repr=False)
    # How long a step of a worker host that died waits on the broker before another worker takes it.
    CELERY_VISIBILITY_TIMEOUT: Annotated[int, Field(ge=5, le=7 * 24 * 3600)] = DEFAULT_VISIBILITY_TIMEOUT_SECONDS


class Settings(_Frozen):
    """Everything the code location needs, resolved to absolute paths."""

    config_path: Path
    ingest: IngestConfig
    report: ReportConfig
    model: ModelConfig
    monitoring: InstanceOf[MonitoringConfig]
    schedules: ScheduleConfig
    feature_db_path: Path
    report_dir: Path
    mlflow_tracking_uri: str
    mlflow_registry_uri: str
    feast_repo_dir: Path  # the generated Feast repository: feature_store.yaml, registry, offline Parquet
    binance_api_url: str | None = None
    replay_file: Path | None = None  # the candle file behind BINANCE_API_URL, when replaying
    archive_url: str | None = None  # where the kline archives are; None: ingest pages the API only
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    features: FeaturesConfig = FeaturesConfig()
    costs: CostsConfig = CostsConfig()
    feast: FeastConfig = FeastConfig()
    serving: ServingConfig = ServingConfig()
    # FEAST_ONLINE_STORE_URL: a server online store's connection; a sqlite file path, if set.
    feast_online_store_url: str | None = Field(None, repr=False)
    feature_store_backend: str = "duckdb"  # FEATURE_STORE_BACKEND: duckdb or parquet
    feature_parquet_dir: Path | None = None  # FEATURE_PARQUET_DIR, else beside the DuckDB file
    # CELERY_BROKER_URL: the worker pool's Redis; None runs every step in the run's own process.
    celery_broker_url: str | None = Field(None, repr=False)
    celery_visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS  # CELERY_VISIBILITY_TIMEOUT

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
        """Beside a SQLite tracking store; through a tracking server (http), the server's own
        artifact store, so clients on any host share them; else under data/mlflow."""
        if self.mlflow_tracking_uri.startswith("sqlite:///"):
            return str(Path(self.mlflow_tracking_uri.removeprefix("sqlite:///")).parent / "artifacts")
        if self.mlflow_tracking_uri.startswith(("http://", "https://")):
            return f"mlflow-artifacts:/{self.model.name}"
        return str(DEFAULT_MLFLOW_DIR / "artifacts")

    @property
    def horizon_candles(self) -> int:
        """features.horizon_minutes in candles of the main market's interval (unset: one)."""
        return self.horizon_candles_of(self.ingest.market)

    def model_name_of(self, market: Market) -> str:
        """The registered model (and MLflow experiment) of ``market``: ``model.name`` for the main
        market, ``<model.name>_<slug>`` for each further one, each with its own champion alias."""
        return self.model.name if market == self.ingest.market else f"{self.model.name}_{market.slug}"

    def horizon_candles_of(self, market: Market) -> int:
        """features.horizon_minutes in candles of ``market``'s interval (unset: one)."""
        minutes = self.features.horizon_minutes
        return 1 if minutes is None else minutes * 60_000 // INTERVAL_MS[market.interval]

    def report_dir_of(self, market: Market) -> Path:
        """Where ``market``'s ingestion and drift reports go: the report folder, or a folder per further
        market in it."""
        return self.report_dir if market == self.ingest.market else self.report_dir / market.slug

    @property
    def ingestion_stats_path(self) -> Path:
        """The main market's ingestion stats."""
        return self.ingestion_stats_file(self.ingest.market)

    def ingestion_stats_file(self, market: Market) -> Path:
        """What the latest ingest of ``market`` did (JSON): ``ingestion_stats.json`` for the main
        market, ``ingestion_stats_<slug>.json`` for each further one."""
        name = "ingestion_stats" if market == self.ingest.market else f"ingestion_stats_{market.slug}"
        return self.feature_db_path.parent / f"{name}.json"

    @property
    def online_predictions_path(self) -> Path:
        """The served predictions' SQLite log: SERVING_PREDICTIONS_DB, else beside the DuckDB file."""
        return self.serving.predictions_db or self.feature_db_path.parent / "online_predictions.sqlite"


_TYPE_NAMES = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "model_type": "an object",
}


def _one_line(source: str, model: type[BaseModel], error: ErrorDetails) -> str:
    """Pydantic's first error as ``source: field 'name' problem, got value``."""
    *parents, last = error["loc"]
    for name in parents:
        if isinstance(name, str):  # an int is an index into the list the previous name holds
            model = model.model_fields[name].annotation
            model = get_args(model)[0] if get_origin(model) is tuple else model
    name = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
    if error["type"] == "extra_forbidden":  # the value is not echoed: a misplaced key may be a secret
        return f"{source}: unknown field '{name}' (known: {', '.join(model.model_fields)})"
    field = name if source == "environment" else f"field '{name}'"
    if error["type"] == "missing":
        return f"{source}: {field} is missing"
    rules = model.model_fields[last].metadata if isinstance(last, str) else []
    low, high = (next((getattr(rule, key) for rule in rules if hasattr(rule, key)), None) for key in ("ge", "le"))
    if error["type"] in _TYPE_NAMES:
        problem = f"must be {_TYPE_NAMES[error['type']]}"
    elif error["type"] == "value_error":
        problem = str(error["ctx"]["error"])
    elif error["type"] in ("greater_than_equal", "less_than_equal") and None not in (low, high):
        problem = f"must be between {low} and {high}"
    else:  # the bounds of a half-open range, in pydantic's words
        problem = error["msg"].replace("Input should be", "must be")
    return f"{source}: {field} {problem}, got {error['input']!r}"


Model = TypeVar("Model", bound=BaseModel)


def _validated(model: type[Model], values: dict[str, Any], source: str) -> Model:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ConfigError(_one_line(source, model, error.errors()[0])) from None


def _check_online_store_url(store: str, url: str | None) -> None:
    """``FEAST_ONLINE_STORE_URL`` suits the online store; it is never echoed: it may hold a password."""
    name = "environment: FEAST_ONLINE_STORE_URL"
    if store == "sqlite":
        if url is not None and "://" in url:
            raise ConfigError(
                f"{name} must be a file path for feast.online_store 'sqlite' (or unset: a file in the Feast repository)"
            )
        return
    example = {"postgres": "postgresql://user:password@host:5432/database", "redis": "redis://:password@host:6379/0"}
    if url is None:
        raise ConfigError(f"{name} is required when feast.online_store is {store!r} (e.g. {example[store]})")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    schemes = {"postgres": ("postgresql", "postgres"), "redis": ("redis", "rediss")}[store]
    if parts is None or parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{name} must look like {example[store]} for feast.online_store {store!r}")
    if store == "postgres" and not parts.path.strip("/"):
        raise ConfigError(f"{name} must name the database ({example[store]})")


def _read_config_file(path: Path) -> dict[str, Any]:
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


_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def read_env_file(path: Path) -> dict[str, str]:
    """A ``.env`` file's values (python-dotenv's syntax, no ``${}`` expansion); a missing file is empty.

    A malformed line is a ``ConfigError`` naming the file and the line, never echoing it: it may hold a secret.
    """
    try:
        with path.open(encoding="utf-8") as stream:
            bindings = list(parse_stream(stream))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the .env file ({error})") from None
    values: dict[str, str] = {}
    for binding in bindings:
        if binding.key is None and not binding.error:
            continue  # a blank or comment line
        if binding.error or binding.value is None or not _ENV_KEY.match(binding.key or ""):
            raise ConfigError(
                f"{path}, line {binding.original.line}: expected KEY=VALUE "
                "(KEY: letters, digits and '_', not starting with a digit; a quoted VALUE closes its quote)"
            )
        values[binding.key] = binding.value
    return values


def with_env_file(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` over the ``.env`` file's values (``BTC_ENV_FILE``, else ``.env`` at the project root)."""
    path = environ.get("BTC_ENV_FILE") or os.environ.get("BTC_ENV_FILE") or DEFAULT_ENV_FILE
    return {**read_env_file(Path(path)), **environ}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the config file and the environment (``environ``, else ``os.environ``) once into ``Settings``."""
    merged = with_env_file(dict(os.environ if environ is None else environ))
    env = _validated(_Environment, {name: value for name, value in merged.items() if value}, "environment")
    raw, source = _read_config_file(env.INGEST_CONFIG), str(env.INGEST_CONFIG)
    in_sections = {key: value for key, value in raw.items() if key in _Sections.model_fields}
    ingest = _validated(IngestConfig, {key: raw[key] for key in raw.keys() - in_sections}, source)
    # A section that is null takes its defaults.
    sections = _validated(_Sections, {key: value for key, value in in_sections.items() if value is not None}, source)
    horizon_ms = (sections.features.horizon_minutes or 0) * 60_000
    for market in ingest.markets:
        if horizon_ms % INTERVAL_MS[market.interval]:
            raise ConfigError(
                f"{source}: field 'features.horizon_minutes' must be a whole number of {market.interval} candles "
                f"({market.exchange} {market.symbol}), got {sections.features.horizon_minutes}"
            )
    if "INGEST_BACKFILL_DAYS" in env.model_fields_set:
        ingest = ingest.model_copy(update={"backfill_days": env.INGEST_BACKFILL_DAYS})
    feast = sections.feast.model_copy(update={"online_store": env.FEAST_ONLINE_STORE or sections.feast.online_store})
    _check_online_store_url(feast.online_store, env.FEAST_ONLINE_STORE_URL)
    serving = sections.serving.model_dump() | ({"port": env.SERVING_PORT} if env.SERVING_PORT else {})
    return Settings(
        config_path=env.INGEST_CONFIG,
        ingest=ingest,
        report=sections.report,
        model=sections.model,
        features=sections.features,
        costs=sections.costs,
        monitoring=MonitoringConfig(**sections.monitoring.model_dump()),
        schedules=sections.schedules,
        feature_db_path=env.FEATURE_DB_PATH,
        feature_store_backend=env.FEATURE_STORE_BACKEND,
        feature_parquet_dir=env.FEATURE_PARQUET_DIR,
        # Beside the DuckDB file it exports from, unless FEAST_REPO_DIR says otherwise: a test's or
        # a simulation's own FEATURE_DB_PATH takes its Feast repository along.
        feast_repo_dir=env.FEAST_REPO_DIR or (env.FEATURE_DB_PATH.parent / "feast").resolve(),
        feast=feast,
        feast_online_store_url=env.FEAST_ONLINE_STORE_URL,
        serving=ServingConfig(**serving, predictions_db=env.SERVING_PREDICTIONS_DB),
        report_dir=env.BTC_REPORT_DIR,
        mlflow_tracking_uri=env.MLFLOW_TRACKING_URI,
        mlflow_registry_uri=env.MLFLOW_REGISTRY_URI or env.MLFLOW_TRACKING_URI,
        binance_api_url=env.BINANCE_API_URL,
        replay_file=env.REPLAY_CANDLES,
        archive_url=(
            (env.BINANCE_ARCHIVE_URL or ingest.archive_url or env.BINANCE_API_URL or LIVE_ARCHIVES)
            if ingest.use_archives
            else None
        ),
        mlflow_ui_url=env.MLFLOW_UI_URL,
        celery_broker_url=env.CELERY_BROKER_URL,
        celery_visibility_timeout=env.CELERY_VISIBILITY_TIMEOUT,
    )
