"""Every prediction the service serves, in a SQLite file of its own (WAL mode).

Not the DuckDB feature store: DuckDB admits one writing process per file, and Dagster runs write
it. SQLite in WAL mode lets the service append while the monitoring asset reads. One row per
answered request; the monitoring asset reduces them (``monitoring.performance.with_online_predictions``).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

TABLE = "online_predictions"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    served_at_ms INTEGER NOT NULL,   -- when the answer was given, epoch ms UTC
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    open_time_ms INTEGER NOT NULL,   -- the candle whose features were scored, epoch ms UTC
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    up_probability REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_market_time ON {TABLE} (symbol, interval, open_time_ms);
"""
# What read_online_predictions returns, times as UTC timestamps.
ONLINE_COLUMNS = ("served_at", "symbol", "interval", "open_time", "model_name", "model_version", "up_probability")


@dataclass(frozen=True)
class ServedPrediction:
    served_at: datetime
    symbol: str
    interval: str
    open_time: datetime
    model_name: str
    model_version: str
    up_probability: float


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


class PredictionLog:
    """Appends served predictions; one connection shared by the server's threads, under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 5000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        # WAL with synchronous=NORMAL: a commit is durable against a crash of the service, and
        # skips the fsync per request (a power loss may lose the last few rows).
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(_SCHEMA)

    def append(self, prediction: ServedPrediction) -> None:
        row = (
            _epoch_ms(prediction.served_at),
            prediction.symbol,
            prediction.interval,
            _epoch_ms(prediction.open_time),
            prediction.model_name,
            prediction.model_version,
            float(prediction.up_probability),
        )
        with self._lock:
            self._conn.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    def count(self) -> int:
        with self._lock:
            return self._conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def read_online_predictions(path: Path, symbol: str, interval: str) -> pd.DataFrame | None:
    """The market's served predictions in serving order, or None when nothing was ever served."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        return None
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [TABLE]).fetchone()
        if not exists:
            return None
        rows = conn.execute(
            f"SELECT served_at_ms, symbol, interval, open_time_ms, model_name, model_version, up_probability "
            f"FROM {TABLE} WHERE symbol = ? AND interval = ? ORDER BY served_at_ms, rowid",
            [symbol, interval],
        ).fetchall()
    finally:
        conn.close()
    frame = pd.DataFrame(rows, columns=list(ONLINE_COLUMNS))
    for column in ("served_at", "open_time"):
        frame[column] = pd.to_datetime(frame[column].astype("int64"), unit="ms", utc=True)
    frame["model_version"] = frame["model_version"].astype(str)
    frame["up_probability"] = frame["up_probability"].astype("float64")
    return frame
