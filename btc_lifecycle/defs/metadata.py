"""Dagster's standard metadata for the feature store's tables (row count, table name, columns)."""

from __future__ import annotations

import dagster as dg

from btc_lifecycle.config import Settings


def _columns(*columns: tuple[str, str, str]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name, type_, description=description) for name, type_, description in columns]
    )


_KEY_AND_PRICES = (
    ("symbol", "VARCHAR", "ccxt symbol, e.g. BTC/USDT"),
    ("interval", "VARCHAR", "candle interval, e.g. 1m"),
    ("open_time", "TIMESTAMP", "candle open, naive UTC; with symbol and interval the primary key"),
    ("open", "DOUBLE", "first trade price"),
    ("high", "DOUBLE", "highest trade price"),
    ("low", "DOUBLE", "lowest trade price"),
    ("close", "DOUBLE", "last trade price"),
    ("volume", "DOUBLE", "base asset volume"),
    ("close_time", "TIMESTAMP", "candle close, naive UTC"),
    ("quote_volume", "DOUBLE", "quote asset volume (Binance klines)"),
    ("trades", "DOUBLE", "number of trades (Binance klines)"),
    ("taker_buy_base_volume", "DOUBLE", "taker buy base volume (Binance klines)"),
    ("taker_buy_quote_volume", "DOUBLE", "taker buy quote volume (Binance klines)"),
)
CANDLE_SCHEMA = _columns(*_KEY_AND_PRICES)
LABELED_SCHEMA = _columns(
    *_KEY_AND_PRICES,
    ("price_increase_label", "TINYINT", "1 if close > previous minute's close, 0 if not; NULL without one"),
)


def table_metadata(settings: Settings, table: str, rows: int) -> dict[str, object]:
    """``dagster/row_count`` (rows this materialization wrote) and ``dagster/table_name``."""
    return {"dagster/row_count": int(rows), "dagster/table_name": f"{settings.feature_store_location.name}:{table}"}
