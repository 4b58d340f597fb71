"""What follows its inputs, declared on the assets: a day re-materialized upstream is re-derived
downstream. The UI shows each asset's condition and why it did or did not fire."""

from __future__ import annotations

import dagster as dg

from btc_lifecycle.config import Settings

UPDATE_AFTER_UPSTREAM = dg.AutomationCondition.eager()


def follow_inputs_sensor(settings: Settings) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the assets' automation conditions; runs with the routine schedules."""
    running = settings.schedules.running_by_default
    return dg.AutomationConditionSensorDefinition(
        "follow_inputs_sensor",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=30,
        description="Re-derives labels, features, stats and Feast's online store after their inputs change.",
    )
