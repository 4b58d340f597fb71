"""What runs by itself, declared on the assets (declarative automation) instead of hand-made jobs
and schedules; the UI shows each asset's condition and why it did or did not fire.

Everything here calls the live exchange or leads to a call, so the sensor that evaluates the
conditions starts STOPPED (``schedules.running_by_default``): a person switches it on.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from btc_lifecycle.config import project_settings

_SCHEDULES = project_settings().schedules

# Every run the automation launches carries the exchange it calls (or feeds on): the production
# profile's queue (config/dagster.production.yaml) runs one such run per exchange at a time.
EXCHANGE_TAG = "btc_lifecycle/exchange"

# How many of the newest days (today's included) the routine ingest fills when it never stored
# them (the automation was off, the exchange was down): beyond, a back-fill is a person's
# decision (the UI, or make run).
CATCH_UP_DAYS = 7

# The routine ingest: at each tick, the newest day and the one before it (whose last minutes
# closed after the previous tick, and whose last feature row's target is today's first candle),
# and any day of the last week that was never materialized, so a pause leaves no hole.
ROUTINE_INGEST = (
    # lookback_delta of N days: the N newest daily partitions, today's included.
    dg.AutomationCondition.in_latest_time_window(lookback_delta=timedelta(days=CATCH_UP_DAYS))
    & (
        dg.AutomationCondition.in_latest_time_window(lookback_delta=timedelta(days=2)).with_label("today or yesterday")
        | dg.AutomationCondition.missing().with_label("never stored")
    )
    & dg.AutomationCondition.cron_tick_passed(_SCHEDULES.ingestion_cron, "UTC").since_last_handled()
    & ~dg.AutomationCondition.in_progress()
).with_label(
    f"routine ingest ({_SCHEDULES.ingestion_cron} UTC): today, yesterday and any missing day of the last "
    f"{CATCH_UP_DAYS}"
)

# Derived rows follow their inputs: a day re-materialized upstream is re-derived here.
UPDATE_AFTER_UPSTREAM = dg.AutomationCondition.eager()


def on_cron_regardless_of_inputs(cron: str, what: str) -> dg.AutomationCondition:
    """At each tick of ``cron``, whether or not the inputs changed (the champion may be older
    than the candles it scores)."""
    return (
        dg.AutomationCondition.cron_tick_passed(cron, "UTC").since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(f"{what} ({cron} UTC)")


DAILY_REPORT = on_cron_regardless_of_inputs(_SCHEDULES.report_cron, "daily report")
HOURLY_MONITORING = on_cron_regardless_of_inputs(_SCHEDULES.monitoring_cron, "monitoring")

routine_automation = dg.AutomationConditionSensorDefinition(
    "routine_automation",
    target=dg.AssetSelection.all(),
    run_tags={EXCHANGE_TAG: project_settings().ingest.exchange},
    default_status=dg.DefaultSensorStatus.RUNNING if _SCHEDULES.running_by_default else dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=30,
    description=(
        "Evaluates the assets' automation conditions: the routine ingest of the newest days, "
        "labels and features after them, the daily report, hourly predictions and drift. "
        "Stopped by default: it calls the live exchange."
    ),
)
