"""The code location: assets, checks, jobs, schedules, sensors and resources, built from one
``Settings``.

``workspace.yaml``, ``dagster asset materialize -m btc_lifecycle.definitions`` and ``dg``
(``[tool.dg]`` in pyproject.toml) load ``defs`` from here. A simulation or a test builds its own
with ``build_definitions(settings)``.
"""

import dagster as dg

from btc_lifecycle.config import Settings, load_settings
from btc_lifecycle.defs.automation import follow_inputs_sensor
from btc_lifecycle.defs.ingestion.assets import daily_candle_assets, ingestion_stats
from btc_lifecycle.defs.ingestion.checks import labels_recompute, raw_candles_checks
from btc_lifecycle.defs.jobs import retraining_job
from btc_lifecycle.defs.modelling.assets import daily_feature_asset, model, predictions
from btc_lifecycle.defs.modelling.backtest import backtest
from btc_lifecycle.defs.modelling.checks import features_checks
from btc_lifecycle.defs.monitoring.assets import drift_report
from btc_lifecycle.defs.monitoring.sensors import build_retrain_on_drift_sensor
from btc_lifecycle.defs.reporting.assets import ingestion_report
from btc_lifecycle.defs.resources import project_resources
from btc_lifecycle.defs.schedules import routine_schedules
from btc_lifecycle.defs.serving.assets import daily_feast_export_asset, feast_online_features
from btc_lifecycle.defs.serving.checks import feast_features_match_the_features_table


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything the UI, the CLI and the daemon see, for ``settings``."""
    return dg.Definitions(
        assets=[
            *daily_candle_assets(settings),
            ingestion_stats,
            ingestion_report,
            daily_feature_asset(settings),
            model,
            backtest,
            predictions,
            drift_report,
            daily_feast_export_asset(settings),
            feast_online_features,
        ],
        asset_checks=[raw_candles_checks, labels_recompute, features_checks, feast_features_match_the_features_table],
        jobs=[retraining_job],
        schedules=routine_schedules(settings),
        sensors=[build_retrain_on_drift_sensor(settings.monitoring), follow_inputs_sensor(settings)],
        resources=project_resources(settings),
        # One process runs a run's steps one after another: DuckDB takes one writer per file.
        executor=dg.in_process_executor,
    )


defs = build_definitions(load_settings())
