"""MLflow as a Dagster resource: the tracking store, the registry and the model's name."""

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from btc_lifecycle.config import Settings


class ModelRegistryResource(dg.ConfigurableResource):
    """Where training runs are tracked and models registered (SQLite store, file artifacts).

    Also serves dagster-mlflow's ``end_mlflow_on_run_finished`` hook (which calls
    ``end_run`` on the resource named ``mlflow``): any MLflow run this Dagster run left open is
    closed with the step's outcome. The model asset already ends its own run; the hook is the
    net for a step that died between starting and ending one.
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

        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
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
