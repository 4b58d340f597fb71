"""The routine on the clock: which days an ingestion tick fetches, and the schedules the code
location builds from the settings, evaluated as the daemon would at a given moment."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from btc_lifecycle.config import load_settings
from btc_lifecycle.definitions import build_definitions
from btc_lifecycle.defs.automation import follow_inputs_sensor
from btc_lifecycle.defs.partitions import range_tags
from btc_lifecycle.defs.schedules import CATCH_UP_DAYS, EXCHANGE_TAG, ingest_days, routine_schedules

SCHEDULES = {"ingestion_schedule", "report_schedule", "monitoring_schedule"}
LONG_AGO = date(2017, 8, 17)
AT = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)


def january(*days: int) -> set[str]:
    return {f"2024-01-{day:02d}" for day in days}


def settings_with(write_config, **schedules):
    """The project's settings, with ``schedules`` in the config file's schedules section."""
    return load_settings({"INGEST_CONFIG": str(write_config(schedules=schedules))})


def by_name(settings) -> dict[str, dg.ScheduleDefinition]:
    return {schedule.name: schedule for schedule in routine_schedules(settings)}


# --- the days of one ingest ---------------------------------------------------------------------


def test_with_every_day_stored_a_tick_ingests_yesterday_and_today():
    assert ingest_days(date(2024, 1, 10), january(*range(1, 11)), LONG_AGO) == ("2024-01-09", "2024-01-10")


def test_after_a_pause_the_newest_stored_day_is_fetched_again_as_it_may_be_partial():
    # The routine last ran on 8 January: that day holds only the minutes closed by then.
    assert ingest_days(date(2024, 1, 10), january(*range(1, 9)), LONG_AGO) == ("2024-01-08", "2024-01-10")
    assert ingest_days(date(2024, 1, 20), january(*range(1, 16)), LONG_AGO) == ("2024-01-15", "2024-01-20")


def test_a_day_missed_within_the_last_week_is_filled_and_older_holes_are_left_to_a_person():
    stored = january(*(day for day in range(1, 21) if day not in (5, 16, 17)))
    assert CATCH_UP_DAYS == 7
    # One run from the oldest never-stored day of the last week: not 5 January.
    assert ingest_days(date(2024, 1, 20), stored, LONG_AGO) == ("2024-01-16", "2024-01-20")


def test_the_catch_up_reaches_back_exactly_catch_up_days_today_included():
    today = date(2024, 1, 20)
    oldest_reached = january(*(day for day in range(1, 21) if day != 14))  # today - 6
    assert ingest_days(today, oldest_reached, LONG_AGO) == ("2024-01-14", "2024-01-20")
    one_too_old = january(*(day for day in range(1, 21) if day != 13))  # today - 7
    assert ingest_days(today, one_too_old, LONG_AGO) == ("2024-01-19", "2024-01-20")


def test_with_nothing_stored_the_last_week_is_fetched():
    assert ingest_days(date(2024, 1, 10), set(), LONG_AGO) == ("2024-01-04", "2024-01-10")


def test_no_day_before_the_history_start_is_ever_requested():
    assert ingest_days(date(2024, 1, 10), set(), date(2024, 1, 8)) == ("2024-01-08", "2024-01-10")
    assert ingest_days(date(2024, 1, 10), set(), date(2024, 1, 9)) == ("2024-01-09", "2024-01-10")
    # The history starts today: there is no yesterday to fetch.
    assert ingest_days(date(2024, 1, 10), set(), date(2024, 1, 10)) == ("2024-01-10", "2024-01-10")


# --- the schedules built from the settings ------------------------------------------------------


def test_the_code_location_has_the_three_schedules_on_their_jobs():
    defs = build_definitions(load_settings({}))
    assert {schedule.name for schedule in defs.schedules} == SCHEDULES
    jobs = {name: defs.resolve_schedule_def(name).job_name for name in SCHEDULES}
    assert jobs == {
        "ingestion_schedule": "ingestion_job",
        "report_schedule": "report_job",
        "monitoring_schedule": "monitoring_job",
    }


def test_each_job_selects_its_assets_and_the_ingestion_job_carries_the_exchange_tag():
    defs = build_definitions(load_settings({}))

    def selected(job: str) -> set[str]:
        return {key.to_user_string() for key in defs.resolve_job_def(job).asset_layer.selected_asset_keys}

    assert selected("ingestion_job") == {"raw_candles", "labeled_candles", "features", "ingestion_stats"}
    assert selected("report_job") == {"ingestion_report"}
    assert selected("monitoring_job") == {"predictions", "drift_report"}
    assert defs.resolve_job_def("ingestion_job").tags == {EXCHANGE_TAG: "binance"}


def test_the_crons_are_the_settings_in_utc(write_config):
    default = load_settings({})
    crons = {name: schedule.cron_schedule for name, schedule in by_name(default).items()}
    assert crons == {
        "ingestion_schedule": default.schedules.ingestion_cron,
        "report_schedule": default.schedules.report_cron,
        "monitoring_schedule": default.schedules.monitoring_cron,
    }
    other = settings_with(
        write_config, ingestion_cron="*/10 * * * *", report_cron="30 7 * * *", monitoring_cron="15 */2 * * *"
    )
    schedules = by_name(other)
    assert {name: schedule.cron_schedule for name, schedule in schedules.items()} == {
        "ingestion_schedule": "*/10 * * * *",
        "report_schedule": "30 7 * * *",
        "monitoring_schedule": "15 */2 * * *",
    }
    assert {schedule.execution_timezone for schedule in schedules.values()} == {"UTC"}


def test_the_schedules_and_the_follow_inputs_sensor_are_stopped_unless_configured_running(write_config):
    default = load_settings({})
    assert default.schedules.running_by_default is False  # they call live Binance: a person starts them
    stopped = {schedule.default_status for schedule in by_name(default).values()}
    assert stopped == {dg.DefaultScheduleStatus.STOPPED}
    assert follow_inputs_sensor(default).default_status == dg.DefaultSensorStatus.STOPPED
    running = settings_with(write_config, running_by_default=True)
    assert {schedule.default_status for schedule in by_name(running).values()} == {dg.DefaultScheduleStatus.RUNNING}
    assert follow_inputs_sensor(running).default_status == dg.DefaultSensorStatus.RUNNING


@pytest.fixture
def instance():
    # build_schedule_context takes a persistent instance (it hands the schedule a reference to it).
    with dg.instance_for_test() as instance:
        yield instance


def tick(instance, at: datetime = AT, stored: set[str] = frozenset()) -> list[dg.RunRequest]:
    """The ingestion schedule evaluated at ``at``, with ``stored`` days of raw_candles materialized."""
    for day in sorted(stored):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="raw_candles", partition=day))
    schedule = by_name(load_settings({}))["ingestion_schedule"]
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=at) as context:
        return schedule.evaluate_tick(context).run_requests


def test_an_ingestion_tick_requests_one_run_over_yesterday_and_today(instance):
    [request] = tick(instance, stored=january(*range(1, 10)))
    assert request.tags == {**range_tags("2024-01-09", "2024-01-10"), "dagster/schedule_name": "ingestion_schedule"}
    assert request.partition_key is None  # a range, as one run (the assets' single-run backfill policy)


def test_an_ingestion_tick_reads_the_stored_days_from_the_instance(instance):
    [request] = tick(instance, stored=january(*range(1, 10)) - january(6))
    assert range_tags("2024-01-06", "2024-01-10").items() <= request.tags.items()


def test_the_tick_takes_its_day_in_utc(instance):
    # 00:30 in Paris on 11 January is 23:30 on 10 January in UTC: 10 January is today.
    paris = datetime(2024, 1, 11, 0, 30, tzinfo=ZoneInfo("Europe/Paris"))
    [request] = tick(instance, at=paris, stored=january(*range(1, 10)))
    assert range_tags("2024-01-09", "2024-01-10").items() <= request.tags.items()
