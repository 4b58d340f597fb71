"""The worker pool's pieces that need no server: the profile setting that turns it on, the parts
it adds, the one Celery configuration the executor and the workers share, and what the launcher
hands to hosts that do not share its environment. The pool itself runs in
``e2e/test_worker_pool.py`` (separate network hosts)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml

from btc_lifecycle.adapters.worker_pool import DEFAULT_VISIBILITY_TIMEOUT_SECONDS, celery_config, write_worker_config
from btc_lifecycle.config import ConfigError, load_settings
from btc_lifecycle.definitions import run_executor
from btc_lifecycle.launch import with_exchange_config
from btc_lifecycle.production import services
from btc_lifecycle.production.layout import ProfileLayout
from btc_lifecycle.production.processes import write_record

NO_ENV_FILE = {"BTC_ENV_FILE": "/nonexistent/.env"}


def layout_in(tmp_path: Path, **env: str) -> ProfileLayout:
    return ProfileLayout.from_env({**NO_ENV_FILE, "PROFILE_DIR": str(tmp_path), **env})


def test_without_workers_the_profile_has_no_pool_and_its_runs_execute_in_their_own_process(tmp_path):
    layout = layout_in(tmp_path)
    assert not layout.has_pool
    assert [s.name for s in services.services(layout)] == ["mlflow", "code-server", "webserver", "daemon"]
    assert "CELERY_BROKER_URL" not in layout.client_environment()
    assert run_executor(load_settings({**NO_ENV_FILE})) is dg.in_process_executor


def test_workers_add_redis_and_that_many_celery_workers_after_the_dagster_parts(tmp_path):
    layout = layout_in(tmp_path, PROFILE_WORKERS="2")
    names = [s.name for s in services.services(layout)]
    assert names == ["mlflow", "code-server", "webserver", "daemon", "redis", "worker-1", "worker-2"]
    worker = services.services(layout)[-1]
    assert worker.command[1:4] == ["worker", "start", "--app"] and "--name" in worker.command
    assert worker.command[worker.command.index("--name") + 1] == "worker-2"
    assert worker.command[worker.command.index("--config-yaml") + 1] == str(layout.worker_config)
    redis = services.services(layout)[4]
    assert redis.port == layout.redis_port and redis.command[redis.command.index("--appendonly") + 1] == "yes"


def test_workers_zero_is_the_broker_alone_for_workers_on_other_hosts(tmp_path):
    layout = layout_in(tmp_path, PROFILE_WORKERS="0")
    assert layout.has_pool and services.local_workers(layout) == []
    assert [s.name for s in services.services(layout)][-1] == "redis"


def test_with_a_pool_every_process_sends_steps_to_redis_and_writes_the_shared_parquet_store(tmp_path):
    layout = layout_in(tmp_path, PROFILE_WORKERS="1", PROFILE_HOST="10.1.2.3", PROFILE_REDIS_PORT="7000")
    env = layout.client_environment()
    assert env["CELERY_BROKER_URL"] == "redis://10.1.2.3:7000/0"
    assert env["FEATURE_STORE_BACKEND"] == "parquet"
    assert env["FEATURE_PARQUET_DIR"] == str(tmp_path.resolve() / "feature_store" / "parquet")
    assert env["PROFILE_HOST"] == env["BTC_PG_HOST"] == "10.1.2.3"
    assert layout.mlflow_url.startswith("http://10.1.2.3:")
    settings = load_settings({**NO_ENV_FILE, **env})
    assert settings.celery_broker_url == "redis://10.1.2.3:7000/0"
    assert run_executor(settings).name == "celery"


def test_every_part_listens_on_the_profile_host(tmp_path):
    layout = layout_in(tmp_path, PROFILE_WORKERS="1", PROFILE_HOST="10.1.2.3")
    by_name = {s.name: s.command for s in services.services(layout)}
    for name in ("mlflow", "code-server", "webserver"):
        assert by_name[name][by_name[name].index("--host") + 1] == "10.1.2.3", name
    assert by_name["redis"][by_name["redis"].index("--bind") + 1] == "10.1.2.3"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PROFILE_WORKERS", "17", "PROFILE_WORKERS"),
        ("PROFILE_WORKERS", "two", "PROFILE_WORKERS"),
        ("PROFILE_HOST", "db.internal", "PROFILE_HOST must be an IPv4 address"),
        ("CELERY_VISIBILITY_TIMEOUT", "1", "CELERY_VISIBILITY_TIMEOUT"),
    ],
)
def test_a_bad_pool_setting_is_refused_naming_its_variable(tmp_path, variable, value, message):
    with pytest.raises(ConfigError, match=message):
        layout_in(tmp_path, **{variable: value})


def test_a_broker_url_that_is_not_redis_is_refused_naming_the_variable():
    with pytest.raises(ConfigError, match="CELERY_BROKER_URL"):
        load_settings({**NO_ENV_FILE, "CELERY_BROKER_URL": "amqp://guest@localhost//"})


def test_the_workers_read_the_executors_own_config(tmp_path):
    path = write_worker_config(tmp_path / "celery.yaml", "redis://10.0.0.1:6380/0", 120)
    assert yaml.safe_load(path.read_text()) == {"execution": {"config": celery_config("redis://10.0.0.1:6380/0", 120)}}


def test_a_dead_workers_step_returns_to_the_queue():
    settings = celery_config("redis://10.0.0.1:6380/0")["config_source"]
    assert settings["task_acks_late"] and settings["task_reject_on_worker_lost"]
    assert settings["worker_prefetch_multiplier"] == 1
    assert settings["broker_transport_options"]["visibility_timeout"] == DEFAULT_VISIBILITY_TIMEOUT_SECONDS


def test_down_and_status_find_the_pool_that_up_started_whatever_the_environment_says(tmp_path):
    started = layout_in(tmp_path, PROFILE_WORKERS="2")
    started.state_dir.mkdir(parents=True)
    for name in ("redis", "worker-1", "worker-2"):
        (started.state_dir / f"{name}.pid").write_text("{}")
    assert services.as_started(layout_in(tmp_path)).workers == 2
    assert services.as_started(layout_in(tmp_path / "other")).workers is None


def test_a_worker_host_without_the_pool_or_the_shared_store_is_refused(tmp_path):
    with pytest.raises(services.ProfileError, match="no worker pool"):
        services.run_worker(layout_in(tmp_path), "worker")
    layout = layout_in(tmp_path, PROFILE_WORKERS="0")
    with pytest.raises(services.ProfileError, match="is not on this host"):
        services.check_feature_store(layout)
    layout.feature_parquet_dir.mkdir(parents=True)  # an empty folder: a share that is not mounted
    with pytest.raises(services.ProfileError, match=str(layout.feature_parquet_dir)):
        services.check_feature_store(layout)


def test_the_launcher_hands_the_replay_exchange_to_other_hosts_in_the_runs_config():
    command = ["dagster", "asset", "materialize", "--select", "*"]
    given = with_exchange_config(command, "http://10.0.0.1:8123", Path("/data/candles.csv"))
    config = json.loads(given[given.index("--config-json") + 1])
    assert config == {
        "resources": {"exchange": {"config": {"api_url": "http://10.0.0.1:8123", "replay_file": "/data/candles.csv"}}}
    }
    retrain = [*command, "--config-json", json.dumps({"ops": {"model": {"config": {"force_retrain": True}}}})]
    merged = json.loads(with_exchange_config(retrain, "http://h:1", Path("/f")).pop(-1))
    assert merged["ops"]["model"]["config"]["force_retrain"] is True
    assert merged["resources"]["exchange"]["config"]["api_url"] == "http://h:1"
    assert with_exchange_config(["echo", "hi"], "http://h:1", Path("/f")) == ["echo", "hi"]


def test_down_stops_the_daemon_first_and_every_part_of_the_pool(tmp_path, monkeypatch):
    """Each part a real process (a stand-in that sleeps), recorded as `up` records it."""
    layout = layout_in(tmp_path, PROFILE_WORKERS="2")
    layout.state_dir.mkdir(parents=True)
    processes = {}
    for service in services.services(layout):
        processes[service.name] = subprocess.Popen(["sleep", "60"], start_new_session=True)
        write_record(service.pidfile(layout), processes[service.name].pid, service.port)
    monkeypatch.setattr(services.postgres, "stop", lambda layout, log: None)
    said: list[str] = []
    services.down(layout, say=said.append)
    stopped = [line.split(":")[0] for line in said if "stopped" in line]
    assert stopped[0] == "daemon"
    assert sorted(stopped) == sorted(processes)
    assert all(process.wait(timeout=30) is not None for process in processes.values())
