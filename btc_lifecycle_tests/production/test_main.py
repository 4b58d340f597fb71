"""``python -m btc_lifecycle.production up|down|status``: what it prints, its ``--json`` and
``--require-up``, and its exit codes (0, 2 with one ``error:`` line for what the person must fix).
The profile's parts are PostgreSQL for real and the stand-ins of test_profile_services.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from btc_lifecycle.production import services
from btc_lifecycle.production.__main__ import main
from btc_lifecycle.production.layout import ProfileLayout
from btc_lifecycle_tests.e2e.workspace import REPO_ROOT
from btc_lifecycle_tests.production.test_postgres import profile_environment, reachable_folder
from btc_lifecycle_tests.production.test_services import PARTS, Profile, kill_everything, write_standins


def use_environment(monkeypatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def never_started(tmp_path, monkeypatch) -> ProfileLayout:
    env = profile_environment(tmp_path / "profile")
    use_environment(monkeypatch, env)
    return ProfileLayout.from_env(env)


def test_status_of_a_profile_that_is_not_up_prints_one_row_per_part(never_started, capsys):
    assert main(["status"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split()[:2] for row in rows] == [[f"{name}:", "down"] for name in PARTS]
    assert rows[0].split()[2] == f"127.0.0.1:{never_started.pg_port}"
    assert rows[4].split() == ["daemon:", "down"]  # no address, no pid


def test_status_json_lists_every_part_with_its_port(never_started, capsys):
    assert main(["status", "--json"]) == 0
    parts = json.loads(capsys.readouterr().out)
    assert [(p["name"], p["state"], p["port"], p["pid"], p["answers"]) for p in parts] == [
        ("postgres", "down", never_started.pg_port, None, False),
        ("mlflow", "down", never_started.mlflow_port, None, False),
        ("code-server", "down", never_started.code_server_port, None, False),
        ("webserver", "down", never_started.dagster_port, None, False),
        ("daemon", "down", None, None, False),
    ]


def test_require_up_on_a_profile_that_is_down_exits_2_with_one_line_saying_what_to_run(never_started, capsys):
    assert main(["status", "--require-up"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "error: the production profile is not up (postgres, mlflow, code-server, webserver, daemon down): "
        "run `make up`, or `make down` to go back to the embedded profile\n"
    )


def test_down_of_a_profile_that_is_not_up_is_fine(never_started, capsys):
    assert main(["down"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:5] == [f"{name + ':':<12} was not running" for name in reversed(PARTS[1:])] + [
        "postgres:    was not running"
    ]
    assert out[5].startswith("profile down in ") and out[5].endswith(" s")


def test_a_bad_port_in_the_environment_is_one_error_line_and_exit_2(never_started, monkeypatch, capsys):
    monkeypatch.setenv("PROFILE_MLFLOW_PORT", "99999")
    assert main(["status"]) == 2
    assert capsys.readouterr().err == (
        "error: environment: PROFILE_MLFLOW_PORT must be a port number from 1 to 65535, got '99999'\n"
    )


def test_up_that_cannot_make_the_cluster_is_one_error_line_and_exit_2(monkeypatch, capsys):
    root = reachable_folder()
    try:
        layout = ProfileLayout.from_env(profile_environment(root))
        use_environment(monkeypatch, profile_environment(root) | {"PROFILE_PG_PORT": str(layout.pg_port)})
        layout.pg_dir.mkdir(parents=True)
        (layout.pg_dir / "other.txt").write_text("not a cluster")
        assert main(["up"]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {layout.pg_dir} is not empty and holds no PostgreSQL cluster: move it away\n"
    finally:
        shutil.rmtree(root)


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another user only when we are root")
def test_up_in_a_folder_the_server_user_cannot_reach_names_the_folder_to_open(never_started, capsys):
    assert main(["up"]) == 2
    err = capsys.readouterr().err
    private = next(parent for parent in reversed(never_started.pg_dir.parents) if parent.stat().st_mode & 0o001 == 0)
    assert err == (
        f"error: the 'postgres' user cannot reach {never_started.pg_dir}: {private} is not searchable by others "
        f"(chmod o+x {private}, or set PROFILE_DIR to a folder it can reach)\n"
    )


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "the following arguments are required: command" in capsys.readouterr().err


def test_the_module_runs_as_a_program_with_the_same_exit_codes(tmp_path):
    env = {**profile_environment(tmp_path / "profile"), "PATH": "/usr/bin:/bin"}
    down = subprocess.run(
        [sys.executable, "-m", "btc_lifecycle.production", "status", "--require-up"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (down.returncode, down.stdout) == (2, "")
    assert down.stderr.startswith("error: the production profile is not up (postgres, mlflow")


@pytest.fixture
def standin_profile(monkeypatch) -> Iterator[Profile]:
    """A profile whose MLflow and Dagster programs are the stand-ins, in the environment."""
    root = reachable_folder()
    env = {**profile_environment(root / "profile"), "STANDIN_DIR": str(root / "standins")}
    write_standins(root / "standins")
    (root / "profile").mkdir()
    (root / "profile").chmod(0o711)
    use_environment(monkeypatch, env)
    monkeypatch.setattr(services, "BIN", root / "standins")
    profile = Profile(ProfileLayout.from_env(env), env, root / "standins")
    try:
        yield profile
    finally:
        kill_everything(profile)
        shutil.rmtree(root, ignore_errors=True)


def test_up_status_and_down_through_the_command(standin_profile, capsys):
    layout = standin_profile.layout
    assert main(["up"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"postgres: initialized a cluster in {layout.pg_dir}"
    assert out[-1].startswith("profile up in ")
    pids = standin_profile.pids()
    assert list(pids) == PARTS

    assert main(["status", "--require-up"]) == 0
    assert capsys.readouterr() == ("", "")

    assert main(["status"]) == 0
    rows = {row.split(":")[0]: row for row in capsys.readouterr().out.splitlines()}
    assert rows["mlflow"].split() == [
        "mlflow:",
        "up",
        "answers",
        f"127.0.0.1:{layout.mlflow_port}",
        "pid",
        str(pids["mlflow"]),
    ]
    assert rows["daemon"].split() == ["daemon:", "up", "answers", "pid", str(pids["daemon"])]

    assert main(["down"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("profile down in ")
    assert standin_profile.pids() == {}
    assert not Path(layout.profile_env).exists()
