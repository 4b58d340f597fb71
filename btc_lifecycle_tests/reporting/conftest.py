"""A seeded labeled candle frame with one gap, and one ingestion report shared by the module."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.candles import complete_candle_frame, find_gaps
from btc_lifecycle.domain.gaps import gap_fill_summary
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.reporting import ReportFacts, build_ingestion_report

CANDLES = 3_000
GAP_START, GAP_MINUTES = 1_200, 15
MAX_FILL_MINUTES = 10  # shorter than the gap: the report says it stays a gap for the model
HOSTILE_SYMBOL = "BTC/<script>alert(1)</script>"
REPORT_TIME = datetime(2026, 3, 26, 10, 15, 0, tzinfo=UTC)


def seeded_labeled_candles(seed: int = 7) -> pd.DataFrame:
    """Random-walk candles rounded to whole dollars (so some closes tie), minus one gap."""
    rng = np.random.default_rng(seed)
    close = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, CANDLES))))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0, 6, (2, CANDLES)))
    frame = pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=CANDLES, freq="1min", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) + wick[0],
            "low": np.minimum(open_, close) - wick[1],
            "close": close,
            "volume": rng.lognormal(0, 1, CANDLES),
        }
    )
    frame = frame.drop(index=range(GAP_START, GAP_START + GAP_MINUTES)).reset_index(drop=True)
    return label_candles(complete_candle_frame(frame, "1m"), "1m")


@pytest.fixture(scope="session")
def labeled_candles() -> pd.DataFrame:
    return seeded_labeled_candles()


@pytest.fixture(scope="session")
def report_root(tmp_path_factory):
    """A report root that already holds two old reports and two temp folders."""
    root = tmp_path_factory.mktemp("reports")
    ingestion = root / "ingestion"
    for name in ("20200101T000000Z", "20200102T000000Z"):
        (ingestion / name).mkdir(parents=True)
        (ingestion / name / "report.pdf").write_bytes(b"%PDF-old")
    stale, fresh = ingestion / ".tmp-20200101T000000Z-1", ingestion / ".tmp-20260326T101459Z-2"
    stale.mkdir()
    fresh.mkdir()
    day_old = time.time() - 86_400
    os.utime(stale, (day_old, day_old))
    return root


@pytest.fixture(scope="session")
def ingestion_report(labeled_candles, report_root):
    gaps = find_gaps(labeled_candles["open_time"], "1m")
    facts = ReportFacts(
        source="replay of <b>candles</b>.csv",
        symbol=HOSTILE_SYMBOL,
        interval="1m",
        rows_new=120,
        rows_total=len(labeled_candles),
        missing_minutes=sum(gap.missing for gap in gaps),
        gaps=gaps,
        generated_at=REPORT_TIME,
        gap_policy=gap_fill_summary(labeled_candles["open_time"], "1m", MAX_FILL_MINUTES),
    )
    return build_ingestion_report(labeled_candles, facts, report_root, keep_last=2, now=REPORT_TIME)
