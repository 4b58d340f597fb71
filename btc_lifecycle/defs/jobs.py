"""The retraining job the drift sensor launches; the routine runs by automation conditions
(``defs/automation.py``), not by jobs."""

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished

from btc_lifecycle.defs.markets import MarketAssets

# dagster-mlflow's hook ends the MLflow run that the `mlflow` resource opened for this Dagster run:
# FAILED when a step fails, FINISHED after the job's last step succeeds.
retraining_job = dg.define_asset_job(
    "retraining_job",
    selection=dg.AssetSelection.assets("model", "backtest", "predictions", "drift_report"),
    description="Retrain: model (champion/challenger gate) → backtest, predictions → drift report, on the stored "
    "features.",
    hooks={end_mlflow_on_run_finished},
)


def retraining_job_of(at: MarketAssets):
    """The retraining of one market: the main market's job above, or a further market's model,
    predictions and drift report (its training opens its own MLflow run: no dagster-mlflow hook)."""
    if at.main:
        return retraining_job
    return dg.define_asset_job(
        f"{at.market.slug}_retraining_job",
        selection=dg.AssetSelection.assets(*(at.key(name) for name in ("model", "predictions", "drift_report"))),
        description=f"Retrain {at.market.symbol} on {at.market.exchange}: model (champion/challenger gate) → "
        "predictions → drift report, on the stored features.",
    )
