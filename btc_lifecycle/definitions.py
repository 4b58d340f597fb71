"""The code location: every definition under ``btc_lifecycle/defs/``, loaded the ``dg`` way.

``workspace.yaml``, ``dagster asset materialize -m btc_lifecycle.definitions`` and ``dg``
(``[tool.dg]`` in pyproject.toml) all load ``defs`` from here.

The defs folder is loaded as ``dg.load_from_defs_folder`` loads it (the same ``ComponentTree``,
attached to the definitions), less two things that cost every process that loads the code
location about 0.15 s, a third of what it adds to ``import dagster``: reading pyproject.toml with
tomlkit to find the defs module (named here, and pinned to ``[tool.dg.project]`` by a test), and
the JSON schema of every component type installed (Dagster's own; this project defines none),
which only a components catalogue would show.
"""

import importlib
import warnings
from pathlib import Path

import dagster as dg

from btc_lifecycle.config import Settings, settings_in_use

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFS_MODULE = "btc_lifecycle.defs"


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The definitions, with ``settings`` in place of the config file and environment (a
    simulation's own store, a test's temporary folders)."""
    with settings_in_use(settings), warnings.catch_warnings():
        # What load_from_defs_folder silences too: Dagster's notes on its own beta and preview
        # APIs, raised while it loads the folder (backfill_policy, its module loaders).
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        tree = dg.ComponentTree.from_module(defs_module=importlib.import_module(DEFS_MODULE), project_root=PROJECT_ROOT)
        return dg.Definitions.merge(tree.build_defs(tree.defs_module_path), dg.Definitions(component_tree=tree))


defs = build_definitions()
