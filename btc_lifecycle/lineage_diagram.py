"""The asset graph as a Mermaid flowchart, kept in README.md between two markers.

``python -m btc_lifecycle.lineage_diagram`` (``make graph``) rewrites the diagram from the real
definitions; ``--check`` exits 1 when README.md differs. Only public Dagster API is used.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import dagster as dg

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- lineage:start -->"
END = "<!-- lineage:end -->"
# The sensor drawn beside the assets: a failed drift check launches the retraining from `model`.
RETRAIN_SENSOR = "retrain_on_drift_sensor"
RETRAIN_FROM = dg.AssetKey("model")


def _mermaid_id(name: str) -> str:
    """Letters, digits and '_' only: what Mermaid takes as a node or subgraph id."""
    return re.sub(r"\W", "_", name)


def _node_id(key: dg.AssetKey) -> str:
    return _mermaid_id("__".join(key.path))


def _node(key: dg.AssetKey) -> str:
    """The node's declaration: its id, labelled with the asset key where the two differ."""
    label = key.to_user_string()
    return _node_id(key) if label == _node_id(key) else f'{_node_id(key)}["{label}"]'


def mermaid(defs: dg.Definitions) -> str:
    """The flowchart: one node per asset, grouped by ``group_name``, an edge per dependency."""
    specs = sorted(defs.resolve_all_asset_specs(), key=lambda spec: spec.key.to_user_string())
    groups: dict[str, list[dg.AssetKey]] = {}
    for spec in specs:
        groups.setdefault(spec.group_name or "default", []).append(spec.key)
    lines = ["flowchart LR"]
    for group in sorted(groups):
        lines.append(f"  subgraph group_{_mermaid_id(group)} [{group}]")
        lines += [f"    {_node(key)}" for key in groups[group]]
        lines.append("  end")
    edges = sorted((_node_id(dep.asset_key), _node_id(spec.key)) for spec in specs for dep in spec.deps)
    lines += [f"  {upstream} --> {downstream}" for upstream, downstream in dict.fromkeys(edges)]
    sensors = {sensor.name for sensor in defs.sensors or []}
    if RETRAIN_SENSOR in sensors and any(spec.key == RETRAIN_FROM for spec in specs):
        lines += [
            f"  {RETRAIN_SENSOR}{{{{{RETRAIN_SENSOR}}}}} -.->|drift check failed| {_node_id(RETRAIN_FROM)}",
            "  classDef sensor stroke-dasharray: 4 3",
            f"  class {RETRAIN_SENSOR} sensor",
        ]
    return "\n".join(lines) + "\n"


def diagram_in(readme: str) -> str:
    """The flowchart text of the ```mermaid block between the lineage markers of ``readme``."""
    match = re.search(rf"{re.escape(START)}\n```mermaid\n(.*?)```\n{re.escape(END)}", readme, flags=re.S)
    if match is None:
        raise ValueError(f"no ```mermaid block between {START} and {END}")
    return match.group(1)


def with_diagram(readme: str, diagram: str) -> str:
    """``readme`` with ``diagram`` as the ```mermaid block between the lineage markers."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ValueError(f"expected one {START} marker, then one {END} marker")
    before, rest = readme.split(START)
    after = rest.split(END)[1]
    return f"{before}{START}\n```mermaid\n{diagram}```\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m btc_lifecycle.lineage_diagram", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's diagram is out of date")
    parser.add_argument("--readme", type=Path, default=README, help="the file to rewrite (default: README.md)")
    options = parser.parse_args(argv)

    from btc_lifecycle.definitions import defs

    text = options.readme.read_text(encoding="utf-8")
    try:
        updated = with_diagram(text, mermaid(defs))
    except ValueError as error:
        print(f"{options.readme}: {error}", file=sys.stderr)
        return 2
    if options.check:
        if updated != text:
            print(f"{options.readme}: the lineage diagram is out of date; run make graph", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        options.readme.write_text(updated, encoding="utf-8")
        print(f"{options.readme}: lineage diagram rewritten")
    else:
        print(f"{options.readme}: lineage diagram already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
