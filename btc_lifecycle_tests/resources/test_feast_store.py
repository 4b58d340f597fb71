"""The Feast resource: the repository its settings describe, and Feast's ``FeatureStore`` over it,
opened once on first use with ``feature_store.yaml`` rendered from the settings; the settings are a
resource dependency, so nothing of the online store's connection is config the UI would show."""

from __future__ import annotations

import dagster as dg
import yaml

from btc_lifecycle.adapters.feast_repo import feast_repo, render_feature_store_yaml
from btc_lifecycle.config import load_settings
from btc_lifecycle.resources.feast_store import FeastStoreResource


def settings_in(folder, **env: str):
    return load_settings({"FEATURE_DB_PATH": str(folder / "feature_store" / "bitcoin.duckdb"), **env})


def test_the_repository_is_the_one_the_settings_describe(tmp_path):
    settings = settings_in(tmp_path, FEAST_REPO_DIR=str(tmp_path / "repo"))
    resource = FeastStoreResource(settings=settings)
    assert resource.repository() == feast_repo(settings)
    assert resource.repository().repo_dir == tmp_path / "repo"


def test_the_store_is_opened_once_over_the_rendered_repository(tmp_path):
    settings = settings_in(tmp_path)
    resource = FeastStoreResource(settings=settings)
    repo = resource.repository()
    assert not repo.yaml_path.exists()  # nothing written before the store is asked for
    store = resource.store()
    assert repo.yaml_path.read_text() == render_feature_store_yaml(repo)
    assert store.project == "btc_lifecycle"
    assert store.repo_path == repo.repo_dir
    assert store.config.online_store.path == str(tmp_path / "feature_store" / "feast" / "online_store.db")
    assert resource.store() is store


def test_in_a_run_the_settings_reach_the_store_and_no_connection_is_config(tmp_path):
    settings = settings_in(
        tmp_path, FEAST_ONLINE_STORE="postgres", FEAST_ONLINE_STORE_URL="postgresql://feast:s3cret@127.0.0.1:5433/f"
    )

    @dg.asset
    def online_store_section(feast_store: FeastStoreResource) -> dict:
        return yaml.safe_load(render_feature_store_yaml(feast_store.repository()))["online_store"]

    resource = FeastStoreResource(settings=settings)
    result = dg.materialize(
        [online_store_section], resources={"settings": settings, "feast_store": resource}, raise_on_error=True
    )
    section = result.output_for_node("online_store_section")
    assert (section["type"], section["host"], section["port"], section["password"]) == (
        "postgres",
        "127.0.0.1",
        5433,
        "s3cret",
    )
    assert list(FeastStoreResource.to_config_schema().as_field().config_type.fields) == []
