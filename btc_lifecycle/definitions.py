"""The code location: assets, checks, jobs, schedules, sensors and resources, built from one
``Settings``.

``workspace.yaml``, ``dagster asset materialize -m btc_lifecycle.definitions`` and ``dg``
(``[tool.dg]`` in pyproject.toml) load ``defs`` from here. A simulation or a test builds its own
with ``build_definitions(settings)``.
"""

import dagster as dg

from btc_lifecycle.adapters.worker_pool import celery_config
from btc_lifecycle.config import Settings, load_settings
from btc_lifecycle.defs.automation import follow_inputs_sensor
from btc_lifecycle.defs.ingestion.assets import ingestion_assets
from btc_lifecycle.defs.ingestion.checks import ingestion_checks
from btc_lifecycle.defs.jobs import retraining_job
from btc_lifecycle.defs.markets import MarketAssets, all_markets
from btc_lifecycle.defs.modelling.assets import daily_feature_asset, model_asset, predictions_asset
from btc_lifecycle.defs.modelling.backtest import backtest
from btc_lifecycle.defs.modelling.checks import features_checks
from btc_lifecycle.defs.monitoring.assets import drift_report_asset
from btc_lifecycle.defs.monitoring.comparison import market_comparison_asset
from btc_lifecycle.defs.monitoring.sensors import build_retrain_on_drift_sensor
from btc_lifecycle.defs.reporting.assets import ingestion_report_asset
from btc_lifecycle.defs.resources import project_resources
from btc_lifecycle.defs.schedules import routine_schedules
from btc_lifecycle.defs.serving.assets import daily_feast_export_asset, feast_online_features
from btc_lifecycle.defs.serving.checks import feast_features_match_the_features_table


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything the UI, the CLI and the daemon see, for ``settings``: every configured market's
    candles, ingestion report, features, model, predictions and drift report, and the main market's
    backtest and serving."""
    markets = all_markets(settings)
    return dg.Definitions(
        assets=[
            *(asset for at in markets for asset in market_assets(settings, at)),
            backtest,
            daily_feast_export_asset(settings),
            feast_online_features,
            # With more than one market, one place to compare them.
            *([market_comparison_asset(settings)] if len(markets) > 1 else []),
        ],
        asset_checks=[
            *(check for at in markets for check in [*ingestion_checks(settings, at), features_checks(settings, at)]),
            feast_features_match_the_features_table,
        ],
        jobs=[retraining_job],  # each further market's retraining job comes with its sensor
        schedules=routine_schedules(settings),
        sensors=[
            *(build_retrain_on_drift_sensor(settings.monitoring, at) for at in markets),
            follow_inputs_sensor(settings),
        ],
        resources=project_resources(settings),
        executor=run_executor(settings),
    )


def run_executor(settings: Settings) -> dg.ExecutorDefinition:
    """By default one process runs a run's steps one after another (DuckDB takes one writer per
    file); with CELERY_BROKER_URL set, the worker pool's Celery workers run them, on any host."""
    if settings.celery_broker_url is None:
        return dg.in_process_executor
    from dagster_celery import celery_executor

    return celery_executor.configured(celery_config(settings.celery_broker_url, settings.celery_visibility_timeout))


def market_assets(settings: Settings, at: MarketAssets) -> list[dg.AssetsDefinition]:
    """One market's lifecycle: candles, labels, stats and their report, features, model, predictions, drift report."""
    return [
        *ingestion_assets(settings, at),
        ingestion_report_asset(settings, at),
        daily_feature_asset(settings, at),
        model_asset(settings, at),
        predictions_asset(settings, at),
        drift_report_asset(settings, at),
    ]


defs = build_definitions(load_settings())
