"""`make run` twice on the same candles leaves the registry as it was. Through the real CLI, the
launcher and the replay exchange. (A forced retrain, `RETRAIN=1`, registering a version anyway is
test_graph_e2e's second run.)"""

from __future__ import annotations

import subprocess

import pytest
from mlflow import MlflowClient

from btc_lifecycle_tests.e2e.workspace import REPO_ROOT, Workspace

pytestmark = pytest.mark.e2e

SAMPLE = REPO_ROOT / "data" / "sample" / "btcusdt_1m_2023-03-07_2023-03-10_binanceus.csv.gz"


def make_run(workspace: Workspace) -> subprocess.CompletedProcess:
    """What `make run CANDLES=SAMPLE` runs."""
    return workspace.materialize(SAMPLE)


def registered_versions(workspace: Workspace) -> list[tuple[str, list[str]]]:
    uri = workspace.env()["MLFLOW_TRACKING_URI"]
    # Both URIs: an in-process test before may have set a registry URI for the whole process.
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name = 'btc_direction'")
    # search_model_versions leaves aliases out: ask each version
    return sorted(
        (str(v.version), sorted(client.get_model_version("btc_direction", v.version).aliases)) for v in versions
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    workspace = Workspace(tmp_path_factory.mktemp("unchanged"))
    make_run(workspace)
    first = registered_versions(workspace)
    second_run = make_run(workspace)
    second = registered_versions(workspace)
    return first, second, second_run


def test_a_second_run_on_unchanged_candles_registers_no_model_version(two_runs):
    first, second, _ = two_runs
    assert first == [("1", ["champion"])]
    assert second == first


def test_the_second_run_says_which_version_already_holds_these_inputs(two_runs):
    _, _, second_run = two_runs
    log = second_run.stdout + second_run.stderr
    assert "model version 1 was trained on exactly these inputs: nothing to train" in log
