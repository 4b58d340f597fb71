"""Schedules: ingestion every few minutes, the report daily, monitoring hourly (UTC cron)."""

import dagster as dg

from btc_lifecycle.config import ScheduleConfig
from btc_lifecycle.jobs import ingestion_job, monitoring_job, report_job


def build_schedules(config: ScheduleConfig) -> list[dg.ScheduleDefinition]:
    status = dg.DefaultScheduleStatus.RUNNING if config.running_by_default else dg.DefaultScheduleStatus.STOPPED
    return [
        dg.ScheduleDefinition(
            name=f"{job.name.removesuffix('_job')}_schedule",
            job=job,
            cron_schedule=cron,
            execution_timezone="UTC",
            default_status=status,
        )
        for job, cron in [
            (ingestion_job, config.ingestion_cron),
            (report_job, config.report_cron),
            (monitoring_job, config.monitoring_cron),
        ]
    ]
