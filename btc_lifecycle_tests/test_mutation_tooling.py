"""The mutation-score tooling (benchmarks/mutate.py): which tests a mutant runs, and the reviewed
list of equivalent mutants that leaves the score."""

from __future__ import annotations

import re

from benchmarks.mutate import EQUIVALENTS_DOC, equivalent_mutants, owns, whole_owned_files


def test_a_mutant_runs_the_test_files_named_after_its_module():
    mutant = "btc_lifecycle.monitoring.drift.xǁMonitoringConfigǁ__post_init____mutmut_3"
    assert owns(mutant, "btc_lifecycle_tests/test_monitoring/test_drift_config_mutants.py::test_x")
    assert owns(mutant, "btc_lifecycle_tests/test_properties/test_drift.py::test_y")
    assert not owns(mutant, "btc_lifecycle_tests/test_config.py::test_z")
    assert owns("btc_lifecycle.domain.gaps.x_fill_trade_less_minutes__mutmut_1", "t/test_gaps_mutants.py::t")
    assert not owns("btc_lifecycle.domain.gaps.x_fill_trade_less_minutes__mutmut_1", "t/test_labels.py::t")


def test_every_equivalent_mutant_is_a_mutant_of_the_mutated_packages_with_its_reason():
    equivalents = equivalent_mutants()
    declared = re.search(r"^(\d+) mutants\.$", EQUIVALENTS_DOC.read_text(), re.MULTILINE)
    assert declared is not None and len(equivalents) == int(declared.group(1)) > 0
    for name, reason in equivalents.items():
        assert re.fullmatch(r"btc_lifecycle\.(domain|modelling|monitoring)\.\w+\.x\S+__mutmut_\d+", name), name
        sibling = re.match(r"(?:same )?as (\d+)\b", reason)
        if sibling:  # "as 44": the same reason as that mutant of the same function, itself listed
            assert f"{name.rsplit('__mutmut_', 1)[0]}__mutmut_{sibling.group(1)}" in equivalents, name
        else:
            assert len(reason) >= 10, name


def test_a_row_that_is_not_a_mutant_is_not_read_as_one(tmp_path):
    table = tmp_path / "equivalents.md"
    table.write_text(
        "| mutant | why |\n|---|---|\n"
        '| `btc_lifecycle.domain.labels.x__share__mutmut_6` | float("NAN") is float("nan") |\n'
        "| `btc_lifecycle.domain.labels.x__share` | no mutant number |\n"
        "text | `btc_lifecycle.domain.labels.x__share__mutmut_7` | not a table row |\n"
    )
    assert equivalent_mutants(table) == {
        "btc_lifecycle.domain.labels.x__share__mutmut_6": 'float("NAN") is float("nan")'
    }
    assert equivalent_mutants(tmp_path / "missing.md") == {}


def test_a_mutant_runs_its_modules_own_test_files_whole_not_only_the_tests_mutmut_saw_calling_it():
    # mutmut credits a module fixture's call to the first test using it; its neighbours must run too.
    mutant = "btc_lifecycle.modelling.features.x_compute_features__mutmut_98"
    args = [
        "btc_lifecycle_tests/test_features_mutants.py::test_candle_shape_features_are_ratios_of_the_candles_prices",
        "btc_lifecycle_tests/test_features_mutants.py::test_the_filled_flag_is_a_float_column",
        "btc_lifecycle_tests/test_monitoring/test_drift_mutants.py::test_the_reference_is_the_feature_complete_tail",
        "btc_lifecycle_tests/test_modelling/test_features.py::test_x",
    ]
    assert whole_owned_files(mutant, args) == [
        "btc_lifecycle_tests/test_features_mutants.py",
        "btc_lifecycle_tests/test_modelling/test_features.py",
        "btc_lifecycle_tests/test_monitoring/test_drift_mutants.py::test_the_reference_is_the_feature_complete_tail",
    ]
