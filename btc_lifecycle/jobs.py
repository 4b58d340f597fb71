"""Jobs: the routine slices of the graph that schedules and the sensor launch."""

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished

from btc_lifecycle.assets import ingestion, monitoring, reporting

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.groups(ingestion.GROUP),
    description="Fetch new candles, label them and record what the ingest did.",
)

report_job = dg.define_asset_job(
    "report_job",
    selection=dg.AssetSelection.groups(reporting.GROUP),
    description="Write the ingestion PDF report.",
)

monitoring_job = dg.define_asset_job(
    "monitoring_job",
    selection=dg.AssetSelection.assets("features", "predictions", "drift_report"),
    description="Refresh features, let the champion predict, and measure drift and realized performance.",
)

# dagster-mlflow's hook closes any MLflow run a failed step left open (through the `mlflow`
# resource's end_run); the model asset ends its own run on the normal path.
retraining_job = dg.define_asset_job(
    "retraining_job",
    selection=dg.AssetSelection.assets("features", "model", "predictions", "drift_report"),
    description="Retrain: features → model (champion/challenger gate) → predictions → drift report.",
    hooks={end_mlflow_on_run_finished},
)

ALL_JOBS = [ingestion_job, report_job, monitoring_job, retraining_job]
DRIFT_CHECK_KEYS = [dg.AssetCheckKey(dg.AssetKey("drift_report"), name) for name in monitoring.DRIFT_CHECKS]
