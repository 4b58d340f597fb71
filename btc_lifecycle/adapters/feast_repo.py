"""The Feast feature repository, generated from the project's own definitions.

Feast serves what the DuckDB feature store computes; it computes nothing itself:

- the entity is the market, one join key ``market`` = ``"BTC/USDT@1m"`` (``market_key``): Feast
  entities have one join key each, and a market is what a lookup names;
- one feature view, ``candle_features``, whose schema is FEATURE_COLUMNS (no second list);
- its offline source is a Parquet export of the features table, one file per UTC day like the
  daily partitions (``offline/<table>/day=YYYY-MM-DD/part.parquet``), read by Feast's ``duckdb``
  offline store (it reads Parquet, not DuckDB tables);
- a file registry and, by default, a SQLite online store in the repository's folder;
  ``feature_store.yaml`` is rendered from the settings (``feast`` section, FEAST_REPO_DIR,
  FEAST_ONLINE_STORE, FEAST_ONLINE_STORE_URL), so a server online store is a configuration change.

The event time of a row is the candle's open time, as in the features table: a candle's features
are known at its close, and only closed candles are stored, so the newest exported row is the
newest closed candle. Labels are not features: training passes ``target`` through the entity rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from feast import FeatureStore

    from btc_lifecycle.config import Settings

from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.quality import CheckOutcome
from btc_lifecycle.modelling.feature_parity import online_matches_offline, same_feature_values
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, TARGET_COLUMN, TRAINABLE_COLUMN

MARKET = "market"  # the entity and its join key
FEATURE_VIEW = "candle_features"
EVENT_TIME = "open_time"
PART_FILE = "part.parquet"
# Feast's entity rows carry their time here; nanosecond precision crashes the duckdb store.
_ENTITY_TIME = "event_timestamp"
_ROW = "entity_row"  # restores the request's row order, which Feast does not keep


class OnlineRow(NamedTuple):
    """A market's newest candle in the online store: its open time and feature values."""

    event_time: pd.Timestamp
    values: dict[str, float]  # FEATURE_COLUMNS order; a missing value is NaN


@dataclass(frozen=True)
class Materialization:
    """What one ``materialize`` call moved to the online store."""

    start: pd.Timestamp | None  # the event-time window read, both ends included
    end: pd.Timestamp | None  # the open time of the newest closed candle exported
    candles_read: int  # exported rows in the window
    online_rows: int  # rows written: one per market, its newest candle in the window


@dataclass(frozen=True)
class FeastRepo:
    """Where the generated repository lives and what it declares."""

    repo_dir: Path
    project: str
    series: CandleSeries
    ttl: timedelta
    online_store: dict[str, Any] = field(repr=False)  # feature_store.yaml's section: may hold a password
    feature_columns: tuple[str, ...] = FEATURE_COLUMNS

    @property
    def yaml_path(self) -> Path:
        return self.repo_dir / "feature_store.yaml"

    @property
    def registry_path(self) -> Path:
        return self.repo_dir / "registry.db"

    @property
    def offline_dir(self) -> Path:
        return self.repo_dir / "offline" / self.series.features_table

    @property
    def source_glob(self) -> str:
        return str(self.offline_dir / "day=*" / PART_FILE)

    @property
    def market(self) -> str:
        return market_key(self.series)

    def day_file(self, day: pd.Timestamp) -> Path:
        return self.offline_dir / f"day={day:%Y-%m-%d}" / PART_FILE


def market_key(series: CandleSeries) -> str:
    """The entity key of a series' market: ``BTC/USDT@1m``."""
    return f"{series.symbol}@{series.interval}"


def feast_repo(settings: Settings, feature_columns: Sequence[str] = FEATURE_COLUMNS) -> FeastRepo:
    """The repository the settings describe (``feature_columns`` for a test's other features)."""
    return FeastRepo(
        repo_dir=settings.feast_repo_dir,
        project=settings.feast.project,
        series=settings.ingest.series,
        ttl=timedelta(minutes=settings.feast.ttl_minutes),
        online_store=online_store_section(
            settings.feast.online_store, settings.feast_online_store_url, settings.feast_repo_dir
        ),
        feature_columns=tuple(feature_columns),
    )


def online_store_section(store: str, url: str | None, repo_dir: Path) -> dict[str, Any]:
    """``feature_store.yaml``'s ``online_store`` for a store type and FEAST_ONLINE_STORE_URL
    (checked by ``btc_lifecycle.config``): the only place that knows Feast's field names."""
    if store == "sqlite":
        return {"type": "sqlite", "path": str(Path(url).resolve() if url else repo_dir / "online_store.db")}
    parts = urlsplit(url or "")
    password = unquote(parts.password) if parts.password else None
    if store == "postgres":
        query = dict(parse_qsl(parts.query))
        return {
            "type": "postgres",
            "host": parts.hostname,
            "port": parts.port or 5432,
            "database": unquote(parts.path.strip("/")),
            "db_schema": query.get("schema", "public"),
            "user": unquote(parts.username or ""),
            "password": password or "",
            # What the URL means to psql: libpq's default, where Feast's own would be "require".
            "sslmode": query.get("sslmode", "prefer"),
        }
    if store == "redis":
        # Feast's own format: host:port followed by redis-py options.
        options = [f"{parts.hostname}:{parts.port or 6379}"]
        if parts.path.strip("/"):
            options.append(f"db={parts.path.strip('/')}")
        if password:
            options.append(f"password={password}")
        if parts.scheme == "rediss":
            options.append("ssl=true")
        return {"type": "redis", "redis_type": "redis", "connection_string": ",".join(options)}
    raise ValueError(f"online store {store!r} is not one of sqlite, postgres, redis")


def render_feature_store_yaml(repo: FeastRepo) -> str:
    """``feature_store.yaml``: file registry, the online store, the duckdb offline store."""
    import yaml

    config = {
        "project": repo.project,
        "provider": "local",
        "registry": {"registry_type": "file", "path": str(repo.registry_path)},
        "online_store": repo.online_store,
        "offline_store": {"type": "duckdb"},
        "entity_key_serialization_version": 3,
    }
    header = (
        "# Generated by btc_lifecycle.adapters.feast_repo from config/bitcoin_ingest.json and the environment\n"
        "# (FEAST_REPO_DIR, FEAST_ONLINE_STORE, FEAST_ONLINE_STORE_URL): edit those, not this file.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False)


def write_repository(repo: FeastRepo) -> Path:
    """Write ``feature_store.yaml`` (owner-only: a server store's password is in it) atomically."""
    repo.repo_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(repo.yaml_path, render_feature_store_yaml(repo).encode(), mode=0o600)
    return repo.yaml_path


def open_store(repo: FeastRepo) -> FeatureStore:
    """Feast's ``FeatureStore`` over the repository, its ``feature_store.yaml`` rendered first."""
    from feast import FeatureStore

    write_repository(repo)
    return FeatureStore(repo_path=str(repo.repo_dir))


def repository_objects(repo: FeastRepo) -> list:
    """The entity, the Parquet source and the feature view, built from ``repo.feature_columns``."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.data_format import ParquetFormat
    from feast.types import Float64

    market = Entity(
        name=MARKET,
        join_keys=[MARKET],
        value_type=ValueType.STRING,
        description="A traded pair at one candle interval, written SYMBOL@INTERVAL (BTC/USDT@1m).",
    )
    source = FileSource(
        name=f"{repo.series.features_table}_parquet",
        path=repo.source_glob,
        file_format=ParquetFormat(),
        timestamp_field=EVENT_TIME,
        description=f"The DuckDB table {repo.series.features_table}, exported one Parquet file per UTC day.",
    )
    view = FeatureView(
        name=FEATURE_VIEW,
        entities=[market],
        ttl=repo.ttl,
        schema=[Field(name=name, dtype=Float64) for name in repo.feature_columns],
        source=source,
        online=True,
        description="The model's inputs, known at each candle's close (btc_lifecycle.modelling.features).",
        tags={"generated_from": "btc_lifecycle.modelling.features.FEATURE_COLUMNS"},
    )
    return [market, source, view]


def apply(store: FeatureStore, repo: FeastRepo) -> list[str]:
    """Register the repository's objects (idempotent); returns their names."""
    objects = repository_objects(repo)
    store.apply(objects)
    return [obj.name for obj in objects]


def export_days(repo: FeastRepo, features: pd.DataFrame, start, end) -> int:
    """Make the offline Parquet of each UTC day in [start, end) exactly ``features``' rows of that
    day; returns the rows exported. A day without rows loses its file.

    Each day's file is replaced atomically (temp file, then ``os.replace``): a reader (Feast, a
    running materialization) sees the old day or the new one, never half of one.
    """
    start, end = _utc(start), _utc(end)
    times = pd.to_datetime(features[EVENT_TIME], utc=True)
    if len(times) and (times.min() < start or times.max() >= end):
        raise ValueError(
            f"features from {times.min().isoformat()} to {times.max().isoformat()} fall outside the days "
            f"[{start.isoformat()}, {end.isoformat()}) being exported"
        )
    missing = [name for name in repo.feature_columns if name not in features.columns]
    if missing:
        raise ValueError(f"the features lack the column(s) {', '.join(missing)} the feature view declares")
    exported = 0
    # The whole range converted to Arrow once, in time order; each day is a slice found by binary
    # search (a mask and a conversion per day cost a year's export 365 passes over its rows).
    nanoseconds = times.dt.tz_localize(None).to_numpy("datetime64[ns]").astype("int64")
    order = np.argsort(nanoseconds, kind="stable")
    sorted_ns = nanoseconds[order]
    table = _offline_table(repo, features.iloc[order])
    for day in pd.date_range(start.floor("D"), end, freq="D", inclusive="left"):
        first, last = np.searchsorted(sorted_ns, [day.value, (day + pd.Timedelta(days=1)).value])
        path = repo.day_file(day)
        if first == last:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = pa.BufferOutputStream()
        pq.write_table(table.slice(first, last - first), sink)
        _write_atomically(path, sink.getvalue().to_pybytes())
        exported += int(last - first)
    return exported


def _offline_table(repo: FeastRepo, rows: pd.DataFrame) -> pa.Table:
    """The Parquet rows: the market key, the series, µs UTC open time, features, target, flag."""
    columns: dict[str, Any] = {
        MARKET: pa.array([repo.market] * len(rows), pa.string()),
        "symbol": pa.array([repo.series.symbol] * len(rows), pa.string()),
        "interval": pa.array([repo.series.interval] * len(rows), pa.string()),
        EVENT_TIME: pa.array(_micro_utc(rows[EVENT_TIME]), pa.timestamp("us", tz="UTC")),
    }
    for name in repo.feature_columns:
        # NaN (an incomplete window) stays NaN: Feast hands it back as it was stored.
        columns[name] = pa.array(rows[name].to_numpy(dtype="float64"), pa.float64(), from_pandas=False)
    if TARGET_COLUMN in rows:
        columns[TARGET_COLUMN] = pa.array(rows[TARGET_COLUMN].astype("Int8"), pa.int8())
    if TRAINABLE_COLUMN in rows:
        columns[TRAINABLE_COLUMN] = pa.array(rows[TRAINABLE_COLUMN].astype(bool), pa.bool_())
    return pa.table(columns)


def exported_days(repo: FeastRepo) -> list[str]:
    """The UTC days (YYYY-MM-DD) the offline source holds, oldest first."""
    if not repo.offline_dir.is_dir():
        return []
    return sorted(p.parent.name.removeprefix("day=") for p in repo.offline_dir.glob(f"day=*/{PART_FILE}"))


def read_offline(repo: FeastRepo, start=None, end=None) -> pd.DataFrame:
    """The exported rows with open time in [start, end] (both ends included), in time order."""
    days = exported_days(repo)
    if start is not None:
        days = [day for day in days if day >= f"{_utc(start):%Y-%m-%d}"]
    if end is not None:
        days = [day for day in days if day <= f"{_utc(end):%Y-%m-%d}"]
    if not days:
        return pd.DataFrame(columns=[MARKET, EVENT_TIME, *repo.feature_columns])
    frame = pa.concat_tables([pq.read_table(repo.day_file(pd.Timestamp(day))) for day in days]).to_pandas()
    times = frame[EVENT_TIME]
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= (times >= _utc(start)).to_numpy()
    if end is not None:
        keep &= (times <= _utc(end)).to_numpy()
    return frame.loc[keep].sort_values(EVENT_TIME, kind="stable").reset_index(drop=True)


def last_exported_open_time(repo: FeastRepo) -> pd.Timestamp | None:
    """The open time of the newest exported candle: the newest closed one (only those are stored)."""
    days = exported_days(repo)
    if not days:
        return None
    times = pq.read_table(repo.day_file(pd.Timestamp(days[-1])), columns=[EVENT_TIME]).to_pandas()[EVENT_TIME]
    return _utc(times.max())


def materialize(store: FeatureStore, repo: FeastRepo, until=None) -> Materialization:
    """Move the newest closed candle to the online store, incrementally.

    The window is [the previous call's end, ``until``] in event (open) time, ``until`` defaulting to
    the open time of the newest exported candle. Not ``now()``, as Feast's examples do: a candle
    whose open time lies before ``now()`` but that closed (and was exported) after the call would
    fall before the next window's start and never reach the online store. The first call reads
    one ttl back; a window whose end moved backwards (the export was rebuilt) too.
    """
    end = last_exported_open_time(repo) if until is None else _utc(until)
    if end is None:
        return Materialization(start=None, end=None, candles_read=0, online_rows=0)
    previous = store.get_feature_view(FEATURE_VIEW).most_recent_end_time
    start = _utc(previous) if previous is not None and _utc(previous) <= end else end - repo.ttl
    candles = len(read_offline(repo, start, end))
    store.materialize(start_date=start.to_pydatetime(), end_date=end.to_pydatetime(), feature_views=[FEATURE_VIEW])
    return Materialization(start=start, end=end, candles_read=candles, online_rows=1 if candles else 0)


def read_online(
    store: FeatureStore, series: CandleSeries, columns: Sequence[str] = FEATURE_COLUMNS
) -> OnlineRow | None:
    """The market's newest candle in the online store, values in ``columns``' order (Feast's
    response keeps no order); None when the store holds nothing for the market."""
    response = store.get_online_features(
        features=[f"{FEATURE_VIEW}:{name}" for name in columns], entity_rows=[{MARKET: market_key(series)}]
    ).to_dict(include_event_timestamps=True)
    seconds = max((response[f"{name}__ts"][0] or 0) for name in columns) if columns else 0
    if not seconds:
        return None
    values = {name: _float_or_nan(response[name][0]) for name in columns}
    return OnlineRow(pd.Timestamp(seconds, unit="s", tz="UTC"), values)


def historical_features(
    store: FeatureStore, series: CandleSeries, entity_rows: pd.DataFrame, columns: Sequence[str] = FEATURE_COLUMNS
) -> pd.DataFrame:
    """Feast's point-in-time rows for ``entity_rows`` (``open_time`` and any columns to pass
    through, e.g. the target): ``open_time``, those columns, then ``columns``, in the rows' order.

    Times are sent at µs precision: the duckdb offline store crashes on nanoseconds.
    """
    if EVENT_TIME not in entity_rows:
        raise ValueError("the entity rows lack the column open_time")
    rows = entity_rows.reset_index(drop=True)
    passed = [name for name in rows.columns if name != EVENT_TIME]
    request = rows[passed].copy()
    request[MARKET] = market_key(series)
    request[_ENTITY_TIME] = _micro_utc(rows[EVENT_TIME])
    request[_ROW] = np.arange(len(rows))
    result = store.get_historical_features(
        entity_df=request, features=[f"{FEATURE_VIEW}:{name}" for name in columns]
    ).to_df()
    result = result.sort_values(_ROW, kind="stable").reset_index(drop=True)
    frame = pd.DataFrame({EVENT_TIME: pd.to_datetime(rows[EVENT_TIME], utc=True)})
    for name in [*passed, *columns]:
        frame[name] = result[name].to_numpy()
    return frame


def training_parity(
    store: FeatureStore, series: CandleSeries, features: pd.DataFrame, columns: Sequence[str] = FEATURE_COLUMNS
) -> CheckOutcome:
    """The training set Feast returns for the trainable rows of ``features`` (the features
    table's rows) equals those rows, value for value, target included."""
    training = features.loc[features[TRAINABLE_COLUMN].astype(bool), [EVENT_TIME, TARGET_COLUMN, *columns]]
    if training.empty:
        return CheckOutcome(True, "No trainable candle among the rows judged: no training set to compare.", {})
    served = historical_features(store, series, training[[EVENT_TIME, TARGET_COLUMN]], columns)
    return same_feature_values(
        training,
        served,
        [*columns, TARGET_COLUMN],
        expected_name="the features table",
        actual_name="Feast's training set",
    )


def online_parity(
    store: FeatureStore, repo: FeastRepo, features: pd.DataFrame, columns: Sequence[str] = FEATURE_COLUMNS
) -> CheckOutcome:
    """The online row equals both the features table's row (``features``) and Feast's offline
    row for the same candle, and it is the newest exported candle."""
    online = read_online(store, repo.series, columns)
    newest = last_exported_open_time(repo)
    offline = None
    if online is not None:
        offline = historical_features(store, repo.series, pd.DataFrame({EVENT_TIME: [online.event_time]}), columns)
    return online_matches_offline(online, newest, features, offline, columns)


class OnlineSync(NamedTuple):
    """What ``sync_online`` did: the objects applied, the materialization, the newest online row."""

    repo: FeastRepo
    applied: list[str]
    materialization: Materialization
    online: OnlineRow | None


def sync_online(settings: Settings) -> OnlineSync:
    """Apply the repository the settings describe and materialize its newest closed candles.

    Takes settings, not a store, so that the run's warm worker can do it: Feast's import (about
    4 s) then happens there, beside the run's first steps, not in the step.
    """
    repo = feast_repo(settings)
    store = open_store(repo)
    applied = apply(store, repo)
    done = materialize(store, repo)
    return OnlineSync(repo, applied, done, read_online(store, repo.series, repo.feature_columns))


def parities(settings: Settings, table: pd.DataFrame, newest_rows: pd.DataFrame) -> tuple[CheckOutcome, CheckOutcome]:
    """``training_parity`` on ``table`` and ``online_parity`` on ``newest_rows`` (the features
    table's rows from the newest exported candle on), for the repository the settings describe."""
    repo = feast_repo(settings)
    store = open_store(repo)
    return (
        training_parity(store, repo.series, table, repo.feature_columns),
        online_parity(store, repo, newest_rows, repo.feature_columns),
    )


def _float_or_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _utc(moment) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _micro_utc(times: Iterable) -> pd.Series:
    """UTC times rounded to microseconds, at µs resolution."""
    return pd.Series(pd.to_datetime(pd.Series(times), utc=True)).dt.round("us").astype("datetime64[us, UTC]")


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """``data`` at ``path`` by a temp file in the same folder and ``os.replace``; the temp name
    does not end in .parquet, so the source's glob never reads a half-written file."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
