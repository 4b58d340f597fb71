"""The model asset in process: its gate metadata, and a clear Failure when too little is trainable."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from btc_lifecycle.adapters.feature_store import replace_labeled_candles
from btc_lifecycle.assets.modelling import features, load_scoring_champion, model
from btc_lifecycle.config import load_settings
from btc_lifecycle.domain.labels import label_candles
from btc_lifecycle.domain.synthetic import synthetic_candles, without_minutes
from btc_lifecycle.modelling.features import FEATURE_COLUMNS
from btc_lifecycle.resources import FeatureStoreResource, ModelRegistryResource
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG


def store_with(candles, root: Path, **config_changes):
    """A feature store holding ``candles`` as labeled candles, and settings pointing at it."""
    config = root / "bitcoin_ingest.json"
    config.write_text(json.dumps({**DEFAULT_CONFIG, **config_changes}))
    settings = load_settings(
        {
            "INGEST_CONFIG": str(config),
            "FEATURE_DB_PATH": str(root / "feature_store" / "bitcoin.duckdb"),
            "BTC_REPORT_DIR": str(root / "reports"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        }
    )
    settings.feature_db_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.feature_db_path)) as conn:
        replace_labeled_candles(conn, settings.ingest.series, label_candles(candles, "1m"))
    return settings


def materialize(settings) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [features, model],
        resources={
            "settings": settings,
            "feature_store": FeatureStoreResource(database=str(settings.feature_db_path)),
            "mlflow": ModelRegistryResource.from_settings(settings),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_too_few_trainable_candles_fail_the_step_with_the_counts_and_the_settings(tmp_path):
    # A gap every 30 minutes and no filling: no 60-minute window is ever complete.
    candles = without_minutes(synthetic_candles(3_000, seed=4), range(29, 3_000, 30))
    result = materialize(store_with(candles, tmp_path, features={"max_fill_minutes": 0}))
    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    error = failure.event_specific_data.error
    assert error.cls_name == "Failure"
    message = failure.event_specific_data.user_failure_data.description
    assert "too few trainable candles" in message and "0 of" in message
    for setting in ("features.max_fill_minutes", "model.n_folds", "model.heldout_fraction"):
        assert setting in message
    assert failure.event_specific_data.user_failure_data.metadata["trainable_rows"].value == 0


def test_the_model_metadata_carries_the_gate_and_whether_it_beats_the_prior(tmp_path):
    result = materialize(store_with(synthetic_candles(4_000, seed=12), tmp_path))
    assert result.success
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("model")]
    metadata = {key: value.value for key, value in event.materialization.metadata.items()}
    assert metadata["decision"] == "first_champion" and metadata["alias"] == "champion"
    # A random walk: nothing can be learned, and the metadata says so rather than hiding it.
    assert metadata["challenger_beats_prior"] is False and metadata["serving_model_beats_prior"] is False
    assert "no model beats the prior yet" in metadata["promotion_reason"]
    assert metadata["heldout_prior_log_loss"] == pytest.approx(0.693, abs=0.01)
    assert metadata["data_end"] >= metadata["training_range"].split(" .. ")[1]


class RegistryWithOldChampion:
    """A registry whose champion was trained before the gap-fill flags were features."""

    def load_champion(self):
        class Champion:
            feature_names_in_ = [name for name in FEATURE_COLUMNS if not name.startswith("filled")]

        return Champion()


def test_a_champion_on_other_features_fails_scoring_with_what_to_do():
    with pytest.raises(dg.Failure, match="materialize the model asset once"):
        load_scoring_champion(RegistryWithOldChampion())
