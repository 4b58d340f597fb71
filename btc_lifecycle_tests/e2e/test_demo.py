"""`make demo`: the shipped sample runs the whole graph offline, quietly, and says where to look;
`make run` again on the same candles leaves the registry as it was."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import dagster as dg
import pytest
from pypdf import PdfReader

from btc_lifecycle.modelling.backtest import MODEL_STRATEGIES, STRATEGIES
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT, Workspace, launch_command

pytestmark = pytest.mark.e2e

SAMPLE = REPO_ROOT / "data" / "sample" / "btcusdt_1m_2023-03-07_2023-03-10_binanceus.csv.gz"


def demo_command() -> list[str]:
    """What `make demo` runs (the Makefile's DEMO_CANDLES and launcher flags)."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert f"DEMO_CANDLES := {SAMPLE.relative_to(REPO_ROOT)}" in makefile
    assert 'launch --progress --summary --history --candles "$(DEMO_CANDLES)"' in makefile
    return launch_command(SAMPLE, "--progress", "--summary", "--history")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workspace = Workspace(tmp_path_factory.mktemp("demo"))
    system_tmp = workspace.root / "system_tmp"  # the system's temporary folder, as the demo sees it
    system_tmp.mkdir()
    result = subprocess.run(
        demo_command(),
        cwd=REPO_ROOT,
        # Without the metrics folder a Feast import in this test process left in the environment.
        env={k: v for k, v in workspace.env(TMPDIR=str(system_tmp)).items() if not k.startswith("PROMETHEUS_")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return workspace, result


def test_the_demo_leaves_nothing_in_the_systems_temporary_folder(demo):
    workspace, _ = demo
    assert sorted(path.name for path in (workspace.root / "system_tmp").iterdir()) == []


def test_the_demo_stores_every_candle_of_the_sample(demo):
    workspace, _ = demo
    stored = workspace.stored()
    assert len(stored) == 4 * 1440
    assert str(stored["open_time"].iloc[-1]) == "2023-03-10 23:59:00+00:00"


def test_the_demo_ends_by_naming_the_pdf_make_dev_and_make_mlflow_ui(demo):
    workspace, result = demo
    pdf = re.search(r"ingestion report: +(\S+\.pdf)", result.stdout)
    assert pdf and Path(pdf.group(1)).is_file() and Path(pdf.group(1)).is_relative_to(workspace.root)
    assert "make dev" in result.stdout and "make mlflow-ui" in result.stdout


def test_the_demo_backtests_the_model_and_its_report_leads_with_the_verdict_of_its_numbers(demo):
    workspace, result = demo
    with dg.DagsterInstance.from_config(str(workspace.root / "dagster_home")) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("backtest"))
    traded = {key: value.value for key, value in event.asset_materialization.metadata.items()}
    for strategy in STRATEGIES:
        assert f"| {strategy} | gross |" in traded["backtest"] and f"| {strategy} | net |" in traded["backtest"]
    # The verdict follows the numbers: it says money is lost exactly when no strategy earned after costs.
    earned = [traded[f"{name}_net_total_return"] for name in MODEL_STRATEGIES]
    assert (" loses money" in traded["verdict"]) == all(value <= 0 for value in earned)
    report = re.search(r"model report: +(\S+\.pdf)", result.stdout)
    assert report and Path(report.group(1)) == Path(traded["pdf"])
    pages = PdfReader(traded["pdf"]).pages
    text = " ".join(" ".join(page.extract_text() for page in pages).split())
    assert traded["verdict"] in text
    assert len(pages) >= 3
    run = workspace.mlflow_client().get_run(traded["mlflow_run_id"])
    assert run.data.metrics["backtest_long_short_net_total_return"] == pytest.approx(
        traded["long_short_net_total_return"]
    )


def test_the_demo_console_shows_progress_and_no_library_warnings(demo):
    _, result = demo
    console = result.stdout + result.stderr
    assert 'Finished execution of step "drift_report"' in console
    assert "Warning" not in console and "Traceback" not in console


def registered_versions(workspace: Workspace) -> list[tuple[str, list[str]]]:
    client = workspace.mlflow_client()
    versions = client.search_model_versions("name = 'btc_direction'")
    # search_model_versions leaves aliases out: ask each version
    return sorted(
        (str(v.version), sorted(client.get_model_version("btc_direction", v.version).aliases)) for v in versions
    )


@pytest.fixture(scope="module")
def run_again(demo):
    """`make run CANDLES=<the sample>` after the demo, in the same workspace: the registry before and
    after, and the second run's output. (A forced retrain, `RETRAIN=1`, registering a version anyway
    is test_graph.py's second run.)"""
    workspace, _ = demo
    before = registered_versions(workspace)
    second_run = workspace.materialize(SAMPLE)
    return before, registered_versions(workspace), second_run


def test_a_second_run_on_unchanged_candles_registers_no_model_version(run_again):
    before, after, _ = run_again
    assert before == [("1", ["champion"])]
    assert after == before


def test_the_second_run_says_which_version_already_holds_these_inputs(run_again):
    _, _, second_run = run_again
    log = second_run.stdout + second_run.stderr
    assert "model version 1 was trained on exactly these inputs: nothing to train" in log
