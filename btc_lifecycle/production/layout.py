"""Where the profile keeps its files, the address and ports it listens on, and how many workers its
pool has: read from the environment (over the ``.env`` file), so a test or a second checkout moves
all of it with a few variables."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from btc_lifecycle.adapters.worker_pool import DEFAULT_VISIBILITY_TIMEOUT_SECONDS
from btc_lifecycle.config import PROJECT_ROOT, ConfigError, with_env_file

LOOPBACK = "127.0.0.1"  # the default address: on one machine, every part listens on loopback only
DEFAULT_PORTS = {
    "PROFILE_PG_PORT": 54329,
    "PROFILE_MLFLOW_PORT": 5000,  # the port of `make mlflow-ui`, which the server replaces
    "PROFILE_DAGSTER_PORT": 3000,  # the port of `make dev`, which the webserver replaces
    "PROFILE_CODE_SERVER_PORT": 4266,
    "PROFILE_REDIS_PORT": 6380,  # the worker pool's broker; 6380, not Redis' 6379, beside a system Redis
}
MAX_WORKERS = 16
DB_USER = "btc_lifecycle"
DAGSTER_DB = "dagster"
MLFLOW_DB = "mlflow"
LOCATION_NAME = "btc_lifecycle"
INSTANCE_TEMPLATE = PROJECT_ROOT / "config" / "dagster.production.yaml"


@dataclass(frozen=True)
class ProfileLayout:
    """The profile's folders, files and ports."""

    root: Path  # PROFILE_DIR, by default the checkout's data/
    pg_port: int
    mlflow_port: int
    dagster_port: int
    code_server_port: int
    redis_port: int = DEFAULT_PORTS["PROFILE_REDIS_PORT"]
    mlflow_workers: int = 2
    host: str = LOOPBACK  # PROFILE_HOST: the address every part listens on, the one other hosts call
    # PROFILE_WORKERS (make up WORKERS=N): None, no worker pool (each run executes its steps in its
    # own process); N, Redis and N Celery workers on this host (0: every worker on other hosts).
    workers: int | None = None
    # CELERY_VISIBILITY_TIMEOUT: after how many seconds a dead host's step goes to another worker.
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ProfileLayout:
        env = with_env_file(dict(os.environ if environ is None else environ))
        root = Path(env.get("PROFILE_DIR") or PROJECT_ROOT / "data").resolve()
        ports = {name: _port(env, name, default) for name, default in DEFAULT_PORTS.items()}
        if len(set(ports.values())) != len(ports):
            raise ConfigError(f"environment: the profile's ports must differ, got {ports}")
        workers = env.get("PROFILE_MLFLOW_WORKERS") or "2"
        if not workers.isdigit() or not 1 <= int(workers) <= 16:
            raise ConfigError(f"environment: PROFILE_MLFLOW_WORKERS must be 1 to 16, got {workers!r}")
        host = env.get("PROFILE_HOST") or LOOPBACK
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ConfigError(f"environment: PROFILE_HOST must be an IPv4 address of this host, got {host!r}") from None
        pool = env.get("PROFILE_WORKERS", "")
        if pool and (not pool.isdigit() or not 0 <= int(pool) <= MAX_WORKERS):
            raise ConfigError(
                f"environment: PROFILE_WORKERS (make up WORKERS=) must be 0 to {MAX_WORKERS}, got {pool!r}"
            )
        visibility = env.get("CELERY_VISIBILITY_TIMEOUT") or str(DEFAULT_VISIBILITY_TIMEOUT_SECONDS)
        if not visibility.isdigit() or int(visibility) < 5:
            raise ConfigError(
                f"environment: CELERY_VISIBILITY_TIMEOUT must be whole seconds, at least 5, got {visibility!r}"
            )
        for unsafe in (" ", "$", "#", "'", '"'):
            if unsafe in str(root):
                # profile.env is read by make too, which has no quoting.
                raise ConfigError(f"environment: PROFILE_DIR must not contain {unsafe!r}: {root}")
        return cls(
            root=root,
            pg_port=ports["PROFILE_PG_PORT"],
            mlflow_port=ports["PROFILE_MLFLOW_PORT"],
            dagster_port=ports["PROFILE_DAGSTER_PORT"],
            code_server_port=ports["PROFILE_CODE_SERVER_PORT"],
            redis_port=ports["PROFILE_REDIS_PORT"],
            mlflow_workers=int(workers),
            host=host,
            workers=int(pool) if pool else None,
            visibility_timeout=int(visibility),
        )

    @property
    def pg_dir(self) -> Path:
        """The cluster's data folder (owned by the user PostgreSQL runs as)."""
        return self.root / "postgres"

    @property
    def state_dir(self) -> Path:
        """Pidfiles, the credentials file and the rendered workspace."""
        return self.root / "profile"

    @property
    def passfile(self) -> Path:
        """libpq's password file (mode 0600): the database password lives only here."""
        return self.state_dir / "pgpass"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home_production"

    @property
    def workspace_file(self) -> Path:
        return self.state_dir / "workspace.production.yaml"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlflow_server" / "artifacts"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def profile_env(self) -> Path:
        """What the Makefile includes while the profile is up."""
        return self.root / "profile.env"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def dagster_url(self) -> str:
        return f"http://{self.host}:{self.dagster_port}"

    def mlflow_backend_uri(self) -> str:
        """No password in it: libpq reads it from PGPASSFILE (a URI shows in `ps` and in logs)."""
        return f"postgresql+psycopg2://{DB_USER}@{self.host}:{self.pg_port}/{MLFLOW_DB}"

    @property
    def has_pool(self) -> bool:
        return self.workers is not None

    @property
    def broker_url(self) -> str:
        """The worker pool's Redis: the queue of steps and their results."""
        return f"redis://{self.host}:{self.redis_port}/0"

    @property
    def redis_dir(self) -> Path:
        """Redis' append-only file: queued steps outlive a restart of the broker."""
        return self.root / "redis"

    @property
    def worker_config(self) -> Path:
        """The Celery app's config for ``dagster-celery worker start -y`` (the executor's own)."""
        return self.state_dir / "celery.yaml"

    @property
    def feature_parquet_dir(self) -> Path:
        """The feature store every worker host writes: Parquet day files under the profile's folder,
        which the hosts share (a shared file system)."""
        return self.root / "feature_store" / "parquet"

    def client_environment(self) -> dict[str, str]:
        """What every process of the profile, and every command run against it, needs to see."""
        return {
            "BTC_PROFILE": "production",
            # Where and on which ports it runs, so that `make status` and `make down` find it
            # whatever the caller's environment says.
            "PROFILE_DIR": str(self.root),
            "PROFILE_PG_PORT": str(self.pg_port),
            "PROFILE_MLFLOW_PORT": str(self.mlflow_port),
            "PROFILE_DAGSTER_PORT": str(self.dagster_port),
            "PROFILE_CODE_SERVER_PORT": str(self.code_server_port),
            "PROFILE_REDIS_PORT": str(self.redis_port),
            "PROFILE_HOST": self.host,
            **({"PROFILE_WORKERS": str(self.workers)} if self.has_pool else {}),
            "DAGSTER_HOME": str(self.dagster_home),
            "PGPASSFILE": str(self.passfile),
            "BTC_PG_HOST": self.host,
            "BTC_PG_PORT": str(self.pg_port),
            "BTC_PG_USER": DB_USER,
            "DAGSTER_PG_DB": DAGSTER_DB,
            # The registry follows the tracking URI (config.py): a command that moves only the
            # tracking URI (make simulate's own store) takes the registry along.
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_UI_URL": self.mlflow_url,
            "DAGSTER_PORT": str(self.dagster_port),
            **(self.pool_environment() if self.has_pool else {}),
        }

    def pool_environment(self) -> dict[str, str]:
        """With a worker pool: steps go to Celery through Redis, and the feature store is the
        Parquet backend (hosts write their own days' files at once; DuckDB's file takes one
        writing process on one host)."""
        return {
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_VISIBILITY_TIMEOUT": str(self.visibility_timeout),
            "FEATURE_STORE_BACKEND": "parquet",
            "FEATURE_PARQUET_DIR": str(self.feature_parquet_dir),
        }


def _port(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name) or str(default)
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ConfigError(f"environment: {name} must be a port number from 1 to 65535, got {value!r}")
    return int(value)
