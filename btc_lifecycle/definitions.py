"""The code location: every definition under ``btc_lifecycle/defs/``, loaded the ``dg`` way.

``workspace.yaml``, ``dagster asset materialize -m btc_lifecycle.definitions`` and ``dg``
(``[tool.dg]`` in pyproject.toml) all load ``defs`` from here.
"""

from pathlib import Path

import dagster as dg

from btc_lifecycle.config import Settings, settings_in_use


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The definitions, with ``settings`` in place of the config file and environment (a
    simulation's own store, a test's temporary folders)."""
    with settings_in_use(settings):
        return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


defs = build_definitions()
