"""The production profile's pieces that need no server: its layout and ports, the credentials,
the files it renders, and the instance template checked against Dagster's own schema."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import process_workspace_config

from btc_lifecycle.config import PROJECT_ROOT, ConfigError, load_settings, read_env_file
from btc_lifecycle.production.layout import DEFAULT_PORTS, INSTANCE_TEMPLATE, ProfileLayout
from btc_lifecycle.production.postgres import ProfileError, ensure_passfile, read_password, scram_verifier
from btc_lifecycle.production.services import write_instance, write_profile_env

NO_ENV_FILE = {"BTC_ENV_FILE": "/nonexistent/.env"}


def layout_in(tmp_path: Path, **env: str) -> ProfileLayout:
    return ProfileLayout.from_env({**NO_ENV_FILE, "PROFILE_DIR": str(tmp_path), **env})


def validated_instance(home: Path) -> dict:
    """A dagster.yaml checked as Dagster checks it: the instance schema, then each part's own
    config schema where its class is installed here (storage, run coordinator, run launcher),
    environment sources resolved; returns the resolved config."""
    import importlib

    from dagster._config import process_config

    config, _ = dagster_instance_config(str(home))
    resolved = dict(config)
    if "storage" in config:
        ((kind, value),) = config["storage"].items()
        classes = {"postgres": "dagster_postgres.DagsterPostgresStorage", "sqlite": "dagster.DagsterSqliteStorage"}
        resolved["storage"] = {kind: _class_config(classes[kind], value, process_config, importlib)}
    for part in ("run_coordinator", "run_launcher"):
        if part in config:
            path = f"{config[part]['module']}.{config[part]['class']}"
            try:
                value = _class_config(path, config[part].get("config") or {}, process_config, importlib)
            except ModuleNotFoundError:
                continue  # dagster-k8s, dagster-docker, ...: not installed here, the instance schema only
            resolved[part] = {**config[part], "config": value}
    return resolved


def _class_config(path: str, value: dict, process_config, importlib) -> dict:
    module, name = path.rsplit(".", 1)
    result = process_config(getattr(importlib.import_module(module), name).config_type(), value)
    assert result.success, f"{path}: {[error.message for error in result.errors]}"
    return result.value


def instance_env(monkeypatch, layout: ProfileLayout) -> None:
    for key, value in layout.client_environment().items():
        monkeypatch.setenv(key, value)


def test_by_default_the_profile_lives_in_data_on_fixed_loopback_ports():
    layout = ProfileLayout.from_env(NO_ENV_FILE)
    assert layout.root == (PROJECT_ROOT / "data").resolve()
    assert layout.pg_dir == layout.root / "postgres"
    assert layout.dagster_home == layout.root / "dagster_home_production"
    assert layout.profile_env == layout.root / "profile.env"
    ports = (layout.pg_port, layout.mlflow_port, layout.dagster_port, layout.code_server_port, layout.redis_port)
    assert ports == tuple(DEFAULT_PORTS.values())
    assert layout.mlflow_url == f"http://127.0.0.1:{layout.mlflow_port}"


@pytest.mark.parametrize("value", ["0", "70000", "http", "-1"])
def test_a_bad_port_is_refused_naming_its_variable(tmp_path, value):
    with pytest.raises(ConfigError, match="PROFILE_PG_PORT must be a port number"):
        layout_in(tmp_path, PROFILE_PG_PORT=value)


def test_two_parts_on_one_port_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="ports must differ"):
        layout_in(tmp_path, PROFILE_PG_PORT="5000", PROFILE_MLFLOW_PORT="5000")


def test_a_profile_folder_that_make_could_not_read_back_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="PROFILE_DIR must not contain ' '"):
        layout_in(tmp_path / "with space")


def test_the_scram_verifier_proves_the_password_without_holding_it():
    password = "correct-horse-battery-staple"
    verifier = scram_verifier(password)
    assert password not in verifier
    scheme, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, server_key = (base64.b64decode(part) for part in keys.split(":"))
    assert scheme == "SCRAM-SHA-256" and int(iterations) == 4096
    # RFC 5802: what a server checks a client's proof against.
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert hashlib.sha256(client_key).digest() == stored_key
    assert hmac.new(salted, b"Server Key", hashlib.sha256).digest() == server_key
    assert scram_verifier(password) != verifier  # a new salt each time


def test_the_password_file_is_private_made_once_and_read_back(tmp_path):
    layout = layout_in(tmp_path)
    ensure_passfile(layout)
    first = read_password(layout)
    ensure_passfile(layout)
    assert read_password(layout) == first and len(first) >= 32
    assert layout.passfile.stat().st_mode & 0o777 == 0o600
    (line,) = [x for x in layout.passfile.read_text().splitlines() if not x.startswith("#")]
    assert line == f"*:*:*:btc_lifecycle:{first}"  # libpq's format: any host (worker hosts read it too), any port


def test_a_password_file_others_can_read_is_refused(tmp_path):
    layout = layout_in(tmp_path)
    ensure_passfile(layout)
    layout.passfile.chmod(0o644)
    with pytest.raises(ProfileError, match="readable by others"):
        ensure_passfile(layout)


def test_profile_env_points_make_and_the_env_reader_at_the_profile_without_a_secret(tmp_path):
    layout = layout_in(tmp_path)
    ensure_passfile(layout)
    write_profile_env(layout)
    text = layout.profile_env.read_text()
    assert read_env_file(layout.profile_env) == layout.client_environment()
    assert all(line.startswith(("#", "export ")) for line in text.splitlines())  # make's syntax too
    assert read_password(layout) not in text and "PASSWORD" not in text.upper()
    assert read_env_file(layout.profile_env)["MLFLOW_TRACKING_URI"] == layout.mlflow_url


def test_the_settings_under_the_profile_send_artifacts_through_the_tracking_server(tmp_path):
    layout = layout_in(tmp_path)
    settings = load_settings({**NO_ENV_FILE, **layout.client_environment()})
    assert settings.mlflow_tracking_uri == settings.mlflow_registry_uri == layout.mlflow_url
    assert settings.mlflow_artifact_location == "mlflow-artifacts:/btc_direction"
    assert settings.mlflow_ui_url == layout.mlflow_url


def test_the_rendered_instance_is_valid_for_dagster_and_matches_the_embedded_pools(tmp_path, monkeypatch):
    layout = layout_in(tmp_path, PROFILE_PG_PORT="6543")
    write_instance(layout)
    instance_env(monkeypatch, layout)
    config = validated_instance(layout.dagster_home)
    postgres = config["storage"]["postgres"]["postgres_db"]
    assert postgres["scheme"] == "postgresql+psycopg2"  # psycopg 3 breaks Dagster's NOTIFY
    assert (postgres["hostname"], postgres["port"], postgres["db_name"]) == ("127.0.0.1", 6543, "dagster")
    assert postgres["password"] == ""  # libpq reads it from PGPASSFILE
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    embedded = yaml.safe_load((PROJECT_ROOT / "config" / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"] == embedded["concurrency"]["pools"]


def test_the_queue_allows_one_run_per_exchange_tag_the_automation_sets(monkeypatch, tmp_path):
    from btc_lifecycle.definitions import build_definitions
    from btc_lifecycle.defs.schedules import EXCHANGE_TAG

    limits = yaml.safe_load(INSTANCE_TEMPLATE.read_text())["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limits == [{"key": EXCHANGE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    assert build_definitions(load_settings({})).resolve_job_def("ingestion_job").tags == {EXCHANGE_TAG: "binance"}


def test_the_workspace_names_the_code_server_on_loopback(tmp_path):
    layout = layout_in(tmp_path, PROFILE_CODE_SERVER_PORT="4999")
    write_instance(layout)
    raw = yaml.safe_load(layout.workspace_file.read_text())
    process_workspace_config(raw)  # raises on a shape Dagster does not take
    assert raw["load_from"] == [{"grpc_server": {"host": "127.0.0.1", "port": 4999, "location_name": "btc_lifecycle"}}]


def test_the_instance_template_is_copied_as_is(tmp_path):
    layout = layout_in(tmp_path)
    write_instance(layout)
    assert (layout.dagster_home / "dagster.yaml").read_text() == INSTANCE_TEMPLATE.read_text()
    shutil.rmtree(layout.dagster_home)


def test_a_cluster_folder_the_server_user_cannot_reach_is_refused_naming_the_parent():
    import pwd
    import tempfile

    from btc_lifecycle.production.postgres import _check_reachable

    # Not under tmp_path: pytest's own folders are private to their owner, which is the point.
    base = Path(tempfile.mkdtemp(prefix="btc-reach-"))
    try:
        base.chmod(0o711)
        private = base / "private"
        private.mkdir(mode=0o700)
        other = pwd.struct_passwd(("someone", "x", 64_000, 64_000, "", "/", "/bin/false"))
        with pytest.raises(ProfileError, match=f"cannot reach .*: {private} is not searchable"):
            _check_reachable(private / "postgres", other)
        private.chmod(0o711)
        _check_reachable(private / "postgres", other)
    finally:
        shutil.rmtree(base)
