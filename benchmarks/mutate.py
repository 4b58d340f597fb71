"""The mutation score per module from mutmut's results (make mutate).

Reads mutants/**/*.py.meta, which `mutmut run` writes, and prints one row per mutated module:
killed, survived (or reached by no test), equivalent, timeouts, other (segfault, suspicious),
not yet checked, and the score (killed + timeouts) / (killed + timeouts + survived).

A survivor is equivalent when benchmarks/mutation_equivalents.toml lists its mutation: the module,
the function (``Class.method`` for a method) and the lines the mutant's diff removes and adds,
each with the reason no input can tell the mutant from the original. mutmut numbers the mutants
of a function anew whenever its code changes; the mutated text does not move with the numbers,
and an entry whose lines have left the code matches nothing.

    .venv/bin/python benchmarks/mutate.py [--survivors]

The module is also the pytest plugin of mutmut's test runs (``-p benchmarks.mutate`` in
``[tool.mutmut] pytest_add_cli_args``; mutmut copies it into mutants/):

* ``pytest_configure`` imports the heavy libraries the packages use (pandas, XGBoost,
  evidently, ...). mutmut's fork server runs it once while it collects the tests, so every
  forked worker starts with them in memory instead of importing them again (about 4 s a
  mutant, and the cause of false "timeouts": a worker whose tests take 0.1 s gets 16 s).
* ``pytest_collection_modifyitems`` keeps, of the tests mutmut found reaching a mutant, the
  tests of its module's own test file (``owns``: one file per module, in the folder that
  mirrors the package: domain/gaps.py is tested by btc_lifecycle_tests/domain/test_gaps.py)
  when there are any, and runs the test files cheapest first, by the setup + call + teardown
  seconds the stats run recorded (mutants/test-durations.json), keeping each file's tests
  together and in order (module fixtures are built once). With ``-x`` a killed mutant stops at
  its first failure, so the slow tests run only for the mutants the fast ones miss.
* ``pytest_unconfigure`` freezes the garbage collector's heap (``gc.freeze``), see there.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import gc
import importlib
import json
import os
import tomllib
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

# mutmut's exit codes (mutmut/stats.py): 1 and 3 killed; 0 survived, and 33/5 ("no tests": no
# selected test reaches the function) count as survivors too. A timeout (the tests ran past
# their limit) counts as killed, as in mutmut and PIT, but is shown apart.
KILLED = {1, 3}
SURVIVED = {0, 5, 33}
TIMEOUT = {36, -24, 24, 152, 255}

# The reviewed equivalent mutants. (mutmut copies benchmarks/ into mutants/, but the plugin does
# not need the list: only the score table does.)
EQUIVALENTS_FILE = Path(__file__).with_name("mutation_equivalents.toml")
# mutmut's names: btc_lifecycle.domain.gaps.x_fill_trade_less_minutes__mutmut_3 for a function,
# btc_lifecycle.monitoring.drift.xǁMonitoringConfigǁ__post_init____mutmut_3 for a method.
METHOD_MARK = "\u01c1"


@dataclass(frozen=True)
class Mutation:
    """What a mutant changes, in words that survive mutmut renumbering the mutants."""

    module: str  # under btc_lifecycle: "domain.gaps"
    function: str  # "fill_trade_less_minutes", or "MonitoringConfig.__post_init__"
    line: str  # the original line(s) the mutant changes, each stripped, joined by newlines
    mutated: str  # the mutant's line(s) instead, "" when it only removes


def equivalent_mutations(path: Path = EQUIVALENTS_FILE) -> dict[Mutation, str]:
    """Each reviewed equivalent mutation and the reason it cannot change behaviour."""
    if not path.exists():
        return {}
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("equivalent", [])
    return {
        Mutation(entry["module"], entry["function"], entry["line"], entry["mutated"]): entry["reason"]
        for entry in entries
    }


def module_and_function(mutant: str) -> tuple[str, str]:
    """The module under btc_lifecycle and the function (``Class.method``) of a mutant's name."""
    qualified = mutant.rsplit("__mutmut_", 1)[0]
    if f".x{METHOD_MARK}" in qualified:
        module, function = qualified.split(f".x{METHOD_MARK}", 1)
        function = function.replace(METHOD_MARK, ".")
    else:
        module, function = qualified.split(".x_", 1)
    return module.removeprefix("btc_lifecycle."), function


def mutation_of(root: Path, mutant: str) -> Mutation | None:
    """The mutation of ``mutant``, read from the mutated copy of its module under ``root``
    (mutants/): the lines its function differs by from the unmutated copy beside it."""
    module, function = module_and_function(mutant)
    functions = _generated_functions(root / ("btc_lifecycle/" + module.replace(".", "/") + ".py"))
    generated = mutant.rsplit(".", 1)[1]
    original = generated.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    if generated not in functions or original not in functions:
        return None
    # Both named as in the source, like `mutmut show`: a mutated default argument shows in the def line.
    name = function.rsplit(".", 1)[-1]
    before = functions[original].replace(original, name, 1).splitlines()
    after = functions[generated].replace(generated, name, 1).splitlines()
    removed, added = [], []
    for line in difflib.unified_diff(before, after, lineterm="", n=0):
        if not line.startswith(("---", "+++", "@@")):
            (removed if line.startswith("-") else added).append(line[1:].strip())
    return Mutation(module, function, "\n".join(removed), "\n".join(added))


@cache
def _generated_functions(path: Path) -> dict[str, str]:
    """The source of every function and method mutmut generated in a mutated file, by name."""
    if not path.exists():
        return {}
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    return {
        node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno])
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name
    }


def module_results(root: Path) -> dict[str, dict[str, int | None]]:
    results = {}
    for meta in sorted(root.glob("btc_lifecycle/**/*.py.meta")):
        module = meta.relative_to(root).as_posix().removesuffix(".py.meta").replace("/", ".")
        results[module] = json.loads(meta.read_text())["exit_code_by_key"]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants too")
    parser.add_argument("--equivalents", type=Path, default=EQUIVALENTS_FILE, help="the reviewed equivalent mutants")
    args = parser.parse_args(argv)
    results = module_results(args.mutants)
    if not results:
        print(f"no results under {args.mutants}/: run `make mutate` first")
        return 1
    equivalents = equivalent_mutations(args.equivalents)
    survivors = [name for codes in results.values() for name, code in codes.items() if code in SURVIVED]
    equivalent = {name for name in survivors if mutation_of(args.mutants, name) in equivalents}
    total: Counter[str] = Counter()
    print(
        f"{'module':48} {'killed':>6} {'surv.':>6} {'equiv.':>6} {'timeout':>7} {'other':>6} {'todo':>5} {'score':>7}"
    )
    for module, codes in results.items():
        row: Counter[str] = Counter()
        for name, code in codes.items():
            if code in KILLED:
                row["killed"] += 1
            elif code in SURVIVED:
                row["equivalent" if name in equivalent else "survived"] += 1
            elif code in TIMEOUT:
                row["timeout"] += 1
            elif code is None:
                row["todo"] += 1
            else:
                row["other"] += 1
        total.update(row)
        print(_row(module, row))
    print(_row("total", total))
    if args.survivors:
        for name in survivors:
            if name not in equivalent:
                mutation = mutation_of(args.mutants, name)
                print(name if mutation is None else f"{name}: {mutation.line!r} -> {mutation.mutated!r}")
    return 0


def _row(name: str, row: Counter[str]) -> str:
    caught = row["killed"] + row["timeout"]
    scored = caught + row["survived"]
    score = f"{100 * caught / scored:.1f}%" if scored else "-"
    return (
        f"{name:48} {row['killed']:7} {row['survived']:7} {row['equivalent']:7} {row['timeout']:7} "
        f"{row['other']:7} {row['todo']:7} {score:>7}"
    )


# The heavy libraries the three packages import (some inside functions): what a forked worker
# would otherwise import itself.
PRELOAD = (
    "numpy",
    "pandas",
    "scipy.stats",
    "sklearn.metrics",
    "xgboost",
    "evidently",
    "evidently.presets",
    "evidently.legacy.core",
    "evidently.legacy.calculations.stattests.registry",
)
# Written by the stats run (MUTANT_UNDER_TEST=stats), inside mutants/: each test's setup, call
# and teardown seconds. mutmut's own stats count only the call, not the module fixtures that
# train a model or build an evidently report.
DURATIONS = Path("test-durations.json")
_measured: Counter[str] = Counter()


def pytest_configure(config: Any) -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if "__mutmut_" in mutant:
        config.args[:] = whole_owned_files(mutant, config.args)


def whole_owned_files(mutant: str, args: list[str]) -> list[str]:
    """mutmut's test ids for ``mutant``, each test of its module's own files widened to its file.

    mutmut passes the tests its stats run saw calling the mutated function, and it credits a call
    to the test that was running: a module-scoped fixture that computes features or trains a
    model once is credited to the file's first test only, and the tests that read the fixture
    afterwards never run against the mutant (60 of 90 survivors of the first full run of the
    reviewed tests were killed by such tests, checked by hand). The module's own files are
    cheap by design and run cheapest first with ``-x``.
    """
    owned = sorted({arg.split("::")[0] for arg in args if "::" in arg and owns(mutant, arg)})
    return [*owned, *(arg for arg in args if arg.split("::")[0] not in owned)]


def pytest_unconfigure(config: Any) -> None:
    # Everything alive now (in the fork server: the preloaded libraries and the collected tests)
    # leaves the garbage collector's view. Without it every worker's pytest ends with
    # gc.collect() over the whole inherited heap (the unraisableexception plugin's
    # gc_collect_harder): 1 s of a 1.2 s mutant, and a copy of every page it touches.
    gc.freeze()


def pytest_runtest_logreport(report: Any) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        _measured[report.nodeid] += report.duration


def pytest_sessionfinish(session: Any) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") == "stats" and _measured:
        DURATIONS.write_text(json.dumps(dict(_measured), indent=0))


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if "__mutmut_" in mutant:
        own = [item for item in items if owns(mutant, item.nodeid)]
        if own and len(own) < len(items):
            config.hook.pytest_deselected(items=[item for item in items if item not in own])
            items[:] = own
    try:
        durations: dict[str, float] = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return
    cost: Counter[str] = Counter()
    for item in items:
        cost[item.nodeid.split("::")[0]] += durations.get(item.nodeid, 0.0)
    # sort is stable: within a file pytest's order stays.
    items.sort(key=lambda item: cost[item.nodeid.split("::")[0]])


def own_test_file(mutant: str) -> str:
    """The test file of a mutant's module: one file per module, in the folder that mirrors the
    package (btc_lifecycle.domain.gaps: btc_lifecycle_tests/domain/test_gaps.py)."""
    module, _ = module_and_function(mutant)
    package, _, name = module.rpartition(".")
    return f"btc_lifecycle_tests/{package.replace('.', '/')}/test_{name}.py"


def owns(mutant: str, nodeid: str) -> bool:
    """Whether the test ``nodeid`` is one of the unit tests of the mutated module: its file is the
    module's own test file (``own_test_file``; domain/quality.py and modelling/quality.py each
    have theirs).

    A mutant runs only these when its module has any: the other tests that reach its functions
    (every drift report calls ``interval_ms``) cost minutes a mutant and do not specify it.
    """
    path = nodeid.split("::")[0]
    return ("/" + path).endswith("/" + own_test_file(mutant))


if __name__ == "__main__":
    raise SystemExit(main())
