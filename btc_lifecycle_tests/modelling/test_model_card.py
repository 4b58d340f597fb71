"""The model card: its calibration chart, read back from the figure it draws (ten quantile bins of
the held-out probabilities against the observed share of up candles, beside the diagonal), the
feature-importance chart, and the HTML page a person reads before trusting a model."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.modelling import model_card
from btc_lifecycle.modelling.champion import decide_promotion
from btc_lifecycle.modelling.features import compute_features
from btc_lifecycle.modelling.metrics import METRIC_NAMES
from btc_lifecycle.modelling.model_card import calibration_png, feature_importance, render_model_card
from btc_lifecycle.modelling.paired_test import log_losses
from btc_lifecycle.modelling.walk_forward import MODEL_NAMES, WalkForwardConfig, train_walk_forward
from btc_lifecycle_tests.modelling.conftest import mean_reverting_candles

FAST = WalkForwardConfig(n_folds=2, n_estimators=20, n_jobs=1)


def test_the_card_shows_metrics_decision_and_escapes_text():
    result = train_walk_forward(compute_features(mean_reverting_candles(6_000), "1m"), FAST)
    heldout = result.heldout
    losses = {name: log_losses(heldout["target"], heldout[f"{name}_up_probability"]) for name in ("xgboost", "prior")}
    decision = decide_promotion(losses["xgboost"], None, losses["prior"])
    html = render_model_card(result, decision, title="<script>alert(1)</script>")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "promoted to champion" in html and "Fold 1" in html and "persistence" in html
    # Mean-reverting candles hold a signal: the card says the model beats the prior, and by how much.
    assert "This model beats the constant prior" in html and "p=" in html
    assert "data:image/png;base64," in html
    assert feature_importance(result).index[0] in {"log_return_1", "body_to_open", "rsi_14"}


# the calibration chart


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


def test_a_probability_on_a_bin_edge_opens_the_next_bin(drawn):
    # 21 evenly spaced probabilities: the deciles fall on every second one, which starts a bin.
    probability = np.linspace(0.30, 0.70, 21)
    model = drawn(heldout(probability, np.arange(21) % 2)).axes[0].get_lines()[1]
    expected = [probability[2 * k : 2 * k + 2].mean() for k in range(9)] + [probability[18:].mean()]
    assert list(model.get_xdata()) == pytest.approx(expected)


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


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_the_chart_is_a_500_pixel_square_png_whatever_matplotlibs_savefig_settings():
    with matplotlib.rc_context({"savefig.dpi": 50, "savefig.format": "svg"}):
        png = calibration_png(heldout(PROBABILITY, TARGET))
    assert png_size(png) == (500, 500)  # 5 inches at 100 dpi


# the page, for a result whose every field is known


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


METRICS_HEADER = "<tr><th>model</th>" + "".join(f"<th>{name}</th>" for name in METRIC_NAMES) + "</tr>"


def metrics_table(offset: float) -> str:
    """The table of ``card_metrics(offset)``: a row per model, each metric to four decimals."""
    rows = "".join(
        f"<tr><td>{model}</td>"
        + "".join(f"<td>{offset + i / 10 + j / 100:.4f}</td>" for j in range(len(METRIC_NAMES)))
        + "</tr>"
        for i, model in enumerate(MODEL_NAMES)
    )
    return f"<table>{METRICS_HEADER}{rows}</table>"


def test_the_model_card_shows_every_field_of_the_result_in_order():
    decision = SimpleNamespace(promote=True, challenger_beats_prior=False, reason="first <champion>")
    page = render_model_card(card_result(), decision, title="btc & co", version="7", importance_png=b"png")
    assert page.startswith('<!DOCTYPE html><html><head><meta charset="utf-8">') and page.endswith("</body></html>")
    parts = [
        "<title>btc &amp; co</title>",
        "<h1>Model card: btc &amp; co v7</h1>",
        "<p>Predicts whether the next one-minute candle closes above the current one",
        "A baseline, not a trading edge.</p>",
        "<td>training data</td><td>2024-01-01 00:00 to 2024-01-05 00:00</td>",
        "<td>held-out window</td><td>2024-01-05 00:00 to 2024-01-06 00:00</td>",
        "<td>rows: candles</td><td>7200</td>",
        "<td>rows: trainable</td><td>7100</td>",
        "<td>features</td><td>return_1, rsi_14</td>",
        "<td>data fingerprint</td><td>abc123</td>",
        "<td>training seconds</td><td>12.3</td>",
        "<h2>Promotion</h2><p><b>promoted to champion</b>: first &lt;champion&gt;</p>",
        "<p>This model does NOT beat the constant prior on the held-out window beyond noise.</p>",
        "<h2>Held-out window</h2>" + metrics_table(0.5),
        "<h2>Walk-forward, pooled over test folds</h2>" + metrics_table(0.25),
        "<h3>Fold 1: train t0 to t1, test t2 to t3</h3>" + metrics_table(0.0),
        '<h2>Feature importance</h2><img alt="feature importance" src="data:image/png;base64,cG5n">',
    ]
    positions = [page.find(part) for part in parts]
    assert -1 not in positions, [part for part, at in zip(parts, positions, strict=True) if at == -1]
    assert positions == sorted(positions)


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
