"""The market comparison table: one row per market, excesses over the prior, and a dash for what
the lineage does not know yet."""

import math

from btc_lifecycle.monitoring.comparison import (
    COLUMNS,
    MarketStanding,
    comparison_frame,
    comparison_markdown,
    comparison_rows,
)

TRAINED = MarketStanding(
    market="BTC/USDT on binance, 1m",
    model_name="btc_direction",
    champion_version=1,
    walk_forward_roc_auc=0.5312,
    walk_forward_log_loss=0.6890,
    prior_log_loss=0.6925,
    gate_decision="keep_champion",
    realized_labels=300,
    realized_log_loss=0.6950,
    realized_prior_log_loss=0.6930,
    realized_net_return=-0.0123,
    drift_share=0.25,
    failed_checks=("realized_performance",),
)
UNTRAINED = MarketStanding(market="BTC/USD on binanceus, 1m", model_name="btc_direction_binanceus_btc_usd_1m")


def test_each_market_is_one_row_with_the_columns_in_order():
    frame = comparison_frame([TRAINED, UNTRAINED])
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["market"]) == ["BTC/USDT on binance, 1m", "BTC/USD on binanceus, 1m"]


def test_the_excess_over_the_prior_is_the_models_log_loss_minus_the_priors():
    row = comparison_frame([TRAINED]).iloc[0]
    assert math.isclose(row["excess over prior"], 0.6890 - 0.6925)
    assert math.isclose(row["realized excess over prior"], 0.6950 - 0.6930)


def test_what_a_market_does_not_have_yet_is_nan_in_the_frame_and_a_dash_for_a_person():
    frame = comparison_frame([UNTRAINED])
    assert math.isnan(frame.iloc[0]["walk-forward ROC AUC"]) and frame.iloc[0]["champion"] == "none"
    [row] = comparison_rows(frame)
    cells = dict(zip(COLUMNS, row, strict=True))
    assert cells["walk-forward ROC AUC"] == "—" and cells["excess over prior"] == "—"
    assert cells["gate"] == "not trained" and cells["failed checks"] == "none" and cells["realized labels"] == "0"


def test_numbers_read_as_a_person_reads_them():
    [row] = comparison_rows(comparison_frame([TRAINED]))
    cells = dict(zip(COLUMNS, row, strict=True))
    assert cells["champion"] == "v1"
    assert cells["walk-forward ROC AUC"] == "0.5312"
    assert cells["excess over prior"] == "-0.0035"
    assert cells["realized excess over prior"] == "+0.0020"
    assert cells["realized net return"] == "-1.23%"
    assert cells["failed checks"] == "realized_performance"


def test_the_markdown_table_has_a_header_and_a_line_per_market():
    lines = comparison_markdown(comparison_frame([TRAINED, UNTRAINED])).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("| market | model | champion |")
    assert "BTC/USD on binanceus, 1m" in lines[3]
