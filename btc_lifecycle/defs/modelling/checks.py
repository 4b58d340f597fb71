"""Checks on the features, judged on the days the run wrote; both block the model: a NaN in a
trainable row, or a feature that reads a later candle, must not reach training."""

import dagster as dg
import pandas as pd

from btc_lifecycle.adapters.feature_store import read_features
from btc_lifecycle.config import Settings
from btc_lifecycle.defs.checks_support import check_result, judged_window
from btc_lifecycle.defs.markets import MarketAssets, main_market
from btc_lifecycle.defs.modelling.assets import feature_inputs
from btc_lifecycle.modelling.quality import default_cut_points, no_look_ahead, no_nan_in_trainable
from btc_lifecycle.resources import FeatureStoreResource

# Look-ahead is a property of the code: judged on the newest days written, not on a year.
LOOK_AHEAD_DAYS = 2


def features_checks(settings: Settings, at: MarketAssets | None = None) -> dg.AssetChecksDefinition:
    """Both checks on one market's features (the main market's unless ``at`` names another), in one
    step: both in a graph run, one when a person runs one."""
    at = at or main_market(settings)
    features, series = at.key("features"), at.market.series
    specs = [
        dg.AssetCheckSpec(
            "features_trainable_rows_complete",
            asset=features,
            blocking=True,
            description="Every trainable feature row of the days written has all its features finite.",
        ),
        dg.AssetCheckSpec(
            "features_no_look_ahead",
            asset=features,
            blocking=True,
            description="No feature of a candle changes when the candles after it are removed: features computed "
            "on a prefix ending at sampled candles equal those computed on all (the newest days written).",
        ),
    ]

    @dg.multi_asset_check(specs=specs, can_subset=True, name="_".join([*at.key_prefix, "features_checks"]))
    def checks(
        context: dg.AssetCheckExecutionContext,
        feature_store: FeatureStoreResource,
        settings: dg.ResourceParam[Settings],
    ):
        selected = {key.name for key in context.selected_asset_check_keys}
        with feature_store.get_connection() as conn:
            window = judged_window(context, conn, series)
            if "features_trainable_rows_complete" in selected:
                frame = read_features(conn, series, start=window[0])
                outcome = no_nan_in_trainable(frame.loc[frame["open_time"] < window[1]])
                yield check_result(outcome, window, check_name="features_trainable_rows_complete", asset_key=features)
            if "features_no_look_ahead" in selected:
                yield _look_ahead(conn, series, features, settings.features.max_fill_minutes, window)

    return checks


def _look_ahead(conn, series, features: dg.AssetKey, max_fill: int, window) -> dg.AssetCheckResult:
    start, end = window
    start = max(start, end - pd.Timedelta(days=LOOK_AHEAD_DAYS))
    candles = feature_inputs(conn, series, start, end, max_fill, candles_after=0)
    judged = candles.loc[candles["open_time"] >= start, "open_time"]
    if judged.empty:
        return dg.AssetCheckResult(
            check_name="features_no_look_ahead",
            asset_key=features,
            passed=True,
            description="no candles in the days written: nothing to judge",
        )
    cuts = default_cut_points(judged, series.interval)
    outcome = no_look_ahead(candles, series.interval, max_fill, cuts)
    return check_result(outcome, (start, end), check_name="features_no_look_ahead", asset_key=features)
