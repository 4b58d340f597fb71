"""The calibration chart of the model card, read back from the figure it draws: ten quantile bins
of the held-out probabilities against the observed share of up candles, beside the diagonal.
No other fast test draws it (the registry tests do, under MLflow); found by `make mutate`."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.modelling import model_card
from btc_lifecycle.modelling.metrics import METRIC_NAMES
from btc_lifecycle.modelling.model_card import calibration_png, render_model_card
from btc_lifecycle.modelling.walk_forward import MODEL_NAMES


def heldout(probability: np.ndarray, target: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(heldout=pd.DataFrame({"xgboost_up_probability": probability, "target": target}))


@pytest.fixture
def drawn(monkeypatch):
    """calibration_png with the figure kept instead of encoded."""
    figures = []
    monkeypatch.setattr(model_card, "_png", lambda figure: figures.append(figure) or b"png")

    def draw(result) -> object:
        assert calibration_png(result) == b"png"
        return figures[-1]

    return draw


PROBABILITY = np.linspace(0.30, 0.70, 100)  # distinct: ten bins of ten
TARGET = (np.arange(100) % 3 == 0).astype(int)


def test_the_chart_plots_ten_quantile_bins_against_their_observed_up_share(drawn):
    figure = drawn(heldout(PROBABILITY, TARGET))
    axes = figure.axes[0]
    diagonal, model = axes.get_lines()
    assert list(model.get_xdata()) == pytest.approx(PROBABILITY.reshape(10, 10).mean(axis=1))
    assert list(model.get_ydata()) == pytest.approx(TARGET.reshape(10, 10).mean(axis=1))
    assert list(diagonal.get_xdata()) == pytest.approx([0.30, 0.70])
    assert list(diagonal.get_ydata()) == pytest.approx([0.30, 0.70])


def test_identical_probabilities_make_a_single_bin(drawn):
    figure = drawn(heldout(np.full(20, 0.5), np.tile([1, 0, 0, 0], 5)))
    model = figure.axes[0].get_lines()[1]
    assert list(model.get_xdata()) == [0.5] and list(model.get_ydata()) == [0.25]


def test_the_chart_is_labelled_styled_and_square(drawn):
    figure = drawn(heldout(PROBABILITY, TARGET))
    axes = figure.axes[0]
    diagonal, model = axes.get_lines()
    assert tuple(figure.get_size_inches()) == (5, 5)
    assert (diagonal.get_linestyle(), diagonal.get_label()) == ("--", "perfect")
    assert mcolors.same_color(diagonal.get_color(), "grey")
    assert (model.get_marker(), model.get_label()) == ("o", "xgboost")
    assert mcolors.same_color(model.get_color(), "#cc6677")
    assert axes.get_xlabel() == "predicted probability of an up candle"
    assert axes.get_ylabel() == "observed share of up candles"
    assert axes.get_title() == "Calibration on the held-out window"
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["perfect", "xgboost"]


def test_the_chart_is_a_png():
    assert calibration_png(heldout(PROBABILITY, TARGET)).startswith(b"\x89PNG\r\n\x1a\n")


# render_model_card: the whole page, pinned for a result whose every field is known (a golden
# copy: any change to the page shows here first, to be reviewed and re-pinned).
def card_metrics(offset: float) -> dict:
    return {
        name: SimpleNamespace(**{m: offset + i / 10 + j / 100 for j, m in enumerate(METRIC_NAMES)})
        for i, name in enumerate(MODEL_NAMES)
    }


def card_result() -> SimpleNamespace:
    return SimpleNamespace(
        training_range=("2024-01-01 00:00", "2024-01-05 00:00"),
        heldout_range=("2024-01-05 00:00", "2024-01-06 00:00"),
        row_counts={"candles": 7200, "trainable": 7100},
        feature_columns=("return_1", "rsi_14"),
        fingerprint="abc123",
        training_seconds=12.345,
        heldout_metrics=card_metrics(0.5),
        overall=card_metrics(0.25),
        folds=[
            SimpleNamespace(
                index=1, train_start="t0", train_end="t1", test_start="t2", test_end="t3", metrics=card_metrics(0.0)
            )
        ],
    )


PROMOTED_PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>btc &amp; co</title><style>table'
    "{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}<"
    "/style></head><body><h1>Model card: btc &amp; co v7</h1>\n<p>Predicts whether the next on"
    "e-minute candle closes above the current one, from what is known at the close of the cur"
    "rent candle. A baseline, not a trading edge.</p>\n<table><tr><th></th><th></th></tr><tr><"
    "td>training data</td><td>2024-01-01 00:00 to 2024-01-05 00:00</td></tr><tr><td>held-out "
    "window</td><td>2024-01-05 00:00 to 2024-01-06 00:00</td></tr><tr><td>rows: candles</td><"
    "td>7200</td></tr><tr><td>rows: trainable</td><td>7100</td></tr><tr><td>features</td><td>"
    "return_1, rsi_14</td></tr><tr><td>data fingerprint</td><td>abc123</td></tr><tr><td>train"
    "ing seconds</td><td>12.3</td></tr></table>\n<h2>Promotion</h2><p><b>promoted to champion<"
    "/b>: first &lt;champion&gt;</p><p>This model does NOT beat the constant prior on the hel"
    "d-out window beyond noise.</p>\n<h2>Held-out window</h2><table><tr><th>model</th><th>roc_"
    "auc</th><th>log_loss</th><th>brier</th><th>accuracy</th><th>balanced_accuracy</th></tr><"
    "tr><td>xgboost</td><td>0.5000</td><td>0.5100</td><td>0.5200</td><td>0.5300</td><td>0.540"
    "0</td></tr><tr><td>majority</td><td>0.6000</td><td>0.6100</td><td>0.6200</td><td>0.6300<"
    "/td><td>0.6400</td></tr><tr><td>persistence</td><td>0.7000</td><td>0.7100</td><td>0.7200"
    "</td><td>0.7300</td><td>0.7400</td></tr><tr><td>prior</td><td>0.8000</td><td>0.8100</td>"
    "<td>0.8200</td><td>0.8300</td><td>0.8400</td></tr></table>\n<h2>Walk-forward, pooled over"
    " test folds</h2><table><tr><th>model</th><th>roc_auc</th><th>log_loss</th><th>brier</th>"
    "<th>accuracy</th><th>balanced_accuracy</th></tr><tr><td>xgboost</td><td>0.2500</td><td>0"
    ".2600</td><td>0.2700</td><td>0.2800</td><td>0.2900</td></tr><tr><td>majority</td><td>0.3"
    "500</td><td>0.3600</td><td>0.3700</td><td>0.3800</td><td>0.3900</td></tr><tr><td>persist"
    "ence</td><td>0.4500</td><td>0.4600</td><td>0.4700</td><td>0.4800</td><td>0.4900</td></tr"
    "><tr><td>prior</td><td>0.5500</td><td>0.5600</td><td>0.5700</td><td>0.5800</td><td>0.590"
    "0</td></tr></table>\n<h3>Fold 1: train t0 to t1, test t2 to t3</h3><table><tr><th>model</"
    "th><th>roc_auc</th><th>log_loss</th><th>brier</th><th>accuracy</th><th>balanced_accuracy"
    "</th></tr><tr><td>xgboost</td><td>0.0000</td><td>0.0100</td><td>0.0200</td><td>0.0300</t"
    "d><td>0.0400</td></tr><tr><td>majority</td><td>0.1000</td><td>0.1100</td><td>0.1200</td>"
    "<td>0.1300</td><td>0.1400</td></tr><tr><td>persistence</td><td>0.2000</td><td>0.2100</td"
    "><td>0.2200</td><td>0.2300</td><td>0.2400</td></tr><tr><td>prior</td><td>0.3000</td><td>"
    "0.3100</td><td>0.3200</td><td>0.3300</td><td>0.3400</td></tr></table>\n<h2>Feature import"
    'ance</h2><img alt="feature importance" src="data:image/png;base64,cG5n"></body></html>'
)


def test_the_model_card_page_is_pinned():
    decision = SimpleNamespace(promote=True, challenger_beats_prior=False, reason="first <champion>")
    page = render_model_card(card_result(), decision, title="btc & co", version="7", importance_png=b"png")
    assert page == PROMOTED_PAGE


def test_a_kept_challenger_that_beats_the_prior_and_a_card_without_version_or_decision():
    decision = SimpleNamespace(promote=False, challenger_beats_prior=True, reason="r")
    page = render_model_card(card_result(), decision, importance_png=b"png")
    assert "<h1>Model card: btc_direction</h1>" in page and "<title>btc_direction</title>" in page
    assert "<p><b>kept as challenger</b>: r</p>" in page
    assert "<p>This model beats the constant prior on the held-out window beyond noise.</p>" in page
    assert "Promotion" not in render_model_card(card_result(), importance_png=b"png")


# feature_importance and its chart


def fitted(gains: dict[str, float], columns: tuple[str, ...]) -> SimpleNamespace:
    booster = SimpleNamespace(get_score=lambda importance_type: gains if importance_type == "total_gain" else {})
    return SimpleNamespace(model=SimpleNamespace(get_booster=lambda: booster), feature_columns=columns)


def test_importance_is_the_total_gain_largest_first_and_zero_for_unused_features():
    importance = model_card.feature_importance(fitted({"a": 1.0, "c": 5.0}, ("a", "b", "c")))
    assert importance.to_dict() == {"c": 5.0, "a": 1.0, "b": 0.0}
    assert list(importance.index) == ["c", "a", "b"]


def test_the_importance_chart_puts_the_largest_gain_on_top(monkeypatch):
    figures = []
    monkeypatch.setattr(model_card, "_png", lambda figure: figures.append(figure) or b"png")
    assert model_card.feature_importance_png(fitted({"a": 1.0, "c": 5.0}, ("a", "b", "c"))) == b"png"
    axes = figures[0].axes[0]
    bars = axes.patches
    assert [bar.get_width() for bar in bars] == [0.0, 1.0, 5.0]  # drawn bottom-up
    assert [label.get_text() for label in axes.get_yticklabels()] == ["b", "a", "c"]
    assert all(mcolors.same_color(bar.get_facecolor(), "#4477aa") for bar in bars)
    assert axes.get_xlabel() == "total gain" and axes.get_title() == "Feature importance (final model)"
    assert tuple(figures[0].get_size_inches()) == (7, 4.5)


def test_a_probability_on_a_bin_edge_opens_the_next_bin(drawn):
    # 21 evenly spaced probabilities: the deciles fall on every second one, which starts a bin.
    probability = np.linspace(0.30, 0.70, 21)
    model = drawn(heldout(probability, np.arange(21) % 2)).axes[0].get_lines()[1]
    expected = [probability[2 * k : 2 * k + 2].mean() for k in range(9)] + [probability[18:].mean()]
    assert list(model.get_xdata()) == pytest.approx(expected)


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_the_chart_is_a_500_pixel_square_png_whatever_matplotlibs_savefig_settings():
    with matplotlib.rc_context({"savefig.dpi": 50, "savefig.format": "svg"}):
        png = calibration_png(heldout(PROBABILITY, TARGET))
    assert png_size(png) == (500, 500)  # 5 inches at 100 dpi
