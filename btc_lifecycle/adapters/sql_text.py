"""SQL text the adapters build themselves: values are bound as parameters everywhere DuckDB lets
them be; what is left is identifiers, checked here, and file paths in the two statements DuckDB
cannot prepare (a view's definition, ``COPY ... TO``), written as quoted string literals."""

from __future__ import annotations

import re
from pathlib import Path

# Every stored table's key: the series (symbol, interval) and the candle's open time.
KEY_COLUMNS = ("symbol", "interval", "open_time")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def is_plain_identifier(name: str) -> bool:
    """A letter or underscore, then up to 62 letters, digits or underscores."""
    return bool(_IDENTIFIER.match(name))


def checked_identifier(name: str) -> str:
    """``name`` quoted for SQL, after checking it is a plain identifier."""
    if not is_plain_identifier(name):
        raise ValueError(f"table name {name!r} is not a plain SQL identifier")
    return f'"{name}"'


def string_literal(text: str | Path) -> str:
    """``text`` as a SQL string literal, each quote doubled (standard SQL, DuckDB's own rule).

    Only for statements DuckDB cannot prepare with a ``?`` parameter."""
    return "'" + str(text).replace("'", "''") + "'"
