"""The routine on the clock: the ingest of the newest days, the daily report and hourly
monitoring, each a schedule on an asset job with its cron from the settings.

What follows its inputs (labels after candles, features after labels) is an ``eager``
automation condition on the asset instead, evaluated by ``follow_inputs_sensor``.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta

import dagster as dg

from btc_lifecycle.config import ScheduleConfig, Settings
from btc_lifecycle.defs.markets import MarketAssets, all_markets
from btc_lifecycle.defs.partitions import DAY_FORMAT, daily_partitions, range_tags

# Every run that calls the exchange carries its name: the production profile's queue
# (config/dagster.production.yaml) runs one such run per exchange at a time.
EXCHANGE_TAG = "btc_lifecycle/exchange"

# How many of the newest days (today's included) the routine ingest fills when it never stored
# them (the schedule was off, the exchange was down); beyond, a backfill is a person's decision.
CATCH_UP_DAYS = 7

INGESTION_ASSETS = ("raw_candles", "labeled_candles", "features", "ingestion_stats")
REPORT_ASSETS = ("ingestion_report",)
MONITORING_ASSETS = ("predictions", "drift_report")


def ingest_days(today: date, stored: set[str], history_start: date) -> tuple[str, str]:
    """The first and last day of one routine ingest, through today: from yesterday (its last
    minutes closed after the previous tick), or from further back within the last
    ``CATCH_UP_DAYS`` when a day there was never stored or the newest stored day was stored only
    up to the moment of its run, so that a pause leaves no hole."""
    recent = [today - timedelta(days=back) for back in range(CATCH_UP_DAYS - 1, -1, -1)]
    recent = [day for day in recent if day >= history_start] or [today]
    earlier = recent[:-1] or recent  # every day of the window before today
    was_stored = [day for day in earlier if day.strftime(DAY_FORMAT) in stored]
    never_stored = [day for day in earlier if day.strftime(DAY_FORMAT) not in stored]
    candidates = [earlier[-1]]  # yesterday
    if never_stored:
        candidates.append(never_stored[0])
        if was_stored:
            candidates.append(max(was_stored))
    return min(candidates).strftime(DAY_FORMAT), today.strftime(DAY_FORMAT)


def _status(settings: Settings) -> dg.DefaultScheduleStatus:
    # The ingest calls the live exchange: a person switches the routine on, unless configured.
    running = settings.schedules.running_by_default
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


def routine_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    """The ingestion schedule of every market, and the report and monitoring schedules, with the
    jobs they launch."""
    markets = all_markets(settings)
    return [
        *(_ingestion_schedule(settings, at) for at in markets),
        *_report_and_monitoring_schedules(settings.schedules, _status(settings), markets),
    ]


def _ingestion_schedule(settings: Settings, at: MarketAssets) -> dg.ScheduleDefinition:
    """The routine ingest of one market: the main market's takes its features along."""
    days = daily_partitions(settings)
    names = INGESTION_ASSETS if at.main else ("raw_candles", "labeled_candles", "ingestion_stats")
    prefix = "" if at.main else f"{at.market.slug}_"
    ingestion_job = dg.define_asset_job(
        f"{prefix}ingestion_job",
        selection=dg.AssetSelection.assets(*(at.key(name) for name in names)),
        tags={EXCHANGE_TAG: at.market.exchange},
        description=f"The newest days' {at.market.symbol} candles on {at.market.exchange}"
        + (", labels and features, and the ingestion stats." if at.main else " and labels, and their stats."),
    )

    @dg.schedule(
        name=f"{prefix}ingestion_schedule",
        job=ingestion_job,
        cron_schedule=settings.schedules.ingestion_cron,
        execution_timezone="UTC",
        default_status=_status(settings),
        description=f"Yesterday and today (and any day of the last {CATCH_UP_DAYS} never stored), as one run.",
    )
    def ingestion_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        today = context.scheduled_execution_time.astimezone(UTC).date()
        stored = context.instance.get_materialized_partitions(at.key("raw_candles"))
        first, last = ingest_days(today, stored, days.start.date())
        return dg.RunRequest(tags=range_tags(first, last))

    return ingestion_schedule


def _report_and_monitoring_schedules(
    crons: ScheduleConfig, status: dg.DefaultScheduleStatus, markets: list[MarketAssets]
) -> list[dg.ScheduleDefinition]:
    report_job = dg.define_asset_job(
        "report_job",
        selection=dg.AssetSelection.assets(*(at.key(name) for at in markets for name in REPORT_ASSETS)),
        description="Each market's ingestion report (PDF).",
    )
    monitoring_job = dg.define_asset_job(
        "monitoring_job",
        selection=dg.AssetSelection.assets(*(at.key(name) for at in markets for name in MONITORING_ASSETS)),
        description="Each market's champion's predictions on the newest candles, then its drift report and checks.",
    )
    return [
        dg.ScheduleDefinition(
            name="report_schedule",
            job=report_job,
            cron_schedule=crons.report_cron,
            execution_timezone="UTC",
            default_status=status,
        ),
        dg.ScheduleDefinition(
            name="monitoring_schedule",
            job=monitoring_job,
            cron_schedule=crons.monitoring_cron,
            execution_timezone="UTC",
            default_status=status,
        ),
    ]
