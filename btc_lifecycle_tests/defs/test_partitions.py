"""Daily partitions: re-materializing a day replaces exactly that day, idempotently, without a
duplicate, and leaves every other day as it was; a range runs as one run."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd
import pytest

from btc_lifecycle.adapters.feature_store import read_candles, replace_candles_between
from btc_lifecycle.config import load_settings
from btc_lifecycle.defs.partitions import daily_partitions, run_window
from btc_lifecycle.domain.candles import CandleSeries
from btc_lifecycle.domain.labels import price_increase_labels
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.replay_exchange import ReplayExchange
from btc_lifecycle_tests.e2e.reliability.conftest import Store, materialization, step_failure

DAY = pd.Timedelta(days=1)
FIRST = pd.Timestamp("2024-01-01", tz="UTC")
SERIES = CandleSeries("candles", "BTC/USDT", "1m")


def on_day(frame: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    times = frame["open_time"]
    return frame.loc[(times >= day) & (times < day + DAY)].reset_index(drop=True)


def revised_second_day(candles: pd.DataFrame) -> pd.DataFrame:
    """The exchange's history revised for 2 January only: other closes, and 30 minutes gone."""
    revised = candles.copy()
    second = (revised["open_time"] >= FIRST + DAY) & (revised["open_time"] < FIRST + 2 * DAY)
    revised.loc[second, "close"] = revised.loc[second, "open"]  # flat candles: every label 0
    gone = revised.loc[second].index[600:630]
    return revised.drop(index=gone).reset_index(drop=True)


@pytest.fixture(scope="module")
def three_days(tmp_path_factory):
    candles = synthetic_candles(3 * 1440, seed=5)
    store = Store(tmp_path_factory.mktemp("partitions"))
    with ReplayExchange(candles, speed=0) as exchange:
        first = store.ingest(exchange.base_url)
    assert first.success
    before = {"raw": store.table(), "labeled": store.table("candles_labeled")}
    revised = revised_second_day(candles)
    with ReplayExchange(revised, speed=0) as exchange:
        again = [store.ingest(exchange.base_url, days="2024-01-02...2024-01-02") for _ in range(2)]
    assert all(result.success for result in again)
    after = {"raw": store.table(), "labeled": store.table("candles_labeled")}
    return candles, revised, before, after, [materialization(result, "raw_candles") for result in again]


def test_a_range_of_days_runs_as_one_run_and_stores_every_candle_once(three_days):
    candles, _, before, _, _ = three_days
    assert len(before["raw"]) == len(candles)
    assert not before["raw"]["open_time"].duplicated().any()


def test_re_materializing_a_day_leaves_every_other_day_untouched(three_days):
    _, _, before, after, _ = three_days
    for day in (FIRST, FIRST + 2 * DAY):
        pd.testing.assert_frame_equal(on_day(after["raw"], day), on_day(before["raw"], day))
        pd.testing.assert_frame_equal(on_day(after["labeled"], day), on_day(before["labeled"], day))


def test_the_re_materialized_day_holds_exactly_the_exchanges_candles_now(three_days):
    _, revised, _, after, metadata = three_days
    day = FIRST + DAY
    stored = on_day(after["raw"], day)
    expected = on_day(revised, day)
    assert len(stored) == len(expected) == 1440 - 30
    pd.testing.assert_series_equal(stored["close"], expected["close"], check_dtype=False)
    assert not after["raw"]["open_time"].duplicated().any()
    # First repair: 30 stored candles were not in the exchange's answer any more; the second
    # run of the same day finds the store already equal (idempotent).
    assert (metadata[0]["removed_rows"], metadata[0]["new_rows"]) == (30, 0)
    assert (metadata[1]["removed_rows"], metadata[1]["new_rows"]) == (0, 0)
    assert metadata[1]["dagster/row_count"] == 1440 - 30


def test_the_repaired_days_labels_equal_a_recomputation_with_the_previous_days_tail(three_days):
    _, _, _, after, _ = three_days
    day = FIRST + DAY
    with_tail = after["labeled"].loc[(after["labeled"]["open_time"] >= day - pd.Timedelta(minutes=1))]
    with_tail = with_tail.loc[with_tail["open_time"] < day + DAY].reset_index(drop=True)
    recomputed = price_increase_labels(with_tail, "1m").iloc[1:].reset_index(drop=True)
    stored = with_tail["price_increase_label"].iloc[1:].reset_index(drop=True)
    pd.testing.assert_series_equal(stored, recomputed, check_names=False, check_dtype=False)
    # the day's first candle compared with 1 January's last close: labelled, not left empty
    assert pd.notna(stored.iloc[0])


def test_a_replacement_outside_its_window_is_refused_and_the_store_is_unchanged(tmp_path):
    candles = synthetic_candles(2 * 1440, seed=9)
    with duckdb.connect(str(tmp_path / "store.duckdb")) as conn:
        replace_candles_between(conn, SERIES, candles, FIRST, FIRST + 2 * DAY)
        before = read_candles(conn, "candles", "BTC/USDT", "1m")
        with pytest.raises(ValueError, match="outside the window"):
            replace_candles_between(conn, SERIES, candles, FIRST, FIRST + DAY)
        pd.testing.assert_frame_equal(read_candles(conn, "candles", "BTC/USDT", "1m"), before)


def test_a_run_of_one_day_or_of_a_range_is_judged_on_exactly_those_days():
    assert run_window({"dagster/partition": "2024-01-02"}) == (FIRST + DAY, FIRST + 2 * DAY)
    assert run_window(
        {"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-01-03"}
    ) == (FIRST, FIRST + 3 * DAY)
    assert run_window({}) is None


def test_today_is_a_partition_so_a_partial_day_can_be_materialized(write_config):
    days = daily_partitions(load_settings({"INGEST_CONFIG": str(write_config(history_start="2020-03-01"))}))
    # end_offset=1: the newest partition is the day now falls in, not yesterday.
    assert days.end_offset == 1
    assert str(days.timezone) == "UTC"
    # The first day a person can backfill is the configured one.
    assert days.get_first_partition_key() == "2020-03-01"


def test_a_day_after_the_exchanges_clock_fails_clearly_and_stores_nothing(tmp_path):
    candles = synthetic_candles(1440, seed=4)
    store = Store(tmp_path)
    with ReplayExchange(candles, speed=0) as exchange:
        result = store.ingest(exchange.base_url, days="2024-01-05...2024-01-05")
    assert not result.success
    assert "start after the exchange's clock" in step_failure(result)
    assert not store.db.exists()  # the store was never opened for writing


def test_a_backfill_of_days_also_redoes_the_neighbouring_days_that_read_them():
    """What the UI's backfill dialog targets for 5–9 March: the lineage the partition mappings
    declare. A changed 9 March changes 10 March's first label, and changed labels change the
    neighbouring days' features (windows back, the last row's target forward), so the backfill
    redoes those days too. Dagster's daemon puts two assets in one run only when they target the same
    days, so such a backfill runs as one run per asset (from the CLI, one run for all three)."""
    from dagster._core.execution.asset_backfill import AssetBackfillData
    from dagster._core.instance import DagsterInstance

    from btc_lifecycle.definitions import build_definitions

    graph = build_definitions(load_settings({})).resolve_asset_graph()
    days = [f"2023-03-{day:02d}" for day in range(5, 10)]
    with DagsterInstance.ephemeral() as instance:
        target = AssetBackfillData.from_asset_partitions(
            asset_graph=graph,
            partition_names=days,
            asset_selection=[dg.AssetKey(name) for name in ("raw_candles", "labeled_candles", "features")],
            dynamic_partitions_store=instance,
            backfill_start_timestamp=pd.Timestamp("2026-01-01", tz="UTC").timestamp(),
            all_partitions=False,
        ).target_subset

    def targeted(name: str) -> tuple[str, str]:
        keys = sorted(target.get_partitions_subset(dg.AssetKey(name)).get_partition_keys())
        return keys[0], keys[-1]

    assert targeted("raw_candles") == ("2023-03-05", "2023-03-09")
    assert targeted("labeled_candles") == ("2023-03-05", "2023-03-10")
    # Features read labels a day either side: the labels' 4 March to 10 March, one more each way.
    assert targeted("features") == ("2023-03-04", "2023-03-11")
