"""The retraining job the drift sensor launches; the routine runs by automation conditions
(``defs/automation.py``), not by jobs."""

import dagster as dg


# The project's own version of dagster-mlflow's ``end_mlflow_on_run_finished``: same behaviour
# (through the ``mlflow`` resource's ``end_run``, any MLflow run this Dagster run left open is
# closed: FAILED when a step fails, FINISHED after the job's last step succeeds), without
# importing dagster_mlflow, whose hook module imports all of MLflow (about 1.5 s) at code-location
# load and prints a BetaWarning. MLflow is imported only when a hook actually ends a run.
@dg.failure_hook(name="end_mlflow_run_on_failure", required_resource_keys={"mlflow"})
def end_mlflow_run_on_failure(context: dg.HookContext) -> None:
    context.resources.mlflow.end_run(status="FAILED")


@dg.success_hook(name="end_mlflow_run_on_success", required_resource_keys={"mlflow"})
def end_mlflow_run_on_success(context: dg.HookContext) -> None:
    if _is_last_step(context):
        context.resources.mlflow.end_run(status="FINISHED")


def _is_last_step(context: dg.HookContext) -> bool:
    """Whether this op is the job's last node in topological order (dagster-mlflow's rule)."""
    job_def = context._step_execution_context.job_def  # noqa: SLF001 - as dagster-mlflow does
    return context.op.name == job_def.nodes_in_topological_order[-1].name


END_MLFLOW_RUN_HOOKS = {end_mlflow_run_on_failure, end_mlflow_run_on_success}

# The hooks close any MLflow run a failed step left open (through the `mlflow` resource's
# end_run); the model asset ends its own run on the normal path.
retraining_job = dg.define_asset_job(
    "retraining_job",
    selection=dg.AssetSelection.assets("model", "predictions", "drift_report"),
    description="Retrain: model (champion/challenger gate) → predictions → drift report, on the stored features.",
    hooks=END_MLFLOW_RUN_HOOKS,
)
