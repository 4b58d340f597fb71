"""`make run` twice on the same candles leaves the registry as it was; a forced retrain registers
one version more. Through the real CLI, the launcher and the replay exchange."""

from __future__ import annotations

import json
import subprocess

import pytest
from mlflow import MlflowClient

from btc_lifecycle_tests.e2e import REPO_ROOT, Workspace

pytestmark = pytest.mark.e2e

SAMPLE = REPO_ROOT / "data" / "sample" / "btcusdt_1m_2023-03-07_2023-03-10_binanceus.csv.gz"
FORCE_RETRAIN = json.dumps({"ops": {"model": {"config": {"force_retrain": True}}}})


def make_run(workspace: Workspace, *extra: str) -> subprocess.CompletedProcess:
    """What `make run CANDLES=SAMPLE` runs (``RETRAIN=1``: ``--config-json`` forcing the retrain)."""
    return workspace.materialize(SAMPLE, extra=list(extra))


def registered_versions(workspace: Workspace) -> list[tuple[str, list[str]]]:
    client = MlflowClient(tracking_uri=workspace.env()["MLFLOW_TRACKING_URI"])
    versions = client.search_model_versions("name = 'btc_direction'")
    # search_model_versions leaves aliases out: ask each version
    return sorted(
        (str(v.version), sorted(client.get_model_version("btc_direction", v.version).aliases)) for v in versions
    )


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    workspace = Workspace(tmp_path_factory.mktemp("unchanged"))
    make_run(workspace)
    first = registered_versions(workspace)
    second_run = make_run(workspace)
    second = registered_versions(workspace)
    make_run(workspace, "--config-json", FORCE_RETRAIN)
    third = registered_versions(workspace)
    return first, second, second_run, third


def test_a_second_run_on_unchanged_candles_registers_no_model_version(three_runs):
    first, second, _, _ = three_runs
    assert first == [("1", ["champion"])]
    assert second == first


def test_the_second_run_says_which_version_already_holds_these_inputs(three_runs):
    _, _, second_run, _ = three_runs
    log = second_run.stdout + second_run.stderr
    assert "model version 1 was trained on exactly these inputs: nothing to train" in log


def test_a_forced_retrain_registers_one_version_more(three_runs):
    _, _, _, third = three_runs
    assert [version for version, _ in third] == ["1", "2"]
