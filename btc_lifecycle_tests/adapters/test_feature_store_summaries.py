"""ingestion_stats counts in DuckDB what domain.ingestion counts in pandas: the same numbers."""

from __future__ import annotations

import duckdb
import pandas as pd

from btc_lifecycle.adapters.feature_store import (
    replace_labeled_between,
    stored_label_summary,
    stored_summary,
)
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.ingestion import label_summary, store_summary
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes

SERIES = CandleSeries("candles", "BTC/USDT", "1m")


def test_duckdb_summaries_equal_the_pandas_ones_on_candles_with_gaps_and_ties(tmp_path):
    candles = synthetic_candles(3_000, seed=8)
    candles.loc[100:140, "close"] = candles.loc[99, "close"]  # a run of ties
    candles = without_minutes(candles, list(range(500, 530)) + list(range(2_000, 2_003)))
    labeled = label_candles(candles, "1m")
    start = labeled["open_time"].iloc[0].floor("D")
    with duckdb.connect(str(tmp_path / "store.duckdb")) as conn:
        replace_labeled_between(conn, SERIES, labeled, start, start + pd.Timedelta(days=3))
        assert stored_summary(conn, SERIES.labeled_table, SERIES) == store_summary(labeled["open_time"], "1m")
        assert stored_label_summary(conn, SERIES) == label_summary(labeled)
