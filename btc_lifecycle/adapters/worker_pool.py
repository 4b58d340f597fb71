"""The worker pool: dagster-celery's executor and workers on one Redis broker.

The run's own process (the CLI's, or a run worker of the code server) walks the execution plan
and sends each step to Redis; a Celery worker on any host takes it, executes it against the
same Dagster instance (PostgreSQL), MLflow server and feature store, and sends its events back.
The executor and every worker read the one configuration below, so they always agree.
"""

from __future__ import annotations

from pathlib import Path

import yaml

# A step whose worker dies stays on the broker until a live worker takes it again:
# - acks_late: a task is acknowledged when it ends, not when a worker receives it;
# - reject_on_worker_lost: a worker whose child process is killed returns the task to the queue;
# - prefetch 1: a worker holds no task beyond the one it executes, so a dead host strands none;
# - visibility timeout: how long Redis keeps an unacknowledged task from the other workers. A host
#   that died outright acknowledges nothing: its step starts again elsewhere after this long. It
#   must be longer than the longest step, or a step still running would start a second time.
#   Workers look for such tasks every few seconds.
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 3600


def celery_config(broker_url: str, visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS) -> dict:
    """The celery_executor's config: Redis as broker and as result store."""
    transport = {"visibility_timeout": visibility_timeout, "unacked_restore_interval": 5, "unacked_restore_throttle": 1}
    settings = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": visibility_timeout},
        "broker_connection_retry_on_startup": True,
    }
    return {"broker": broker_url, "backend": broker_url, "config_source": settings}


def celery_app(broker_url: str):
    """dagster-celery's Celery app on that broker (for control commands such as ping)."""
    from dagster_celery.make_app import make_app

    return make_app(celery_config(broker_url))


def write_worker_config(path: Path, broker_url: str, visibility_timeout: int) -> Path:
    """The executor's config as a YAML file for ``dagster-celery worker start -y``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = celery_config(broker_url, visibility_timeout)
    path.write_text(yaml.safe_dump({"execution": {"config": config}}), encoding="utf-8")
    return path
