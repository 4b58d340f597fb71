"""The HTML model card."""

from __future__ import annotations

from btc_lifecycle.modelling import (
    WalkForwardConfig,
    compute_features,
    decide_promotion,
    train_walk_forward,
)
from btc_lifecycle.modelling.model_card import feature_importance, render_model_card
from btc_lifecycle.modelling.paired_test import log_losses
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
