"""The ``ingestion_report`` asset in process: it reads the labeled candles from the store and the
ingestion stats from their file, builds the PDF in the report folder the settings name, and its
metadata says what the PDF says; missing or incomplete stats fail the step naming the file or
the field. The report's contents are pinned in test_ingestion_report.py."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from pypdf import PdfReader

from btc_lifecycle.adapters.feature_store import replace_labeled_candles
from btc_lifecycle.config import load_settings
from btc_lifecycle.defs.reporting.assets import ingestion_report_asset
from btc_lifecycle.resources import FeatureStoreResource
from btc_lifecycle_tests.e2e.reliability.conftest import materialization, step_failure
from btc_lifecycle_tests.reporting.conftest import GAP_MINUTES, GAP_START, seeded_labeled_candles

STATS = {"source": "replay of candles.csv", "new_rows": 120, "missing_minutes": GAP_MINUTES}


def settings_with_candles(root: Path, config: Path):
    """Settings under ``root`` whose store holds the seeded labeled candles (one 15-minute gap)."""
    settings = load_settings(
        {
            "INGEST_CONFIG": str(config),
            "FEATURE_DB_PATH": str(root / "feature_store" / "bitcoin.duckdb"),
            "BTC_REPORT_DIR": str(root / "reports"),
        }
    )
    settings.feature_db_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.feature_db_path)) as conn:
        replace_labeled_candles(conn, settings.ingest.series, seeded_labeled_candles())
    return settings


def run(settings) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [ingestion_report_asset(settings)],
        resources={
            "settings": settings,
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
        },
        raise_on_error=False,
    )


@pytest.fixture
def settings(tmp_path, write_config):
    # The policy fills gaps up to 10 minutes: the stored 15-minute gap stays a gap for the model.
    config = write_config(features={"max_fill_minutes": 10}, report={"keep_last": 1})
    return settings_with_candles(tmp_path, config)


def test_the_report_is_built_from_the_store_and_the_stats_and_its_metadata_says_what_it_holds(settings):
    settings.ingestion_stats_path.write_text(json.dumps(STATS))
    result = run(settings)
    assert result.success
    meta = materialization(result, "ingestion_report")
    pdf = Path(meta["pdf"])
    assert pdf.parent.parent == settings.report_dir / "ingestion" and pdf.name == "report.pdf"
    assert meta["pages"] == len(PdfReader(pdf).pages) >= 1
    labeled = seeded_labeled_candles()
    assert meta["rows"] == len(labeled)
    assert meta["first_candle"] == labeled["open_time"].iloc[0].isoformat()
    assert meta["last_candle"] == labeled["open_time"].iloc[-1].isoformat()
    assert meta["missing_minutes"] == GAP_MINUTES  # as the ingestion stats said
    assert (meta["max_fill_minutes"], meta["minutes_to_fill"], meta["gaps_to_fill"]) == (10, 0, 0)
    assert (meta["gaps_left_open"], meta["minutes_in_open_gaps"]) == (1, GAP_MINUTES)
    assert 0 < meta["up_share"] < 1 and 0 < meta["tie_share"] < 1  # whole-dollar closes: some tie
    assert meta["log_return_std"] > 0
    assert [Path(image).parent for image in meta["images"]] == [pdf.parent] * len(meta["images"])
    assert all(Path(image).suffix == ".png" and Path(image).exists() for image in meta["images"])
    assert "replay of candles.csv" in meta["summary"]
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "replay of candles.csv" in text
    gap_start = labeled["open_time"].iloc[GAP_START - 1]  # the last candle before the gap
    assert gap_start.strftime("%Y-%m-%d") in text


def test_stats_without_a_source_are_reported_as_unknown(settings):
    settings.ingestion_stats_path.write_text(json.dumps({**STATS, "source": None}))
    result = run(settings)
    assert result.success
    assert "unknown" in materialization(result, "ingestion_report")["summary"]


def test_missing_ingestion_stats_fail_the_step_naming_the_file(settings):
    result = run(settings)
    assert not result.success
    message = step_failure(result)
    assert "No such file or directory" in message and str(settings.ingestion_stats_path) in message
    assert not (settings.report_dir / "ingestion").exists()


def test_ingestion_stats_without_new_rows_fail_the_step_naming_the_field(settings):
    settings.ingestion_stats_path.write_text(json.dumps({"source": "x", "missing_minutes": 0}))
    result = run(settings)
    assert not result.success
    assert "'new_rows'" in step_failure(result)
    assert not (settings.report_dir / "ingestion").exists()
