"""docs/operations.md and docs/deployment.md cannot rot: every YAML block in them parses, each dagster.yaml is valid for
Dagster (its instance schema, and each part's own schema where the package is installed), each
workspace is valid, the Helm values map to a valid instance, and the limits they all set are the
ones the tested profile runs with (config/dagster.production.yaml)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from dagster._core.workspace.config_schema import process_workspace_config

from btc_lifecycle.config import PROJECT_ROOT
from btc_lifecycle.production.layout import INSTANCE_TEMPLATE
from btc_lifecycle_tests.production.test_layout import validated_instance

DOC = PROJECT_ROOT / "docs" / "operations.md"
DEPLOYMENT = PROJECT_ROOT / "docs" / "deployment.md"
PROFILE = yaml.safe_load(INSTANCE_TEMPLATE.read_text())
# What a dagster.yaml on this page may read from the environment, set for the check.
DOC_ENV = {
    "BTC_PG_HOST": "postgres.internal",
    "BTC_PG_USER": "btc_lifecycle",
    "DAGSTER_PG_PASSWORD": "not-a-real-password",
}


def blocks(language: str) -> list[tuple[str, str]]:
    """(first line, text) of each fenced block in ``language``."""
    text = DOC.read_text(encoding="utf-8") + DEPLOYMENT.read_text(encoding="utf-8")
    found = re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)
    return [(text.splitlines()[0], text) for text in found]


def yaml_blocks(kind: str) -> list[dict]:
    """The YAML blocks whose first line (a comment) names ``kind``."""
    return [yaml.safe_load(text) for first, text in blocks("yaml") if kind in first]


def test_every_yaml_block_parses_and_says_what_it_is():
    found = blocks("yaml")
    assert len(found) >= 5
    for first, text in found:
        assert first.startswith("# "), f"a YAML block must start with a comment naming its file: {first!r}"
        assert isinstance(yaml.safe_load(text), dict), first


def check_instance(raw: dict, tmp_path: Path, monkeypatch) -> dict:
    for key, value in DOC_ENV.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(raw))
    return validated_instance(home)


def assert_same_limits_as_the_profile(instance: dict) -> None:
    assert instance["concurrency"] == PROFILE["concurrency"]
    assert instance["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance["run_monitoring"]["enabled"] is True
    assert instance["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


@pytest.mark.parametrize("launcher", ["K8sRunLauncher", "DockerRunLauncher"])
def test_each_dagster_yaml_is_valid_and_keeps_the_profiles_limits(launcher, tmp_path, monkeypatch):
    (raw,) = [block for block in yaml_blocks("dagster.yaml") if block["run_launcher"]["class"] == launcher]
    assert_same_limits_as_the_profile(check_instance(raw, tmp_path, monkeypatch))


def test_each_workspace_is_valid_for_dagster():
    workspaces = yaml_blocks("workspace.yaml")
    assert workspaces
    for workspace in workspaces:
        process_workspace_config(workspace)
        assert [entry["grpc_server"]["location_name"] for entry in workspace["load_from"]] == ["btc_lifecycle"]


def instance_from_helm_values(values: dict) -> dict:
    """The dagster.yaml the chart renders from ``values`` (its instance ConfigMap), for what the
    values set: storage from postgresql.*, the coordinator, the launcher, run monitoring, and
    additionalInstanceConfig merged in."""

    def snake(name: str) -> str:
        return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()

    postgres = values["postgresql"]
    daemon = values["dagsterDaemon"]
    queued = (daemon["runCoordinator"].get("config") or {}).get("queuedRunCoordinator") or {}
    return {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "scheme": postgres["postgresqlScheme"],
                    "hostname": postgres["postgresqlHost"],
                    "port": postgres["service"]["port"],
                    "username": postgres["postgresqlUsername"],
                    "password": {"env": "DAGSTER_PG_PASSWORD"},
                    "db_name": postgres["postgresqlDatabase"],
                }
            }
        },
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": daemon["runCoordinator"]["type"],
            **({"config": {snake(k): v for k, v in queued.items()}} if queued else {}),
        },
        "run_launcher": {"module": "dagster_k8s", "class": values["runLauncher"]["type"], "config": {}},
        "run_monitoring": {snake(k): v for k, v in daemon["runMonitoring"].items()},
        **values.get("additionalInstanceConfig", {}),
    }


def test_the_helm_values_render_a_valid_instance_with_the_profiles_limits(tmp_path, monkeypatch):
    (values,) = yaml_blocks("values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and "postgresqlPassword" not in values["postgresql"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "btc_lifecycle.definitions"]
    assert_same_limits_as_the_profile(check_instance(instance_from_helm_values(values), tmp_path, monkeypatch))


def test_the_workers_celery_config_on_the_page_is_the_one_make_up_writes(tmp_path):
    from btc_lifecycle.adapters.worker_pool import write_worker_config
    from btc_lifecycle.production.layout import ProfileLayout

    (shown,) = yaml_blocks("celery.yaml")
    layout = ProfileLayout.from_env({"BTC_ENV_FILE": "/nonexistent/.env", "PROFILE_WORKERS": "2"})
    written = write_worker_config(tmp_path / "celery.yaml", layout.broker_url, layout.visibility_timeout)
    assert shown == yaml.safe_load(written.read_text())


def test_the_deployment_page_names_every_variable_the_worker_pool_sets():
    from btc_lifecycle.production.layout import ProfileLayout

    text = DEPLOYMENT.read_text(encoding="utf-8")
    layout = ProfileLayout.from_env({"BTC_ENV_FILE": "/nonexistent/.env", "PROFILE_WORKERS": "2"})
    for variable in [*layout.pool_environment(), "PROFILE_WORKERS", "PROFILE_HOST", "PROFILE_REDIS_PORT"]:
        assert f"`{variable}`" in text, variable


def test_the_page_names_the_ports_and_files_the_profile_uses():
    from btc_lifecycle.production.layout import DEFAULT_PORTS

    text = DOC.read_text(encoding="utf-8")
    for variable, port in DEFAULT_PORTS.items():
        assert f"{port}` (`{variable}`)" in text
    for name in ("config/dagster.production.yaml", "data/profile/pgpass", "data/profile.env", "data/postgres"):
        assert name in text
