"""The profile's own PostgreSQL cluster, for real and fast (initdb and a start take about a second):
created once, started on a free loopback port, reachable over TCP only by the project's role with
the password file's password, stopped; and what it refuses, with a message that says what to fix.

As root (this machine) the server runs as the ``postgres`` system user, so the cluster lives in a
folder that user can reach (pytest's own folders are private to root)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from btc_lifecycle.production import postgres
from btc_lifecycle.production.layout import ProfileLayout
from btc_lifecycle.production.postgres import ProfileError
from btc_lifecycle.production.processes import free_ports, group_members, read_record

NO_ENV_FILE = {"BTC_ENV_FILE": "/nonexistent/.env"}


def profile_environment(root: Path) -> dict[str, str]:
    """A profile in ``root`` on four free loopback ports, no .env file."""
    pg, mlflow, dagster, code = free_ports(4)
    return {
        **NO_ENV_FILE,
        "PROFILE_DIR": str(root),
        "PROFILE_PG_PORT": str(pg),
        "PROFILE_MLFLOW_PORT": str(mlflow),
        "PROFILE_DAGSTER_PORT": str(dagster),
        "PROFILE_CODE_SERVER_PORT": str(code),
        "PROFILE_MLFLOW_WORKERS": "1",
    }


def reachable_folder() -> Path:
    """A fresh folder the ``postgres`` user can walk through (the caller removes it)."""
    root = Path(tempfile.mkdtemp(prefix="btc-pg-"))
    root.chmod(0o711)
    return root


def stop_cluster(layout: ProfileLayout) -> None:
    """Whatever happened: the server stopped, by its pidfile or by its postmaster.pid."""
    postgres.stop(layout, layout.log_dir / "profile-postgres.log")
    postmaster = layout.pg_dir / "postmaster.pid"
    if postmaster.exists():
        pid = int(postmaster.read_text().split()[0])
        for member in group_members(pid):
            os.kill(member, 9)


@pytest.fixture
def profile_root() -> Iterator[Path]:
    root = reachable_folder()
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[ProfileLayout, Path]]:
    """One cluster, created and started for the module, with the role and its databases."""
    root = reachable_folder()
    layout = ProfileLayout.from_env(profile_environment(root))
    log = layout.log_dir / "profile-postgres.log"
    try:
        assert postgres.ensure_cluster(layout, log) is True
        postgres.ensure_passfile(layout)
        postgres.start(layout, log)
        postgres.ensure_role_and_databases(layout, postgres.read_password(layout))
        yield layout, log
    finally:
        stop_cluster(layout)
        shutil.rmtree(root, ignore_errors=True)


def project_connection(layout: ProfileLayout, dbname: str, password: str, user: str = "btc_lifecycle"):
    return psycopg2.connect(
        host="127.0.0.1", port=layout.pg_port, user=user, password=password, dbname=dbname, connect_timeout=5
    )


def test_the_cluster_belongs_to_the_postgres_user_and_is_private(cluster):
    layout, _ = cluster
    info = layout.pg_dir.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (postgres.server_user().pw_uid, 0o700)
    assert (layout.pg_dir / "pg_hba.conf").read_text().splitlines()[1:] == [
        "local all postgres trust",
        "host dagster,mlflow btc_lifecycle 127.0.0.1/32 scram-sha-256",
    ]


def test_the_project_role_reaches_both_databases_over_tcp_with_the_files_password(cluster):
    layout, _ = cluster
    password = postgres.read_password(layout)
    for database in ("dagster", "mlflow"):
        with project_connection(layout, database, password) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database(), inet_server_addr()::text")
            assert cursor.fetchone() == ("btc_lifecycle", database, "127.0.0.1/32")
        conn.close()


def test_libpq_finds_the_password_in_the_password_file_alone(cluster):
    layout, _ = cluster
    conn = psycopg2.connect(
        f"host=127.0.0.1 port={layout.pg_port} user=btc_lifecycle dbname=mlflow passfile={layout.passfile}"
    )
    conn.close()


@pytest.mark.parametrize(
    ("user", "dbname", "password", "refused"),
    [
        ("btc_lifecycle", "mlflow", "wrong", "password authentication failed"),
        ("postgres", "postgres", "", "no pg_hba.conf entry"),  # the superuser only over the socket
        ("btc_lifecycle", "postgres", None, "no pg_hba.conf entry"),  # only its two databases
    ],
)
def test_tcp_logins_other_than_the_project_roles_are_refused(cluster, user, dbname, password, refused):
    layout, _ = cluster
    with pytest.raises(psycopg2.OperationalError, match=refused):
        project_connection(layout, dbname, postgres.read_password(layout) if password is None else password, user)


def test_the_stored_password_is_a_scram_verifier_not_the_password(cluster):
    layout, _ = cluster
    conn = postgres.superuser_connection(layout)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'btc_lifecycle'")
            (stored,) = cursor.fetchone()
    finally:
        conn.close()
    assert stored.startswith("SCRAM-SHA-256$4096:") and postgres.read_password(layout) not in stored


def test_starting_again_keeps_the_running_server(cluster):
    layout, log = cluster
    before = read_record(postgres.pidfile(layout))
    assert postgres.start(layout, log) == before
    assert postgres.ensure_cluster(layout, log) is False  # an existing cluster is kept as it is


def test_a_new_password_file_takes_effect_at_the_next_role_update(cluster):
    layout, _ = cluster
    old = postgres.read_password(layout)
    layout.passfile.unlink()
    postgres.ensure_passfile(layout)
    new = postgres.read_password(layout)
    postgres.ensure_role_and_databases(layout, new)  # ALTER ROLE this time; the databases exist
    project_connection(layout, "dagster", new).close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        project_connection(layout, "dagster", old)


def test_the_server_listens_on_its_port_and_logs_its_start(cluster):
    layout, log = cluster
    text = log.read_text()
    assert f"btc_lifecycle.production: starting postgres on 127.0.0.1:{layout.pg_port}" in text
    assert "btc_lifecycle.production: postgres started (pid " in text
    assert postgres.accepts_connections(layout)


def test_stop_ends_the_server_and_a_second_stop_finds_nothing_running(profile_root):
    layout = ProfileLayout.from_env(profile_environment(profile_root))
    log = layout.log_dir / "profile-postgres.log"
    try:
        postgres.ensure_cluster(layout, log)
        record = postgres.start(layout, log)
        assert postgres.stop(layout, log) == record.pid
        assert not record.alive and group_members(record.pid) == []
        assert not postgres.pidfile(layout).exists()
        assert postgres.accepts_connections(layout) is False
        assert postgres.stop(layout, log) is None
        assert log.read_text().rstrip().endswith(f"postgres stopped (pid {record.pid})")
    finally:
        stop_cluster(layout)


def test_a_server_that_cannot_listen_is_an_error_pointing_at_its_log(profile_root):
    layout = ProfileLayout.from_env(profile_environment(profile_root))
    log = layout.log_dir / "profile-postgres.log"
    try:
        postgres.ensure_cluster(layout, log)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", layout.pg_port))
            taken.listen()
            with pytest.raises(ProfileError, match=rf"postgres exited with code 1 at start: see {log}"):
                postgres.start(layout, log)
        assert not postgres.pidfile(layout).exists()
        assert "could not bind" in log.read_text() or "could not create" in log.read_text()
    finally:
        stop_cluster(layout)


def test_a_folder_that_holds_something_else_is_not_made_a_cluster(profile_root):
    layout = ProfileLayout.from_env(profile_environment(profile_root))
    layout.pg_dir.mkdir(parents=True)
    (layout.pg_dir / "notes.txt").write_text("mine")
    with pytest.raises(ProfileError, match=f"{layout.pg_dir} is not empty and holds no PostgreSQL cluster"):
        postgres.ensure_cluster(layout, layout.log_dir / "profile-postgres.log")
    assert (layout.pg_dir / "notes.txt").read_text() == "mine"


def test_a_failed_initdb_is_an_error_pointing_at_its_log(profile_root, monkeypatch):
    layout = ProfileLayout.from_env(profile_environment(profile_root))
    log = layout.log_dir / "profile-postgres.log"
    # initdb refuses an encoding it does not know; the locale we pass is fine.
    real_binary = postgres.binary

    def failing(name: str) -> Path:
        return Path("/bin/false") if name == "initdb" else real_binary(name)

    monkeypatch.setattr(postgres, "binary", failing)
    with pytest.raises(ProfileError, match=rf"initdb failed \(exit code 1\): see {log}"):
        postgres.ensure_cluster(layout, log)
    assert f"initdb {layout.pg_dir}" in log.read_text()


def test_a_server_program_that_is_not_installed_is_named_with_what_to_install():
    with pytest.raises(ProfileError, match="PostgreSQL's no-such-program is not installed: install the Debian"):
        postgres.binary("no-such-program")


def test_the_newest_installed_server_is_preferred():
    newest = max(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    assert postgres.binary("postgres") == newest


def test_as_root_the_server_runs_as_the_postgres_user():
    if os.geteuid() != 0:
        assert postgres.server_user() is None
    else:
        assert postgres.server_user().pw_name == "postgres"


def test_a_password_file_without_a_password_line_says_to_remove_it(tmp_path):
    layout = ProfileLayout.from_env({**NO_ENV_FILE, "PROFILE_DIR": str(tmp_path)})
    layout.passfile.parent.mkdir(parents=True)
    layout.passfile.write_text("# only a comment\n\n")
    with pytest.raises(ProfileError, match=f"{layout.passfile} holds no password line: remove it"):
        postgres.read_password(layout)


def test_the_server_command_listens_on_loopback_with_its_socket_in_the_private_folder(tmp_path):
    layout = ProfileLayout.from_env({**NO_ENV_FILE, "PROFILE_DIR": str(tmp_path), "PROFILE_PG_PORT": "6001"})
    command = postgres.server_command(layout)
    settings = dict(command[i + 1].split("=", 1) for i, part in enumerate(command) if part == "-c")
    assert command[1:3] == ["-D", str(layout.pg_dir)]
    assert settings["listen_addresses"] == "127.0.0.1" and settings["port"] == "6001"
    assert settings["unix_socket_directories"] == str(layout.pg_dir)
    assert settings["password_encryption"] == "scram-sha-256"
