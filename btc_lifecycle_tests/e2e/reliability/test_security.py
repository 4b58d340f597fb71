"""Security: parameterized SQL, API keys only from the environment, loopback-only servers.

A planted API key found nowhere after the whole graph, and no pickled model, are specified on the
graph's own run in e2e/test_graph.py; escaping of config and data strings in the HTML/PDF report in
reporting/test_ingestion_report.py (test_hostile_symbol_is_text_in_the_pdf_and_escaped_in_the_html).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from btc_lifecycle.adapters.exchange import make_ccxt_client
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle.replay_exchange.__main__ import parse_arguments
from btc_lifecycle.resources import CandleExchangeResource
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT

PACKAGE = REPO_ROOT / "btc_lifecycle"
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|FROM|WHERE|JOIN|TABLE|SET)\b")
# Interpolations reviewed as safe: values are never among them, only identifiers and SQL text
# the code itself builds (column lists from constants, clauses holding only '?' placeholders).
# Keyed by (file, function, expression): the same name elsewhere is not reviewed.
REVIEWED = {
    # range_clause(): only ' AND open_time >= ?'-style text, values bound
    ("btc_lifecycle/adapters/feature_store.py", "read_candles", "clause"),
    ("btc_lifecycle/feature_engineering.py", "load_candles_from_duckdb", "clause"),
    # read_table(): callers pass literal SQL with '?' placeholders
    ("btc_lifecycle/adapters/feature_store.py", "read_table", "where"),
    ("btc_lifecycle/adapters/feature_store.py", "upsert_candles", "values"),  # ', '.join(CANDLE_COLUMNS)
    ("btc_lifecycle/adapters/feature_store.py", "ensure_labeled_table", "LABEL_COLUMN"),
    ("btc_lifecycle/adapters/feature_store.py", "stored_label_summary", "LABEL_COLUMN"),
    ("btc_lifecycle/adapters/feature_store.py", "replace_candles_between", "values"),  # ', '.join(CANDLE_COLUMNS)
    # CANDLE_COLUMNS and LABEL_COLUMN
    ("btc_lifecycle/adapters/feature_store.py", "replace_labeled_between", "columns"),
    # the feature frame's own columns (compute_features' names), each double-quoted
    ("btc_lifecycle/adapters/feature_store.py", "replace_features_between", "columns"),
    # the Parquet store's sort order: the names of KEY_COLUMNS its table has
    ("btc_lifecycle/adapters/parquet_store.py", "_add_day_files", "order"),
    # the Parquet store's view: its day files' paths, each through string_literal
    ("btc_lifecycle/adapters/parquet_store.py", "refresh_views", "listed"),
}
# A file path in the two statements DuckDB cannot prepare (a view's definition, COPY's target) is
# written by sql_text.string_literal, which doubles every quote.
ESCAPED = "string_literal("


def _checked_names(function: ast.AST) -> set[str]:
    """Names assigned from checked_identifier(...) (or a *_table()/f-string of checked parts) in ``function``."""
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            called = ast.unparse(node.value.func)
            if called.endswith(("checked_identifier", "string_literal")):
                names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
    return names


def _constants(tree: ast.Module) -> set[str]:
    """Module-level UPPER_CASE (or _UPPER_CASE) names: built from literals and constants."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name) and t.id.lstrip("_").isupper()}
    return names


SQL_FSTRINGS_SEEN = [0]


def unsafe_sql_interpolations(root: Path = PACKAGE) -> list[str]:
    found = []
    SQL_FSTRINGS_SEEN[0] = 0
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        constants = _constants(tree)
        functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for function in functions:
            checked = _checked_names(function)
            for node in ast.walk(function):
                if not isinstance(node, ast.JoinedStr):
                    continue
                text = "".join(part.value for part in node.values if isinstance(part, ast.Constant))
                if not SQL.search(text):
                    continue
                SQL_FSTRINGS_SEEN[0] += 1
                for part in node.values:
                    if not isinstance(part, ast.FormattedValue):
                        continue
                    expression = ast.unparse(part.value)
                    safe = (
                        expression.startswith(("checked_identifier(", ESCAPED))
                        or expression in checked
                        or expression in constants
                        or (str(path.relative_to(root.parent)), function.name, expression) in REVIEWED
                    )
                    if not safe:
                        found.append(
                            f"{path.relative_to(root.parent)}:{node.lineno}: {{{expression}}} in {text[:60]!r}"
                        )
    return found


def test_sql_interpolates_only_checked_identifiers_and_reviewed_fragments():
    assert unsafe_sql_interpolations() == []
    assert SQL_FSTRINGS_SEEN[0] >= 10  # the guard did look at the store's SQL


def test_the_sql_guard_catches_an_interpolated_value(tmp_path):
    (tmp_path / "probe.py").write_text(
        "def f(conn, symbol):\n    conn.execute(f\"SELECT * FROM t WHERE symbol = '{symbol}'\")\n"
    )
    assert [line.split(": ", 1)[1][:8] for line in unsafe_sql_interpolations(tmp_path)] == ["{symbol}"]


def test_a_reviewed_name_is_reviewed_only_where_it_was_reviewed(tmp_path):
    # `where` is reviewed in read_table() alone: the same name in another function is flagged.
    (tmp_path / "probe.py").write_text('def g(conn, where):\n    conn.execute(f"SELECT * FROM t WHERE {where}")\n')
    assert [line.split(": ", 1)[1][:7] for line in unsafe_sql_interpolations(tmp_path)] == ["{where}"]


def test_api_keys_come_from_the_environment_only():
    keyed = make_ccxt_client(environ={"BINANCE_API_KEY": "k-123", "BINANCE_API_SECRET": "s-456"})
    assert (keyed.apiKey, keyed.secret) == ("k-123", "s-456")
    anonymous = make_ccxt_client(environ={})
    assert not anonymous.apiKey and not anonymous.secret
    # Resource config is shown in the Dagster UI: no field may carry a key.
    assert not [name for name in CandleExchangeResource.model_fields if re.search("key|secret", name, re.I)]


def test_servers_bind_loopback_by_default():
    with ReplayExchange(synthetic_candles(10)) as exchange:
        assert exchange.base_url.startswith("http://127.0.0.1:")
    assert parse_arguments(["--candles", "x.csv"]).host == "127.0.0.1"
    makefile = (REPO_ROOT / "Makefile").read_text()
    dev = re.search(r"dagster dev .*", makefile).group(0)
    assert "-h 127.0.0.1" in dev
    mlflow_ui = re.search(r"mlflow ui .*\n.*", makefile)
    assert mlflow_ui is not None, "the Makefile no longer starts the MLflow UI where this test looks"
    assert "--host 127.0.0.1" in mlflow_ui.group(0)
