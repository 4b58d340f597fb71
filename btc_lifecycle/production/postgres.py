"""The profile's own PostgreSQL cluster: initialized under ``data/postgres``, listening on
127.0.0.1 only, holding the ``dagster`` and ``mlflow`` databases of one login role.

``initdb`` and ``postgres`` refuse to run as root; as root the cluster belongs to the
``postgres`` system user (the Debian package's). The superuser is reached only over the
cluster's Unix socket, inside its 0700 data folder; over TCP only the project's role may log in,
with a SCRAM password that exists in one place: libpq's password file (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

from btc_lifecycle.production.layout import DAGSTER_DB, DB_USER, LOOPBACK, MLFLOW_DB, ProfileLayout
from btc_lifecycle.production.processes import (
    ProfileError,
    Record,
    live_record,
    log_line,
    spawn,
    wait_for,
    write_record,
)

SYSTEM_USER = "postgres"  # who runs the server when we are root
SUPERUSER = "postgres"  # the cluster's bootstrap role, reachable only over the Unix socket
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def binary(name: str) -> Path:
    """A PostgreSQL server program: the Debian packages' newest, else one on PATH."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True):
        if (folder / name).is_file():
            return folder / name
    found = shutil.which(name)
    if found is None:
        raise ProfileError(
            f"PostgreSQL's {name} is not installed: install the Debian package postgresql "
            "(`make up` does it when run as root)"
        )
    return Path(found)


def server_user() -> pwd.struct_passwd | None:
    """The account the server runs as: None (ourselves) unless we are root, then ``postgres``."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise ProfileError(
            f"no '{SYSTEM_USER}' system user to run PostgreSQL as (it refuses root): install the Debian "
            "package postgresql, which creates it (`make up` does)"
        ) from None


def _as_server_user(user: pwd.struct_passwd | None) -> dict:
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _server_env(user: pwd.struct_passwd | None) -> dict[str, str]:
    home = user.pw_dir if user is not None else os.environ.get("HOME", "/")
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home}


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 7677), computed here so
    that the password itself never travels in a statement the server could log."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def ensure_passfile(layout: ProfileLayout) -> None:
    """libpq's password file for the project's role, with a new password when there is none.
    The password is never printed or logged."""
    if layout.passfile.exists():
        mode = layout.passfile.stat().st_mode & 0o777
        if mode & 0o077:
            raise ProfileError(f"{layout.passfile} is readable by others (mode {mode:o}): chmod 600 it")
        return
    layout.passfile.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(32)  # letters, digits, '-', '_': nothing libpq must escape
    fd = os.open(layout.passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# written by btc_lifecycle.production: the database password (libpq's PGPASSFILE)\n")
        handle.write(f"*:*:*:{DB_USER}:{password}\n")  # any host: worker hosts read this file too


def read_password(layout: ProfileLayout) -> str:
    """The project's role's password, from libpq's password file."""
    for line in layout.passfile.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            return line.rsplit(":", 1)[1]
    raise ProfileError(f"{layout.passfile} holds no password line: remove it and run up again")


def _check_reachable(folder: Path, user: pwd.struct_passwd | None) -> None:
    """The server user must be able to walk down to its data folder."""
    if user is None:
        return
    for parent in reversed(folder.parents):
        if parent.exists() and not parent.stat().st_mode & 0o001 and parent.stat().st_uid != user.pw_uid:
            raise ProfileError(
                f"the '{user.pw_name}' user cannot reach {folder}: {parent} is not searchable by others "
                f"(chmod o+x {parent}, or set PROFILE_DIR to a folder it can reach)"
            )


def ensure_cluster(layout: ProfileLayout, log: Path) -> bool:
    """Initialize the cluster under ``layout.pg_dir`` unless it exists; whether it was created."""
    folder = layout.pg_dir
    if (folder / "PG_VERSION").exists():
        return False
    user = server_user()
    folder.parent.mkdir(parents=True, exist_ok=True)
    _check_reachable(folder, user)
    folder.mkdir(mode=0o700, exist_ok=True)
    if any(folder.iterdir()):
        raise ProfileError(f"{folder} is not empty and holds no PostgreSQL cluster: move it away")
    if user is not None:
        os.chown(folder, user.pw_uid, user.pw_gid)
    log_line(log, f"initdb {folder}")
    with log.open("ab") as handle:
        result = subprocess.run(
            [
                str(binary("initdb")),
                "--pgdata",
                str(folder),
                "--username",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=reject",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=_server_env(user),
            cwd="/",
            check=False,
            **_as_server_user(user),
        )
    if result.returncode != 0:
        raise ProfileError(f"initdb failed (exit code {result.returncode}): see {log}")
    return True


def write_access_rules(layout: ProfileLayout) -> None:
    """pg_hba.conf, at every start: the superuser over the socket only (its folder is 0700); over
    TCP the project's role, only to its two databases, only with its SCRAM password, and only from
    loopback, or, when the profile listens on another address, from that address' subnet (the
    worker hosts)."""
    clients = "127.0.0.1/32" if layout.host == LOOPBACK else "samenet"
    (layout.pg_dir / "pg_hba.conf").write_text(
        "# written by btc_lifecycle.production\n"
        f"local all {SUPERUSER} trust\n"
        f"host {DAGSTER_DB},{MLFLOW_DB} {DB_USER} {clients} scram-sha-256\n",
        encoding="utf-8",
    )


def server_command(layout: ProfileLayout) -> list[str]:
    return [
        str(binary("postgres")),
        "-D",
        str(layout.pg_dir),
        "-c",
        f"listen_addresses={layout.host}",
        "-c",
        f"port={layout.pg_port}",
        "-c",
        f"unix_socket_directories={layout.pg_dir}",
        "-c",
        "password_encryption=scram-sha-256",
        "-c",
        "log_line_prefix=%m [%p] ",
    ]


def pidfile(layout: ProfileLayout) -> Path:
    return layout.state_dir / "postgres.pid"


def superuser_connection(layout: ProfileLayout):
    import psycopg2

    return psycopg2.connect(
        host=str(layout.pg_dir), port=layout.pg_port, user=SUPERUSER, dbname="postgres", connect_timeout=5
    )


def accepts_connections(layout: ProfileLayout) -> bool:
    import psycopg2

    try:
        superuser_connection(layout).close()
    except psycopg2.OperationalError:
        return False
    return True


def start(layout: ProfileLayout, log: Path) -> Record:
    """The server, unless ours already runs; returns its pidfile record once it accepts connections."""
    running = live_record(pidfile(layout))
    if running is not None:
        return running
    user = server_user()
    log_line(log, f"starting postgres on {layout.host}:{layout.pg_port} ({layout.pg_dir})")
    write_access_rules(layout)
    process = spawn(server_command(layout), log=log, env=_server_env(user), cwd=Path("/"), **_as_server_user(user))
    record = write_record(pidfile(layout), process.pid, layout.pg_port)
    if not wait_for(lambda: process.poll() is not None or accepts_connections(layout), START_TIMEOUT, 0.05):
        raise ProfileError(f"postgres did not accept connections within {START_TIMEOUT:.0f} s: see {log}")
    if process.poll() is not None:
        pidfile(layout).unlink(missing_ok=True)
        raise ProfileError(f"postgres exited with code {process.returncode} at start: see {log}")
    log_line(log, f"postgres started (pid {process.pid})")
    return record


def ensure_role_and_databases(layout: ProfileLayout, password: str) -> None:
    """The project's login role, with the password file's password, and its two databases."""
    from psycopg2 import sql

    conn = superuser_connection(layout)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [DB_USER])
            verb = "ALTER" if cursor.fetchone() is not None else "CREATE"
            # Set at every up: the password file is the truth (a new one, after it was removed,
            # takes effect). The statement carries the SCRAM verifier, never the password.
            cursor.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(DB_USER)),
                [scram_verifier(password)],
            )
            for database in (DAGSTER_DB, MLFLOW_DB):
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
                if cursor.fetchone() is None:
                    cursor.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(DB_USER))
                    )
    finally:
        conn.close()


def stop(layout: ProfileLayout, log: Path) -> int | None:
    """A fast shutdown (SIGINT: open transactions roll back), then an immediate one if it hangs;
    the pid it stopped, or None when it was not running."""
    record = live_record(pidfile(layout))
    if record is None:
        return None
    os.kill(record.pid, signal.SIGINT)
    if not wait_for(lambda: not record.alive, STOP_TIMEOUT):
        os.kill(record.pid, signal.SIGQUIT)
        wait_for(lambda: not record.alive, 10)
    pidfile(layout).unlink(missing_ok=True)
    log_line(log, f"postgres stopped (pid {record.pid})")
    return record.pid
