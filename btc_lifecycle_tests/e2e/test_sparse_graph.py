"""End to end on a thin venue: most minutes have no candle, and the whole graph still completes."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from btc_lifecycle.adapters.feature_store import read_table
from btc_lifecycle.domain.gaps import gap_fill_summary
from btc_lifecycle.domain.synthetic import synthetic_candles, thin_venue_candles
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG, write_generic_csv
from btc_lifecycle_tests.e2e.workspace import GRAPH_ASSETS, Workspace

pytestmark = pytest.mark.e2e

MAX_FILL = DEFAULT_CONFIG["features"]["max_fill_minutes"]


@pytest.fixture(scope="module")
def sparse_graph(tmp_path_factory):
    """`make run CANDLES=FILE` on a generated thin-venue file: 62 % of its minutes have no trade."""
    root = tmp_path_factory.mktemp("sparse_graph")
    thin = thin_venue_candles(synthetic_candles(8_000, seed=29), no_trade_share=0.62, seed=29)
    path = write_generic_csv(thin, root / "sparse.csv")
    workspace = Workspace(root / "state")
    workspace.materialize(path)
    with dg.DagsterInstance.from_config(str(workspace.root / "dagster_home")) as instance:
        metadata = {}
        for name in GRAPH_ASSETS:
            event = instance.get_latest_materialization_event(dg.AssetKey(name))
            metadata[name] = (
                None
                if event is None
                else {key: value.value for key, value in event.asset_materialization.metadata.items()}
            )
    return workspace, thin, metadata


def test_every_asset_of_the_graph_materializes_on_a_thin_venue(sparse_graph):
    _, _, metadata = sparse_graph
    assert [name for name in GRAPH_ASSETS if metadata[name] is None] == []


def test_the_stored_candles_are_the_thin_venues_own(sparse_graph):
    workspace, thin, _ = sparse_graph
    assert len(workspace.stored()) == len(thin) < 0.45 * 8_000
    assert len(workspace.stored("candles_labeled")) == len(thin)


def test_the_model_trains_on_most_minutes_thanks_to_the_gap_policy(sparse_graph):
    workspace, thin, metadata = sparse_graph
    features, model = metadata["features"], metadata["model"]
    policy = gap_fill_summary(thin["open_time"], "1m", MAX_FILL)
    assert features["filled_minutes"] == policy.minutes_filled > len(thin)
    assert features["trainable_rows"] > 0.8 * features["dagster/row_count"]
    # The final model trains on all but the held-out window (15 %) and the embargo before it.
    assert model["training_rows"] + model["heldout_rows"] > 0.75 * features["dagster/row_count"]
    with duckdb.connect(str(workspace.feature_db), read_only=True) as conn:
        assert len(read_table(conn, "candles_predictions")) > 0


def test_the_report_and_the_features_agree_on_the_gap_policy(sparse_graph):
    _, _, metadata = sparse_graph
    report, features = metadata["ingestion_report"], metadata["features"]
    assert report["max_fill_minutes"] == features["max_fill_minutes"] == MAX_FILL
    assert report["minutes_to_fill"] == features["filled_minutes"]
    assert report["gaps_left_open"] == features["gaps_left_open"]
