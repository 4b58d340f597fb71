"""The definitions as a reviewer sees them: assets, partitions, mappings, checks, automation,
jobs, schedules and sensors. A change to the graph fails here until the snapshot is rewritten on
purpose:

    UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest btc_lifecycle_tests/defs/test_definitions.py

Everything is built from one ``Settings``: two settings in one process give two code locations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from btc_lifecycle.config import PROJECT_ROOT, load_settings
from btc_lifecycle.definitions import build_definitions, defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def _partitions(partitions_def) -> str | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return (
            f"{type(partitions_def).__name__}(start={partitions_def.start:%Y-%m-%d}, "
            f"cron={partitions_def.cron_schedule!r}, timezone={partitions_def.timezone}, "
            f"end_offset={partitions_def.end_offset})"
        )
    return repr(partitions_def)


def _mapping(mapping) -> str | None:
    if mapping is None:
        return None
    if isinstance(mapping, dg.TimeWindowPartitionMapping):
        return (
            f"TimeWindowPartitionMapping(start_offset={mapping.start_offset}, end_offset={mapping.end_offset}, "
            f"allow_nonexistent_upstream_partitions={mapping.allow_nonexistent_upstream_partitions})"
        )
    return type(mapping).__name__


def _automation(condition) -> str | None:
    if condition is None:
        return None
    return condition.get_label() or type(condition).__name__


def describe(definitions: dg.Definitions) -> dict:
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        spec = node.assets_def.specs_by_key[key]
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": _partitions(node.partitions_def),
            "backfill_policy": repr(node.backfill_policy) if node.backfill_policy else None,
            "deps": {
                dep.asset_key.to_user_string(): _mapping(dep.partition_mapping)
                for dep in sorted(spec.deps, key=lambda d: d.asset_key.to_user_string())
            },
            "automation": _automation(node.automation_condition),
            "freshness_policy": repr(spec.freshness_policy) if spec.freshness_policy else None,
            "kinds": sorted(node.kinds),
            "pools": sorted(node.pools or []),
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get(check_key)
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {"blocking": spec.blocking}
    jobs = {
        job.name: sorted(key.to_user_string() for key in job.asset_layer.executable_asset_keys)
        for job in definitions.resolve_all_job_defs()
        if not job.name.startswith("__")
    }
    sensors = {
        sensor.name: {
            "kind": type(sensor).__name__,
            "default_status": sensor.default_status.value,
            "job": None if isinstance(sensor, dg.AutomationConditionSensorDefinition) else sensor.job_name,
        }
        for sensor in definitions.sensors or []
    }
    return {
        "assets": assets,
        "checks": checks,
        "jobs": jobs,
        "sensors": sensors,
        "schedules": sorted(schedule.name for schedule in definitions.schedules or []),
    }


def test_the_definitions_match_the_reviewed_snapshot():
    current = describe(defs)
    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert current == json.loads(SNAPSHOT.read_text(encoding="utf-8")), (
        "the definitions changed; if on purpose, rewrite the snapshot with UPDATE_SNAPSHOT=1 and review its diff"
    )


def test_the_snapshot_sees_a_changed_partition_mapping():
    """The snapshot is not blind: moving features' look-back changes what it records."""
    changed = describe(defs)
    changed["assets"]["features"]["deps"]["labeled_candles"] = _mapping(dg.TimeWindowPartitionMapping())
    assert changed != json.loads(SNAPSHOT.read_text(encoding="utf-8"))


DAY_WRITERS = ("raw_candles", "labeled_candles", "features")


def test_two_settings_in_one_process_build_two_code_locations(write_config, tmp_path):
    """Nothing is read at import: each build takes its own history start, crons and store backend."""
    duckdb_settings = load_settings(
        {
            "INGEST_CONFIG": str(write_config(history_start="2020-01-01", schedules={"ingestion_cron": "*/5 * * * *"})),
            "FEATURE_DB_PATH": str(tmp_path / "a" / "bitcoin.duckdb"),
            "FEATURE_STORE_BACKEND": "duckdb",
        }
    )
    parquet_settings = load_settings(
        {
            "INGEST_CONFIG": str(write_config(history_start="2023-03-01", schedules={"ingestion_cron": "0 * * * *"})),
            "FEATURE_DB_PATH": str(tmp_path / "b" / "bitcoin.duckdb"),
            "FEATURE_STORE_BACKEND": "parquet",
        }
    )
    first, second = build_definitions(duckdb_settings), build_definitions(parquet_settings)

    def first_day(definitions: dg.Definitions, name: str) -> str:
        return definitions.resolve_assets_def(name).partitions_def.get_first_partition_key()

    def pool(definitions: dg.Definitions, name: str) -> str | None:
        return definitions.resolve_assets_def(name).op.pool

    for name in (*DAY_WRITERS, "feast_offline_features"):
        assert (first_day(first, name), first_day(second, name)) == ("2020-01-01", "2023-03-01")
    crons = [definitions.resolve_schedule_def("ingestion_schedule").cron_schedule for definitions in (first, second)]
    assert crons == ["*/5 * * * *", "0 * * * *"]
    # The DuckDB file takes one writer at a time; the Parquet store writes each day to its own files.
    for name in DAY_WRITERS:
        assert (pool(first, name), pool(second, name)) == ("duckdb", None)
    # The first build is untouched by the second: each holds its own settings.
    assert first.resources["settings"] is duckdb_settings and second.resources["settings"] is parquet_settings


def test_loading_the_code_location_prints_no_warning():
    loaded = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import btc_lifecycle.definitions"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stderr == ""
