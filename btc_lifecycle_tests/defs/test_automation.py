"""What the routine automation launches, evaluated as the daemon would at a given moment."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from btc_lifecycle.defs.automation import CATCH_UP_DAYS
from btc_lifecycle.defs.ingestion.assets import raw_candles

RAW = dg.AssetKey("raw_candles")


def requested_days(stored_days: list[str], before: datetime, at: datetime) -> list[str]:
    """raw_candles' partitions the automation requests at ``at``, after an evaluation at ``before``."""
    # Evaluation never runs the asset: its resources are placeholders.
    unused = dg.ResourceDefinition.none_resource()
    defs = dg.Definitions(
        assets=[raw_candles], resources={"exchange": unused, "feature_store": unused, "settings": unused}
    )
    with dg.instance_for_test() as instance:
        for day in stored_days:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=RAW, partition=day))
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=before)
        second = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first.cursor, evaluation_time=at
        )
        return sorted(second.get_requested_partitions(RAW))


@pytest.fixture
def every_day_stored() -> list[str]:
    return [f"2024-01-{day:02d}" for day in range(1, 11)]


def test_at_each_tick_today_and_yesterday_are_ingested(every_day_stored):
    days = requested_days(
        every_day_stored, datetime(2024, 1, 10, 11, 58, tzinfo=UTC), datetime(2024, 1, 10, 12, 1, tzinfo=UTC)
    )
    assert days == ["2024-01-09", "2024-01-10"]


def test_between_ticks_nothing_is_ingested(every_day_stored):
    days = requested_days(
        every_day_stored, datetime(2024, 1, 10, 12, 1, tzinfo=UTC), datetime(2024, 1, 10, 12, 3, tzinfo=UTC)
    )
    assert days == []


def test_a_day_missed_within_the_last_week_is_filled_and_older_holes_are_left_to_a_person():
    stored = [f"2024-01-{day:02d}" for day in range(1, 21) if day not in (5, 16, 17)]
    days = requested_days(stored, datetime(2024, 1, 20, 11, 58, tzinfo=UTC), datetime(2024, 1, 20, 12, 1, tzinfo=UTC))
    assert CATCH_UP_DAYS == 7
    assert days == ["2024-01-16", "2024-01-17", "2024-01-19", "2024-01-20"]  # not 5 January
