"""MLflow as Dagster resources: dagster-mlflow's run per Dagster run, and the model registry."""

import dagster as dg
import mlflow
from dagster_mlflow.resources import CONFIG_SCHEMA, MlFlow

from btc_lifecycle.config import Settings

# The asset whose training the MLflow run records (btc_lifecycle.defs.modelling.assets.model).
TRAINING_ASSET = dg.AssetKey("model")


class ModelRegistryResource(dg.ConfigurableResource):
    """Where models are registered and the champion is found (SQLite store, file artifacts)."""

    tracking_uri: str
    registry_uri: str
    artifact_location: str
    model_name: str = "btc_direction"
    experiment_name: str = "btc_direction"

    @classmethod
    def from_settings(cls, settings: Settings) -> "ModelRegistryResource":
        return cls(
            tracking_uri=settings.mlflow_tracking_uri,
            registry_uri=settings.mlflow_registry_uri,
            artifact_location=str(settings.mlflow_artifact_location),
            model_name=settings.model.name,
            experiment_name=settings.model.name,
        )

    def registry(self, model_name: str | None = None):
        """The registry of the main market's model, or of ``model_name`` (a further market's),
        each in an experiment of its own name."""
        # Imported here: the adapter brings xgboost and the modelling code, which most steps never use.
        from btc_lifecycle.adapters.model_registry import ModelRegistry

        return ModelRegistry(
            tracking_uri=self.tracking_uri,
            registry_uri=self.registry_uri,
            artifact_location=self.artifact_location,
            experiment_name=model_name or self.experiment_name,
            model_name=model_name or self.model_name,
        )


def mlflow_resource(settings: Settings) -> dg.ResourceDefinition:
    """dagster-mlflow's tracking resource on the settings' stores: one MLflow run per Dagster run."""
    return mlflow_tracking_resource.configured(
        {
            "experiment_name": settings.model.name,
            "mlflow_tracking_uri": settings.mlflow_tracking_uri,
            "registry_uri": settings.mlflow_registry_uri,
            "artifact_location": str(settings.mlflow_artifact_location),
        }
    )


@dg.resource(config_schema={**CONFIG_SCHEMA, "registry_uri": str, "artifact_location": str})
def mlflow_tracking_resource(context: dg.InitResourceContext):
    """dagster_mlflow's ``mlflow_tracking``, in an experiment whose artifacts go where the settings say."""
    from btc_lifecycle.adapters.model_registry import ensure_experiment

    config = context.resource_config
    # MlFlow's set_experiment would create a missing experiment with MLflow's default artifact root.
    ensure_experiment(config["mlflow_tracking_uri"], config["experiment_name"], config["artifact_location"])
    mlflow.set_registry_uri(config["registry_uri"])
    tracking = MlFlow(context)
    yield tracking
    tracking.cleanup_on_error()
    # Without dagster-mlflow's end_mlflow_on_run_finished hook (the implicit asset job of `dagster
    # asset materialize`) the run stays RUNNING until the process exits, and then MLflow's exit
    # handler (_safe_end_run, which MlFlow's atexit.unregister(mlflow.end_run) misses) ends it
    # FINISHED whatever happened. The run records the model's training, and whether the model
    # materialized in this Dagster run is what the public instance API can tell a teardown: so
    # the run ends here, FINISHED if it did, FAILED if not.
    if mlflow.active_run() is not None:
        latest = context.instance.get_latest_materialization_event(TRAINING_ASSET)
        trained = latest is not None and latest.run_id == context.run_id
        mlflow.end_run(status="FINISHED" if trained else "FAILED")
