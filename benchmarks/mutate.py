"""The mutation score per module from mutmut's results (make mutate), for docs/mutation.md.

Reads mutants/**/*.py.meta, which `mutmut run` writes, and prints one row per mutated module:
killed, survived (or reached by no test), equivalent, timeouts, other (segfault, suspicious),
not yet checked, and the score (killed + timeouts) / (killed + timeouts + survived).
Mutants listed in EQUIVALENT (docs/mutation.md gives the reason for each) leave the count.

    .venv/bin/python benchmarks/mutate.py [--survivors]

The module is also the pytest plugin of mutmut's test runs (``-p benchmarks.mutate`` in
``[tool.mutmut] pytest_add_cli_args``; mutmut copies it into mutants/):

* ``pytest_configure`` imports the libraries the package loads lazily (pandas, XGBoost,
  evidently, ...). mutmut's fork server runs it once while it collects the tests, so every
  forked worker starts with them in memory instead of importing them again (about 4 s a
  mutant, and the cause of the false "timeouts": a worker whose tests take 0.1 s gets 16 s).
* ``pytest_collection_modifyitems`` keeps, of the tests mutmut found reaching a mutant, the
  unit tests of its module (``owns``: test files named after it) when there are any, and runs
  its test files cheapest first, by the setup + call + teardown seconds the stats run recorded
  (mutants/test-durations.json), keeping each file's tests together and in order (module
  fixtures are built once). With ``-x`` a killed mutant stops at its first failure, so the
  slow tests run only for the mutants the fast ones miss.
* ``pytest_unconfigure`` freezes the garbage collector's heap (``gc.freeze``), see there.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

# mutmut's exit codes (mutmut/stats.py): 1 and 3 killed; 0 survived, and 33/5 ("no tests": no
# selected test reaches the function) count as survivors too. A timeout (the tests ran past
# their limit) counts as killed, as in mutmut and PIT, but is shown apart.
KILLED = {1, 3}
SURVIVED = {0, 5, 33}
TIMEOUT = {36, -24, 24, 152, 255}

# Survivors that behave exactly like the original: the table of docs/mutation_equivalents.md, each
# with the reason no input can tell it from the original. (mutmut copies benchmarks/ but not docs/
# into mutants/: the plugin does not need the list, only the score table does.)
EQUIVALENTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "mutation_equivalents.md"
_EQUIVALENT_ROW = re.compile(r"^\| `(btc_lifecycle\.[^`]+__mutmut_\d+)` \| (.+) \|$")


def equivalent_mutants(path: Path = EQUIVALENTS_DOC) -> dict[str, str]:
    """Each equivalent mutant's name and reason, from the table in ``path``."""
    if not path.exists():
        return {}
    rows = (_EQUIVALENT_ROW.match(line) for line in path.read_text().splitlines())
    return {row.group(1): row.group(2) for row in rows if row}


EQUIVALENT: set[str] = set(equivalent_mutants())


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
    args = parser.parse_args(argv)
    results = module_results(args.mutants)
    if not results:
        print(f"no results under {args.mutants}/: run `make mutate` first")
        return 1
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
                row["equivalent" if name in EQUIVALENT else "survived"] += 1
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
        for codes in results.values():
            for name, code in codes.items():
                if code in SURVIVED and name not in EQUIVALENT:
                    print(name)
    return 0


def _row(name: str, row: Counter[str]) -> str:
    caught = row["killed"] + row["timeout"]
    scored = caught + row["survived"]
    score = f"{100 * caught / scored:.1f}%" if scored else "-"
    return (
        f"{name:48} {row['killed']:7} {row['survived']:7} {row['equivalent']:7} {row['timeout']:7} "
        f"{row['other']:7} {row['todo']:7} {score:>7}"
    )


# The libraries behind the package's lazy imports (btc_lifecycle/lazy.py and function-level
# imports): what a forked worker would otherwise import itself.
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


def owns(mutant: str, nodeid: str) -> bool:
    """Whether the test ``nodeid`` is one of the unit tests of the mutated module: its file is
    named after the module (``domain/gaps.py``: test_gaps.py, test_properties/test_gaps.py,
    test_gaps_mutants.py, test_features_gap_policy.py does not count).

    A mutant runs only these when its module has any: the other tests that reach its functions
    (every drift report calls ``interval_ms``) cost minutes a mutant and do not specify it.
    """
    module = mutant.split(".x_")[0].split(".x\u01c1")[0]
    stem = nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
    return module.rsplit(".", 1)[-1] in stem


if __name__ == "__main__":
    raise SystemExit(main())
