"""The backtest asset in process: the newest model's calls traded, its run and report updated,
and the gate judging by net returns when told to."""

from __future__ import annotations

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from btc_lifecycle.defs.modelling.assets import daily_feature_asset, model_asset
from btc_lifecycle.defs.modelling.backtest import backtest
from btc_lifecycle.modelling.backtest import STRATEGIES
from btc_lifecycle.resources import ModelRegistryResource
from btc_lifecycle_tests.conftest import DEFAULT_CONFIG, stored_days
from btc_lifecycle_tests.defs.modelling.test_model import model_resources, store_with
from btc_lifecycle_tests.modelling.conftest import mean_reverting_candles

FAST_MODEL = {**DEFAULT_CONFIG["model"], "n_folds": 3}


def materialize(settings, assets, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, resources=model_resources(settings), instance=instance, tags=stored_days(settings))


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {key: value.value for key, value in event.materialization.metadata.items()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Five days of learnable candles: features, model and backtest in one run."""
    settings = store_with(mean_reverting_candles(7_200), tmp_path_factory.mktemp("backtest"), model=FAST_MODEL)
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(settings, [daily_feature_asset(settings), model_asset(settings), backtest], instance)
        yield settings, metadata_of(result, "model"), metadata_of(result, "backtest"), instance


def test_the_backtest_trades_the_version_the_model_asset_just_registered(trained):
    settings, trained_model, traded, _ = trained
    assert traded["model_version"] == trained_model["model_version"]
    assert traded["mlflow_run_id"] == trained_model["mlflow_run_id"]
    assert traded["cost_a_side_bps"] == 10.0
    assert traded["candles"] > 0
    assert {f"{name}_net_total_return" for name in STRATEGIES} <= set(traded)


def test_its_metadata_shows_the_table_with_and_without_costs_the_break_even_and_the_chart(trained):
    _, _, traded, _ = trained
    table = traded["backtest"]
    for name in STRATEGIES:
        assert f"| {name} | gross |" in table and f"| {name} | net |" in table
    assert "break-even bps a side" in table
    assert "| flat | net | +0.00% | +0.0% | 0.00 | 0.00% | 0 | 0 | – | – | – |" in table  # nothing to rate
    assert "nan" not in table
    assert traded["verdict"].startswith("After 10 bps a side, ")
    assert table.endswith(traded["verdict"])
    assert traded["equity_curves"].startswith("![equity curves](data:image/png;base64,iVBOR")  # a PNG


def test_the_models_mlflow_run_carries_the_after_cost_metrics_and_the_report(trained):
    settings, trained_model, traded, _ = trained
    client = MlflowClient(settings.mlflow_tracking_uri)
    metrics = client.get_run(trained_model["mlflow_run_id"]).data.metrics
    for name in STRATEGIES:
        assert metrics[f"backtest_{name}_net_total_return"] == pytest.approx(traded[f"{name}_net_total_return"])
    assert metrics["backtest_cost_a_side_bps"] == 10.0
    artifacts = [item.path for item in client.list_artifacts(trained_model["mlflow_run_id"], "backtest")]
    assert "backtest/report.pdf" in artifacts
    assert "backtest/out_of_sample.parquet" in artifacts


def test_the_model_report_pdf_is_written_under_the_report_folder(trained):
    settings, _, traded, _ = trained
    pdf = traded["pdf"]
    assert pdf.startswith(str(settings.report_dir))
    with open(pdf, "rb") as stream:
        assert stream.read(5) == b"%PDF-"


def test_costs_come_from_the_settings(tmp_path):
    costs = {"taker_fee_bps": 2.5, "maker_fee_bps": 1.0, "slippage_bps": 0.5, "fills": "taker"}
    settings = store_with(mean_reverting_candles(7_200), tmp_path, model=FAST_MODEL, costs=costs)
    with dg.DagsterInstance.ephemeral() as instance:
        traded = metadata_of(
            materialize(settings, [daily_feature_asset(settings), model_asset(settings), backtest], instance),
            "backtest",
        )
    assert traded["cost_a_side_bps"] == 3.0
    assert traded["verdict"].startswith("After 3 bps a side, ")


def test_without_a_model_the_backtest_says_what_to_materialize_first(tmp_path):
    settings = store_with(mean_reverting_candles(2_000), tmp_path, model=FAST_MODEL)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [backtest], resources=model_resources(settings), instance=instance, raise_on_error=False
        )
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert "materialize the model asset first" in failure.step_failure_data.error.message


def test_the_gate_judges_by_net_return_after_costs_when_told_to(tmp_path):
    model_config = {**FAST_MODEL, "gate_metric": "net_return"}
    settings = store_with(mean_reverting_candles(7_200), tmp_path, model=model_config)
    with dg.DagsterInstance.ephemeral() as instance:
        first = metadata_of(
            materialize(settings, [daily_feature_asset(settings), model_asset(settings)], instance), "model"
        )
    registry = ModelRegistryResource.from_settings(settings).registry()
    run = registry.client.get_run(first["mlflow_run_id"]).data
    assert run.params["gate_metric"] == "net_return"
    assert first["promotion_reason"].startswith("judged by net return after costs")
    # The paired test compared minus the per-candle net returns: the prior's constant call holds
    # one side all window, so its loss is the market's move, not a log loss near 0.69.
    prior_loss = run.metrics["gate_prior_log_loss"]
    assert abs(prior_loss) < 0.01
