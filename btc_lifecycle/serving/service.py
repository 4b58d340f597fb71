"""What the service answers: a scored candle, its health, a reload; and every refusal.

No HTTP here (``server`` maps paths to these methods): a refusal is a ``ServingError`` carrying
the status and a message that names what was wrong, or what to run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from btc_lifecycle.domain.candles import INTERVAL_MS
from btc_lifecycle.serving.champion import ChampionWatcher, Clock, utc_now
from btc_lifecycle.serving.online_features import FeatureSource, OnlineStoreUnavailable
from btc_lifecycle.serving.prediction_log import PredictionLog, ServedPrediction

PREDICT_PARAMETERS = ("symbol", "interval")
_SYMBOL = re.compile(r"^[A-Z0-9]{2,12}/[A-Z0-9]{2,12}$")  # config.py's rule for the configured symbol
DEFAULT_FEATURES_HINT = "run `make run` (or `make demo`): it materializes the newest closed candles to the online store"


class ServingError(Exception):
    """A request the service cannot answer: the HTTP status and what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Market:
    symbol: str
    interval: str

    def __str__(self) -> str:
        return f"{self.symbol} {self.interval}"


class ScoringService:
    """Scores the newest online candle of a served market with the current champion, and logs it."""

    def __init__(
        self,
        markets: Sequence[Market],
        source: FeatureSource,
        watcher: ChampionWatcher,
        log: PredictionLog | None,
        feature_columns: Sequence[str],
        clock: Clock = utc_now,
        features_hint: str = DEFAULT_FEATURES_HINT,
    ) -> None:
        if not markets:
            raise ValueError("the service needs at least one market to serve")
        self.markets = tuple(markets)
        self.source = source
        self.watcher = watcher
        self.log = log
        self.feature_columns = tuple(feature_columns)
        self.clock = clock
        self.features_hint = features_hint

    def market(self, parameters: Mapping[str, Any]) -> Market:
        """The market a request names: ``symbol`` (required) and ``interval`` (optional)."""
        unknown = sorted(set(parameters) - set(PREDICT_PARAMETERS))
        if unknown:
            raise ServingError(400, f"unknown parameter {unknown[0]!r} (known: {', '.join(PREDICT_PARAMETERS)})")
        symbol = parameters.get("symbol")
        if symbol is None or symbol == "":
            raise ServingError(400, f"missing parameter 'symbol' (e.g. symbol={self.markets[0].symbol})")
        if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
            raise ServingError(400, f"malformed symbol {symbol!r}: write BASE/QUOTE in capitals, e.g. BTC/USDT")
        served = [market for market in self.markets if market.symbol == symbol]
        if not served:
            names = ", ".join(sorted({market.symbol for market in self.markets}))
            raise ServingError(404, f"unknown symbol {symbol!r}: this service serves {names}")
        interval = parameters.get("interval")
        if interval is None or interval == "":
            return served[0]
        if not isinstance(interval, str):
            raise ServingError(400, f"malformed interval {interval!r}: a string such as '1m'")
        for market in served:
            if market.interval == interval:
                return market
        intervals = ", ".join(market.interval for market in served)
        raise ServingError(404, f"unknown interval {interval!r} for {symbol}: this service serves {intervals}")

    def predict(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """The champion's P(the close a label horizon later is higher) for the market's newest online candle."""
        market = self.market(parameters)
        champion = self.watcher.current
        if champion is None:
            outcome = self.watcher.last_outcome
            reason = outcome.error if outcome is not None and outcome.error else "the champion is not loaded yet"
            raise ServingError(503, f"no champion to score with: {reason}")
        try:
            online = self.source.latest(market.symbol, market.interval)
        except OnlineStoreUnavailable as error:
            raise ServingError(503, f"the online store cannot be read: {error}") from None
        if online is None:
            raise ServingError(503, f"no online features for {market} yet: {self.features_hint}")
        missing = [name for name in self.feature_columns if name not in online.values]
        if missing:
            raise ServingError(
                503,
                f"the online store lacks feature(s) {', '.join(missing)} that this code computes: {self.features_hint}",
            )
        row = [online.values[name] for name in self.feature_columns]
        incomplete = [
            name
            for name, value in zip(self.feature_columns, row, strict=True)
            if value is None or not math.isfinite(value)
        ]
        if incomplete:
            raise ServingError(
                503,
                f"the newest online candle of {market} ({online.open_time.isoformat()}) has no value for "
                f"{', '.join(incomplete)}: its window reaches across a gap in the candles; it is scored again "
                "once the next complete candle is materialized",
            )
        up_probability = champion.up_probability(row)
        served_at = self.clock()
        if self.log is not None:
            served = ServedPrediction(
                served_at,
                market.symbol,
                market.interval,
                online.open_time,
                champion.name,
                champion.version,
                up_probability,
            )
            self.log.append(served)
        closed_at = online.open_time + timedelta(milliseconds=INTERVAL_MS[market.interval])
        return {
            "symbol": market.symbol,
            "interval": market.interval,
            "up_probability": up_probability,
            "model": {"name": champion.name, "version": champion.version},
            "open_time": online.open_time.isoformat(),
            "features": dict(zip(self.feature_columns, (float(value) for value in row), strict=True)),
            "served_at": served_at.isoformat(),
            "feature_age_seconds": round((served_at - closed_at).total_seconds(), 3),
        }

    def health(self) -> tuple[int, dict[str, Any]]:
        """200 when a champion is loaded and every market has online features, else 503."""
        problems = []
        champion = self.watcher.current
        outcome = self.watcher.last_outcome
        if champion is None:
            problems.append(f"no champion loaded: {outcome.error if outcome and outcome.error else 'not checked yet'}")
        markets, reachable = {}, True
        for market in self.markets:
            try:
                online = self.source.latest(market.symbol, market.interval)
            except OnlineStoreUnavailable as error:
                reachable = False
                markets[str(market)] = {"latest_open_time": None}
                problems.append(f"online store unreachable: {error}")
                continue
            markets[str(market)] = {"latest_open_time": online.open_time.isoformat() if online else None}
            if online is None:
                problems.append(f"no online features for {market} yet: {self.features_hint}")
        body = {
            "status": "ok" if not problems else "degraded",
            "model": {
                "name": self.watcher.loader.model_name,
                "version": champion.version if champion else None,
                "loaded_at": champion.loaded_at.isoformat() if champion else None,
                "last_check": outcome.as_dict() if outcome else None,
                "reload_interval_seconds": self.watcher.interval_seconds,
            },
            "online_store": {"reachable": reachable, "source": self.source.describe(), "markets": markets},
            "prediction_log": str(self.log.path) if self.log is not None else None,
            "problems": problems,
        }
        return (200 if not problems else 503), body

    def reload(self) -> tuple[int, dict[str, Any]]:
        """Check the champion alias now; 503 when no champion could be loaded."""
        outcome = self.watcher.check()
        body = outcome.as_dict()
        status = 503 if outcome.error and self.watcher.current is None else 200
        return status, body
