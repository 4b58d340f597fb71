"""The features asset on a thin venue's candles: the policy applied, its effect in the metadata."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd
import pytest

from btc_lifecycle.adapters.feature_store import read_candles, read_features
from btc_lifecycle.defs.modelling.assets import daily_feature_asset
from btc_lifecycle.domain.gaps import FILLED_COLUMN, gap_fill_summary
from btc_lifecycle.domain.synthetic import synthetic_candles, thin_venue_candles, without_minutes
from btc_lifecycle.launch import history_partition_range
from btc_lifecycle.modelling.features import EXCLUSION_REASONS, LONGEST_WINDOW, compute_features
from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle.resources import FeatureStoreResource
from btc_lifecycle_tests.e2e.reliability.conftest import Store, materialization, partition_range_tags

MAX_FILL = 20
OUTAGE_AT, OUTAGE_MINUTES = 1_500, 90  # an exchange outage: longer than MAX_FILL, stays a gap


@pytest.fixture(scope="module")
def thin_candles() -> pd.DataFrame:
    thin = thin_venue_candles(synthetic_candles(3_000, seed=17), no_trade_share=0.6, seed=17)
    start = thin["open_time"].iloc[0] + pd.Timedelta(minutes=OUTAGE_AT)
    outage = (thin["open_time"] >= start) & (thin["open_time"] < start + pd.Timedelta(minutes=OUTAGE_MINUTES))
    return without_minutes(thin, outage[outage].index)


@pytest.fixture(scope="module")
def materialized(tmp_path_factory, thin_candles):
    """The ingestion slice through the replay exchange, then the features asset, in process."""
    store = Store(tmp_path_factory.mktemp("features_asset"), features={"max_fill_minutes": MAX_FILL})
    with ReplayExchange(thin_candles, speed=0) as exchange:
        assert store.ingest(exchange.base_url).success
        settings = store.settings(exchange.base_url)
        days = history_partition_range(exchange.base_url, store.env(exchange.base_url), replay=True)
    labeled_before = store.table("candles_labeled")
    result = dg.materialize(
        [daily_feature_asset(settings)],
        resources={"settings": settings, "feature_store": FeatureStoreResource(database=str(store.db))},
        instance=store.instance,
        tags=partition_range_tags(days),
    )
    with duckdb.connect(str(store.db), read_only=True) as conn:
        table = read_features(conn, settings.ingest.series)
    return store, settings, labeled_before, materialization(result, "features"), table


def test_the_setting_reaches_the_features_table(materialized, thin_candles):
    store, settings, labeled, metadata, table = materialized
    assert settings.features.max_fill_minutes == MAX_FILL
    expected = compute_features(labeled, "1m", max_fill_minutes=MAX_FILL)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert table[FILLED_COLUMN].sum() > len(thin_candles)
    assert settings.ingest.series.features_table == "candles_features"


def test_the_metadata_says_how_many_minutes_were_filled_and_which_gaps_stay(materialized, thin_candles):
    _, _, _, metadata, table = materialized
    policy = gap_fill_summary(thin_candles["open_time"], "1m", MAX_FILL)
    assert metadata["max_fill_minutes"] == MAX_FILL
    assert metadata["stored_candles"] == len(thin_candles)
    assert metadata["filled_minutes"] == policy.minutes_filled == int(table[FILLED_COLUMN].sum())
    assert metadata["dagster/row_count"] == len(thin_candles) + policy.minutes_filled
    assert metadata["gaps_filled"] == policy.gaps_filled
    assert metadata["gaps_left_open"] == policy.gaps_left_open >= 1  # the outage at least
    assert metadata["minutes_in_open_gaps"] == policy.minutes_left_open >= OUTAGE_MINUTES


def test_the_metadata_breaks_the_excluded_rows_down_by_reason(materialized):
    _, _, _, metadata, table = materialized
    excluded = {reason: metadata[f"excluded_{reason}"] for reason in EXCLUSION_REASONS}
    assert sum(excluded.values()) == metadata["excluded_rows"] == int((~table["trainable"]).sum())
    assert metadata["trainable_rows"] == int(table["trainable"].sum())
    assert excluded["incomplete_window_start_of_history"] == LONGEST_WINDOW - 1
    assert excluded["incomplete_window_after_gap"] >= LONGEST_WINDOW - 1  # after the outage
    assert excluded["no_next_candle"] >= 2  # the newest row and the row before the outage
    assert metadata["trainable_rows"] > 0.8 * metadata["dagster/row_count"]
    for reason in EXCLUSION_REASONS:
        assert reason in metadata["exclusions"]


def test_the_stored_and_labeled_candles_stay_as_stored(materialized, thin_candles):
    store, _, labeled_before, _, _ = materialized
    with duckdb.connect(str(store.db), read_only=True) as conn:
        labeled_after = read_candles(conn, "candles_labeled", "BTC/USDT", "1m")
    pd.testing.assert_frame_equal(labeled_after, labeled_before)
    assert len(labeled_after) == len(store.table()) == len(thin_candles)
    # The seed's label: none for the first candle and after every stored gap, filled or not.
    gaps = gap_fill_summary(thin_candles["open_time"], "1m", 0).gaps_left_open
    assert labeled_after["price_increase_label"].isna().sum() == gaps + 1
