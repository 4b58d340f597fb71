"""Package namespaces whose names load on first use, so light imports stay light."""

import importlib
import sys
import types
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` resolving ``name`` from ``package.<exports[name]>`` when asked."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return __getattr__


class LazyModule(types.ModuleType):
    """Stands in for a module until an attribute is first read, then imports it.

    ``pd = lazy_module("pandas")`` at module level keeps a heavy library out of the code
    location's load (every Dagster process loads it; most steps never touch pandas); the first
    ``pd.X`` imports pandas and copies its namespace in, so later reads are plain lookups.
    Annotations must not be evaluated at import time (``from __future__ import annotations``).
    """

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.__dict__["_lazy_target"] = target

    def __getattr__(self, name: str) -> object:
        if name.startswith("__dagster"):
            # Dagster's defs-folder loader probes every module attribute for its markers; a
            # library module never has them, so answer without importing the library.
            raise AttributeError(name)
        module = importlib.import_module(self.__dict__["_lazy_target"])
        self.__dict__.update(module.__dict__)
        return getattr(module, name)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__dict__["_lazy_target"]))


def lazy_module(name: str) -> types.ModuleType:
    """The module itself if already imported, else a ``LazyModule`` standing in for it."""
    return sys.modules.get(name) or LazyModule(name)
