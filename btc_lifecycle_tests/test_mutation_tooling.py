"""The mutation-score tooling (benchmarks/mutate.py): which tests a mutant runs, and the reviewed
list of equivalent mutants (benchmarks/mutation_equivalents.toml) that leaves the score."""

from __future__ import annotations

import ast
import json
import tomllib
from pathlib import Path

import pytest

from benchmarks.mutate import (
    EQUIVALENTS_FILE,
    Mutation,
    equivalent_mutations,
    main,
    module_and_function,
    mutation_of,
    own_test_file,
    owns,
    whole_owned_files,
)

REPO = Path(__file__).resolve().parents[1]
METHOD_MUTANT = "btc_lifecycle.monitoring.drift.xǁMonitoringConfigǁ__post_init____mutmut_3"
FUNCTION_MUTANT = "btc_lifecycle.domain.gaps.x_fill_trade_less_minutes__mutmut_1"


def test_a_mutant_names_its_module_and_function():
    assert module_and_function(FUNCTION_MUTANT) == ("domain.gaps", "fill_trade_less_minutes")
    assert module_and_function(METHOD_MUTANT) == ("monitoring.drift", "MonitoringConfig.__post_init__")
    assert module_and_function("btc_lifecycle.domain.labels.x__share__mutmut_6") == ("domain.labels", "_share")


def test_a_modules_test_file_is_named_after_it_in_the_mirrored_folder():
    assert own_test_file(FUNCTION_MUTANT) == "btc_lifecycle_tests/domain/test_gaps.py"
    assert own_test_file(METHOD_MUTANT) == "btc_lifecycle_tests/monitoring/test_drift.py"
    assert own_test_file("btc_lifecycle.modelling.quality.x_no_look_ahead__mutmut_2") == (
        "btc_lifecycle_tests/modelling/test_quality.py"
    )


def test_a_mutant_runs_only_the_test_file_of_its_module():
    assert owns(METHOD_MUTANT, "btc_lifecycle_tests/monitoring/test_drift.py::test_x")
    assert owns(METHOD_MUTANT, "/work/mutants/btc_lifecycle_tests/monitoring/test_drift.py::test_x[1]")
    # The Dagster asset tests of the same name, another module's file, other files about drift.
    assert not owns(METHOD_MUTANT, "btc_lifecycle_tests/defs/monitoring/test_drift.py::test_y")
    assert not owns(METHOD_MUTANT, "btc_lifecycle_tests/monitoring/test_report.py::test_z")
    assert not owns(METHOD_MUTANT, "btc_lifecycle_tests/monitoring/test_drift_config.py::test_z")
    assert not owns(METHOD_MUTANT, "btc_lifecycle_tests/test_config.py::test_z")
    # domain/quality.py and modelling/quality.py each have their own file.
    domain = "btc_lifecycle.domain.quality.x_fresh__mutmut_1"
    assert owns(domain, "btc_lifecycle_tests/domain/test_quality.py::t")
    assert not owns(domain, "btc_lifecycle_tests/modelling/test_quality.py::t")


def test_a_mutant_runs_its_modules_own_test_file_whole_not_only_the_tests_mutmut_saw_calling_it():
    # mutmut credits a module fixture's call to the first test using it; its neighbours must run too.
    mutant = "btc_lifecycle.modelling.features.x_compute_features__mutmut_98"
    args = [
        "btc_lifecycle_tests/modelling/test_features.py::test_candle_shape_features_are_ratios_of_the_candles_prices",
        "btc_lifecycle_tests/modelling/test_features.py::test_the_filled_flag_is_a_float_column",
        "btc_lifecycle_tests/monitoring/test_drift.py::test_the_reference_is_the_feature_complete_tail",
    ]
    assert whole_owned_files(mutant, args) == [
        "btc_lifecycle_tests/modelling/test_features.py",
        "btc_lifecycle_tests/monitoring/test_drift.py::test_the_reference_is_the_feature_complete_tail",
    ]


# the equivalent mutants


def test_every_equivalent_mutation_is_one_of_the_mutated_packages_with_its_reason():
    entries = tomllib.loads(EQUIVALENTS_FILE.read_text(encoding="utf-8"))["equivalent"]
    equivalents = equivalent_mutations()
    assert len(equivalents) == len(entries) > 0  # no mutation listed twice
    for entry in entries:
        assert set(entry) == {"module", "function", "line", "mutated", "reason"}, entry
        where = f"{entry['module']}.{entry['function']}"
        assert entry["module"].split(".")[0] in ("domain", "modelling", "monitoring"), where
        assert (REPO / "btc_lifecycle" / (entry["module"].replace(".", "/") + ".py")).is_file(), where
        assert entry["line"] and entry["line"] != entry["mutated"], where
        assert all(line == line.strip() for line in (*entry["line"].split("\n"), *entry["mutated"].split("\n"))), where
        assert len(entry["reason"]) >= 10 and "\n" not in entry["reason"], where
        assert "mutmut_" not in entry["reason"], where  # a reason stands alone, not "as mutant 44"


def test_every_equivalent_mutation_is_still_in_the_code():
    """An entry whose function or lines left the code matches no mutant any more: delete it."""
    for mutation in equivalent_mutations():
        source = (REPO / "btc_lifecycle" / (mutation.module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        body, node = ast.parse(source).body, None
        for name in mutation.function.split("."):  # a function, or Class.method
            node = next((n for n in body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name), None)
            assert node is not None, f"{mutation.module}: no {mutation.function}"
            body = node.body
        lines = {line.strip() for line in (ast.get_source_segment(source, node) or "").splitlines()}
        assert set(mutation.line.split("\n")) <= lines, f"{mutation.module}.{mutation.function}: {mutation.line!r}"


def test_the_equivalents_file_is_read_by_mutation(tmp_path):
    listed = tmp_path / "equivalents.toml"
    listed.write_text(
        "[[equivalent]]\n"
        'module = "domain.labels"\n'
        'function = "_share"\n'
        "line = 'return float(\"nan\")'\n"
        "mutated = 'return float(\"NAN\")'\n"
        'reason = "float(\\"NAN\\") is float(\\"nan\\")"\n'
    )
    mutation = Mutation("domain.labels", "_share", 'return float("nan")', 'return float("NAN")')
    assert equivalent_mutations(listed) == {mutation: 'float("NAN") is float("nan")'}
    assert equivalent_mutations(tmp_path / "missing.toml") == {}


# A mutated module as mutmut writes it: each function's unmutated copy beside its mutants.
MUTATED_MODULE = """
def x_share__mutmut_orig(part, whole):
    if whole == 0:
        return float("nan")
    return part / whole


def x_share__mutmut_1(part, whole):
    if whole == 0:
        return float("NAN")
    return part / whole


def x_share__mutmut_2(part, whole):
    if whole == 1:
        return float("nan")
    return part / whole


def x_share__mutmut_3(part, whole):
    if whole == 0:
        return float("nan")


class Balance:
    def xǁBalanceǁtotal__mutmut_orig(self):
        return self.up + self.down

    def xǁBalanceǁtotal__mutmut_1(self):
        return self.up - self.down
"""


@pytest.fixture
def mutants(tmp_path) -> Path:
    root = tmp_path / "mutants"
    (root / "btc_lifecycle" / "domain").mkdir(parents=True)
    (root / "btc_lifecycle" / "domain" / "labels.py").write_text(MUTATED_MODULE, encoding="utf-8")
    return root


def test_a_mutation_is_the_lines_its_function_changes(mutants):
    module = "btc_lifecycle.domain.labels"
    assert mutation_of(mutants, f"{module}.x_share__mutmut_1") == Mutation(
        "domain.labels", "share", 'return float("nan")', 'return float("NAN")'
    )
    assert mutation_of(mutants, f"{module}.x_share__mutmut_3") == Mutation(
        "domain.labels", "share", "return part / whole", ""
    )
    assert mutation_of(mutants, f"{module}.xǁBalanceǁtotal__mutmut_1") == Mutation(
        "domain.labels", "Balance.total", "return self.up + self.down", "return self.up - self.down"
    )
    assert mutation_of(mutants, f"{module}.x_share__mutmut_9") is None


def test_the_score_leaves_out_the_survivors_whose_mutation_is_listed_whatever_their_number(mutants, capsys):
    meta = {
        "exit_code_by_key": {
            "btc_lifecycle.domain.labels.x_share__mutmut_1": 0,  # survived, listed
            "btc_lifecycle.domain.labels.x_share__mutmut_2": 0,  # survived
            "btc_lifecycle.domain.labels.x_share__mutmut_3": 1,  # killed
            "btc_lifecycle.domain.labels.xǁBalanceǁtotal__mutmut_1": 33,  # no test reaches it, listed
        }
    }
    (mutants / "btc_lifecycle" / "domain" / "labels.py.meta").write_text(json.dumps(meta))
    listed = mutants / "equivalents.toml"
    listed.write_text(
        "[[equivalent]]\n"
        "module = 'domain.labels'\nfunction = 'share'\n"
        "line = 'return float(\"nan\")'\nmutated = 'return float(\"NAN\")'\n"
        "reason = 'float() reads nan in any case'\n"
        "[[equivalent]]\n"
        "module = 'domain.labels'\nfunction = 'Balance.total'\n"
        "line = 'return self.up + self.down'\nmutated = 'return self.up - self.down'\n"
        "reason = 'an example of a method'\n"
    )
    assert main(["--mutants", str(mutants), "--equivalents", str(listed), "--survivors"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["btc_lifecycle.domain.labels", "1", "1", "2", "0", "0", "0", "50.0%"]
    assert lines[-1] == ("btc_lifecycle.domain.labels.x_share__mutmut_2: 'if whole == 0:' -> 'if whole == 1:'")
