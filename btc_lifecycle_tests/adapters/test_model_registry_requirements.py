"""The logged model's pinned requirements, looked up by distribution name."""

from __future__ import annotations

import importlib.metadata

import pytest

from btc_lifecycle.adapters import model_registry


def pins_from_every_distribution() -> list[str]:
    """What the pins were before: each module's first distribution in the full scan."""
    distributions = importlib.metadata.packages_distributions()
    names = [distributions.get(module, [module])[0] for module in ("xgboost", "pandas", "numpy", "sklearn")]
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def test_the_pins_are_those_the_full_scan_finds_without_the_scan(monkeypatch):
    expected = pins_from_every_distribution()

    def no_scan():
        raise AssertionError("packages_distributions() read every installed distribution")

    monkeypatch.setattr(importlib.metadata, "packages_distributions", no_scan)
    assert model_registry._pip_requirements() == expected
    assert [pin.split("==")[0] for pin in expected][1:] == ["pandas", "numpy", "scikit-learn"]


def test_a_module_from_an_unknown_distribution_is_found_by_the_full_scan(monkeypatch):
    monkeypatch.setattr(
        model_registry, "REQUIRED_MODULES", {"yaml": ("no-such-distribution",), "numpy": ("no-such-either",)}
    )
    pins = model_registry._pip_requirements()
    assert pins == [
        f"PyYAML=={importlib.metadata.version('PyYAML')}",
        f"numpy=={importlib.metadata.version('numpy')}",
    ]


def test_a_module_nobody_provides_fails_as_before(monkeypatch):
    monkeypatch.setattr(model_registry, "REQUIRED_MODULES", {"no_such_module_anywhere": ("no-such-distribution",)})
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        model_registry._pip_requirements()
