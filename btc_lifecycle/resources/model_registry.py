"""MLflow as a Dagster resource: the tracking store, the registry and the model's name."""

import os
import tempfile
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from btc_lifecycle.config import Settings


class ModelRegistryResource(dg.ConfigurableResource):
    """Where training runs are tracked and models registered (SQLite store, file artifacts).

    Also serves the retraining job's hooks (``btc_lifecycle.defs.jobs``, the project's version of
    dagster-mlflow's ``end_mlflow_on_run_finished``, which call ``end_run`` on the resource named
    ``mlflow``): any MLflow run this Dagster run left open is closed with the step's outcome. The
    model asset already ends its own run; the hooks are the net for a step that died between
    starting and ending one. MLflow is imported only when a registry is asked for.
    """

    tracking_uri: str
    registry_uri: str
    artifact_location: str
    model_name: str = "btc_direction"
    experiment_name: str = "btc_direction"
    _dagster_run_id: str | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ModelRegistryResource":
        return cls(
            tracking_uri=settings.mlflow_tracking_uri,
            registry_uri=settings.mlflow_registry_uri,
            artifact_location=str(settings.mlflow_artifact_location),
            model_name=settings.model.name,
            experiment_name=settings.model.name,
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._dagster_run_id = context.run_id

    def registry(self):
        # Imported here: mlflow and xgboost are heavy, and most steps never touch them.
        from btc_lifecycle.adapters.model_registry import ModelRegistry

        for uri in {self.tracking_uri, self.registry_uri}:
            if uri.startswith("sqlite:///"):
                seed_sqlite_store(Path(uri.removeprefix("sqlite:///")))
        return ModelRegistry(
            tracking_uri=self.tracking_uri,
            registry_uri=self.registry_uri,
            artifact_location=self.artifact_location,
            experiment_name=self.experiment_name,
            model_name=self.model_name,
        )

    def end_run(self, status: str = "FINISHED") -> None:
        """Close every MLflow run of this Dagster run that is still RUNNING."""
        if self._dagster_run_id is not None:
            self.registry().end_open_runs(self._dagster_run_id, status)


def schema_cache_dir() -> Path:
    """Where the empty, fully migrated MLflow schema is kept (one file per MLflow version)."""
    explicit = os.environ.get("BTC_LIFECYCLE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "btc_lifecycle"


def seed_sqlite_store(database: Path) -> None:
    """Give a new SQLite tracking store MLflow's schema by copying an empty migrated one.

    A new store otherwise runs all of MLflow's Alembic migrations (SQLite rebuilds tables for
    each: about 3 s of every fresh ``make run``). The template is made once per machine and
    MLflow version by MLflow's own ``_initialize_tables`` (the code a new store runs), with no
    rows: MLflow still creates the Default experiment itself when it opens the copy, so the
    store is the same as one MLflow created. An existing file is never touched.
    """
    database.parent.mkdir(parents=True, exist_ok=True)
    if database.exists():
        return
    try:
        template = _schema_template()
    except Exception:  # noqa: BLE001 - no template: MLflow creates the schema itself, as before
        return
    fd, staging = tempfile.mkstemp(dir=database.parent, prefix=f".{database.name}.", suffix=".seed")
    os.close(fd)
    try:
        Path(staging).write_bytes(template.read_bytes())
        os.link(staging, database)  # no clobber: another process's store wins the race
    except FileExistsError:
        pass
    finally:
        os.unlink(staging)


def _schema_template() -> Path:
    import mlflow
    from mlflow.store.db import utils as db_utils

    folder = schema_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / f"mlflow-{mlflow.__version__}-schema.db"
    if template.exists():
        return template
    fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{template.name}.", suffix=".tmp")
    os.close(fd)
    os.unlink(staging)  # SQLite creates it
    try:
        engine = db_utils.create_sqlalchemy_engine(f"sqlite:///{staging}")
        try:
            db_utils._initialize_tables(engine)  # noqa: SLF001 - what SqlAlchemyStore runs on an empty store
            db_utils._verify_schema(engine)  # noqa: SLF001 - at MLflow's head revision
        finally:
            engine.dispose()
        os.replace(staging, template)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    return template
