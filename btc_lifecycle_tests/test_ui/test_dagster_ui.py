"""The Dagster UI, as a person uses it: see the lineage, materialize it all, read the result."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 120


def lineage_asset_names() -> list[str]:
    """Every asset of the code location, from the Definitions object itself (the graph grows).

    Read from the asset definitions it was given: resolving the repository would bind it to
    whichever Dagster instance an earlier test left current.
    """
    from btc_lifecycle.definitions import defs

    return sorted(key.path[-1] for assets in defs.assets for key in assets.keys)


def test_materialize_all_from_the_lineage_page_ingests_every_replayed_candle(dagster_dev, ui, generated_candles):
    expected_assets = lineage_asset_names()  # while dagster dev starts
    dagster_dev.wait_until_ready()

    lineage = ui.open_global_lineage()
    ui.screenshot("lineage-collapsed")
    lineage.expand_all_groups()
    assert lineage.missing_assets(expected_assets) == [], f"graph labels: {lineage.asset_labels()}"
    ui.screenshot("lineage-expanded")

    lineage.materialize_all()
    ui.screenshot("run-launched")
    run = lineage.open_launched_run()
    status = run.wait_for_end(RUN_TIMEOUT_SECONDS)
    ui.screenshot("run-finished")
    assert status == "SUCCESS", (
        f"run {run.run_id} ended {status} ({run.step_counts()}); dagster dev log:\n{dagster_dev.log_tail()}"
    )
    run.expect_status_tag("Success")

    raw_candles = ui.open_asset("raw_candles")
    total_rows = raw_candles.metadata_int("total_rows")
    raw_candles.metadata_row("total_rows").scroll_into_view_if_needed()
    ui.screenshot("raw-candles-asset")
    # The replay clock stands at the file's end, so every candle is closed and stored.
    assert total_rows == len(generated_candles)
