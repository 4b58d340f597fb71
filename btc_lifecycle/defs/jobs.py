"""The retraining job the drift sensor launches; the routine runs by automation conditions
(``defs/automation.py``), not by jobs."""

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished

# dagster-mlflow's hook ends the MLflow run that the `mlflow` resource opened for this Dagster run:
# FAILED when a step fails, FINISHED after the job's last step succeeds.
retraining_job = dg.define_asset_job(
    "retraining_job",
    selection=dg.AssetSelection.assets("model", "backtest", "predictions", "drift_report"),
    description="Retrain: model (champion/challenger gate) → backtest, predictions → drift report, on the stored "
    "features.",
    hooks={end_mlflow_on_run_finished},
)
