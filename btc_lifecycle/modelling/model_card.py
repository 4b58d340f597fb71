"""The model card: two charts and a short HTML page a person reads before trusting a model."""

from __future__ import annotations

import base64
import io
from html import escape

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from btc_lifecycle.modelling.champion import PromotionDecision  # noqa: E402
from btc_lifecycle.modelling.metrics import METRIC_NAMES  # noqa: E402
from btc_lifecycle.modelling.walk_forward import MODEL_NAMES, WalkForwardResult  # noqa: E402

CALIBRATION_BINS = 10


def feature_importance(result: WalkForwardResult) -> pd.Series:
    """Total gain of each feature in the final model, largest first (0 for unused features)."""
    gain = result.model.get_booster().get_score(importance_type="total_gain")
    return pd.Series({name: float(gain.get(name, 0.0)) for name in result.feature_columns}).sort_values(ascending=False)


def feature_importance_png(result: WalkForwardResult) -> bytes:
    importance = feature_importance(result).iloc[::-1]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.barh(importance.index, importance.to_numpy(), color="#4477aa")
    axes.set_xlabel("total gain")
    axes.set_title("Feature importance (final model)")
    return _png(figure)


def calibration_png(result: WalkForwardResult) -> bytes:
    """Reliability of the held-out up-probabilities: predicted vs observed share of up candles."""
    heldout = result.heldout
    probability = heldout["xgboost_up_probability"].to_numpy()
    target = heldout["target"].to_numpy(dtype="float64")
    # Quantile bins: the model's probabilities sit in a narrow band around 0.5.
    edges = np.unique(np.quantile(probability, np.linspace(0, 1, CALIBRATION_BINS + 1)))
    bins = np.clip(np.searchsorted(edges, probability, side="right") - 1, 0, len(edges) - 2)
    table = pd.DataFrame({"bin": bins, "p": probability, "y": target}).groupby("bin").mean()
    figure, axes = plt.subplots(figsize=(5, 5))
    low, high = float(probability.min()), float(probability.max())
    axes.plot([low, high], [low, high], linestyle="--", color="grey", label="perfect")
    axes.plot(table["p"], table["y"], marker="o", color="#cc6677", label="xgboost")
    axes.set_xlabel("predicted probability of an up candle")
    axes.set_ylabel("observed share of up candles")
    axes.set_title("Calibration on the held-out window")
    axes.legend()
    return _png(figure)


def render_model_card(
    result: WalkForwardResult,
    decision: PromotionDecision | None = None,
    title: str = "btc_direction",
    version: str | None = None,
    importance_png: bytes | None = None,
) -> str:
    """A self-contained HTML page: data, metrics against baselines per fold, chart, decision."""
    rows = [
        ("training data", f"{result.training_range[0]} to {result.training_range[1]}"),
        ("held-out window", f"{result.heldout_range[0]} to {result.heldout_range[1]}"),
        *[(f"rows: {name}", str(count)) for name, count in result.row_counts.items()],
        ("features", ", ".join(result.feature_columns)),
        ("data fingerprint", result.fingerprint),
        ("training seconds", f"{result.training_seconds:.1f}"),
    ]
    sections = [
        f"<h1>Model card: {escape(title)}{' v' + escape(version) if version else ''}</h1>",
        "<p>Predicts whether the next one-minute candle closes above the current one, from what "
        "is known at the close of the current candle. A baseline, not a trading edge.</p>",
        _table(("", ""), rows),
    ]
    if decision is not None:
        verdict = "promoted to champion" if decision.promote else "kept as challenger"
        prior = (
            "beats the constant prior on the held-out window beyond noise"
            if decision.challenger_beats_prior
            else "does NOT beat the constant prior on the held-out window beyond noise"
        )
        sections.append(
            f"<h2>Promotion</h2><p><b>{escape(verdict)}</b>: {escape(decision.reason)}</p>"
            f"<p>This model {escape(prior)}.</p>"
        )
    sections.append("<h2>Held-out window</h2>" + _metrics_table(result.heldout_metrics))
    sections.append("<h2>Walk-forward, pooled over test folds</h2>" + _metrics_table(result.overall))
    for fold in result.folds:
        sections.append(
            f"<h3>Fold {fold.index}: train {escape(str(fold.train_start))} to "
            f"{escape(str(fold.train_end))}, test {escape(str(fold.test_start))} to "
            f"{escape(str(fold.test_end))}</h3>" + _metrics_table(fold.metrics)
        )
    image = base64.b64encode(importance_png or feature_importance_png(result)).decode("ascii")
    sections.append(f'<h2>Feature importance</h2><img alt="feature importance" src="data:image/png;base64,{image}">')
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>table{{border-collapse:collapse}}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head>"
        f"<body>{body}</body></html>"
    )


def _metrics_table(metrics: dict) -> str:
    rows = [(name, *[f"{getattr(metrics[name], metric):.4f}" for metric in METRIC_NAMES]) for name in MODEL_NAMES]
    return _table(("model", *METRIC_NAMES), rows)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
