"""The README is the front page: its lineage diagram is the real graph, it stays short, and its
layout map names every package and module of btc_lifecycle/ that exists, and nothing else."""

from __future__ import annotations

import re

import pytest

from btc_lifecycle.config import PROJECT_ROOT
from btc_lifecycle.lineage_diagram import diagram_in, main, mermaid

README = PROJECT_ROOT / "README.md"
PACKAGE = PROJECT_ROOT / "btc_lifecycle"
LAYOUT_START, LAYOUT_END = "<!-- layout:start -->", "<!-- layout:end -->"
TOP_LEVEL = [
    "btc_lifecycle/",
    "btc_lifecycle_tests/",
    "config/",
    "data/",
    "docs/",
    "benchmarks/",
    "workspace.yaml",
    "pyproject.toml",
    "setup.py",
    "Makefile",
]


def readme() -> str:
    return README.read_text(encoding="utf-8")


def layout_paths() -> list[str]:
    """The path that starts each entry of the layout map (a fenced block or a list)."""
    text = readme()
    assert text.count(LAYOUT_START) == 1 and text.count(LAYOUT_END) == 1, "the layout markers, once each"
    block = text.split(LAYOUT_START)[1].split(LAYOUT_END)[0]
    paths = []
    for line in block.splitlines():
        entry = line.strip().removeprefix("- ").strip()
        if not entry or entry.startswith("```"):
            continue
        paths.append(entry.split()[0].strip("`"))
    return paths


@pytest.fixture(scope="module")
def defs():
    from btc_lifecycle.definitions import defs

    return defs


def test_the_readme_diagram_is_the_asset_graph_of_the_definitions(defs):
    assert diagram_in(readme()) == mermaid(defs), "README.md's lineage diagram is out of date: run make graph"


def test_the_diagram_has_a_node_per_asset_and_an_edge_per_dependency(defs):
    diagram = mermaid(defs)
    specs = list(defs.resolve_all_asset_specs())
    for spec in specs:
        assert re.search(rf"^    {spec.key.to_user_string()}$", diagram, flags=re.M), spec.key
        for dep in spec.deps:
            assert f"  {dep.asset_key.to_user_string()} --> {spec.key.to_user_string()}\n" in diagram
    assert diagram.count(" --> ") == sum(len(spec.deps) for spec in specs)


def test_make_graph_check_passes_on_the_readme_and_fails_on_a_stale_copy(tmp_path, capsys):
    assert main(["--check"]) == 0
    stale = tmp_path / "README.md"
    stale.write_text(readme().replace("  raw_candles --> labeled_candles\n", ""), encoding="utf-8")
    assert main(["--check", "--readme", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--readme", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == readme()


def test_the_readme_is_short_and_shows_the_graph_near_the_top():
    lines = readme().splitlines()
    assert len(lines) <= 220
    first_mermaid = next(number for number, line in enumerate(lines, 1) if line.strip() == "```mermaid")
    assert first_mermaid <= 60


def test_the_layout_map_names_the_top_level_folders_and_files():
    paths = layout_paths()
    assert [path for path in TOP_LEVEL if path not in paths] == []


def test_the_layout_map_names_every_package_and_module_of_btc_lifecycle():
    on_disk = {f"btc_lifecycle/{folder.name}/" for folder in PACKAGE.iterdir() if (folder / "__init__.py").is_file()}
    on_disk |= {f"btc_lifecycle/{module.name}" for module in PACKAGE.glob("*.py") if module.name != "__init__.py"}
    named = {path for path in layout_paths() if re.fullmatch(r"btc_lifecycle/[^/]+/?", path)}
    assert sorted(on_disk - named) == [], "on disk, not in the README's layout map"
    assert sorted(named - on_disk) == [], "in the README's layout map, not on disk"


def test_every_path_in_the_layout_map_exists():
    for path in layout_paths():
        target = PROJECT_ROOT / path
        assert target.is_dir() if path.endswith("/") else target.is_file(), f"{path} is not in the tree"
