"""The code location's load stays light: the libraries only a running step needs are not imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def modules_after_import(module: str, candidates: list[str]) -> list[str]:
    """Which of ``candidates`` a fresh interpreter has in sys.modules after importing ``module``."""
    code = f"import sys, json, {module}; print(json.dumps([name for name in {candidates!r} if name in sys.modules]))"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_loading_the_code_location_imports_no_heavy_library():
    # MLflow, and the pandas it imports, do load: the retraining job carries dagster-mlflow's hook.
    heavy = ["evidently", "xgboost", "sklearn", "ccxt", "plotly", "kaleido", "weasyprint", "matplotlib"]
    assert modules_after_import("btc_lifecycle.definitions", heavy) == []
