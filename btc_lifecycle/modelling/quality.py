"""Data-quality checks on the feature frame: pure functions behind the asset checks.

The candle and label checks, and ``CheckOutcome``, are in ``btc_lifecycle.domain.quality``;
these two read the feature definitions (``FEATURE_COLUMNS``, ``compute_features``), so they
live beside them in the modelling layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candles import find_gaps
from btc_lifecycle.domain.quality import (
    CheckOutcome,
    agree,
    first_iso_times,
    iso_time,
    plural,
    require_columns,
    utc_timestamp,
)
from btc_lifecycle.modelling.features import FEATURE_COLUMNS, TRAINABLE_COLUMN, compute_features

# Two feature values are equal when exactly equal (NaN and NaN, inf and inf included) or within
# this relative difference.
RELATIVE_TOLERANCE = 1e-12
DEFAULT_CUT_POINTS = 8


def no_nan_in_trainable(features: pd.DataFrame, columns: Sequence[str] = FEATURE_COLUMNS) -> CheckOutcome:
    """Every row whose ``trainable`` is true has a finite value in each of ``columns``.

    ``columns`` defaults to FEATURE_COLUMNS; a missing ``trainable`` counts as false.
    """
    require_columns(features, ["open_time", TRAINABLE_COLUMN, *columns], "the feature frame")
    trainable = pd.array(features[TRAINABLE_COLUMN], dtype="boolean").fillna(False).to_numpy(dtype=bool)
    rows = features.loc[trainable]
    not_finite = {
        name: ~np.isfinite(
            pd.to_numeric(rows[name], errors="coerce").astype("float64").to_numpy(dtype="float64", na_value=np.nan)
        )
        for name in columns
    }
    bad = np.logical_or.reduce(list(not_finite.values())) if columns else np.zeros(len(rows), dtype=bool)
    per_feature = {name: int(mask.sum()) for name, mask in not_finite.items() if mask.any()}
    offending = rows["open_time"].array[bad]
    metadata = {
        "rows": len(features),
        "trainable_rows": len(rows),
        "violating_rows": int(bad.sum()),
        "non_finite_by_feature": per_feature,
        "first_violating_open_times": first_iso_times(offending),
    }
    if not bad.any():
        return CheckOutcome(
            True, f"All {plural(len(rows), 'trainable row')} have finite values in every feature.", metadata
        )
    named = ", ".join(f"{name}: {count}" for name, count in per_feature.items())
    return CheckOutcome(
        False,
        f"{plural(metadata['violating_rows'], 'trainable row')} of {len(rows)} "
        f"{agree(metadata['violating_rows'], 'has', 'have')} a missing or infinite feature "
        f"({named}); the first is {iso_time(offending[0])}.",
        metadata,
    )


def default_cut_points(open_times: Any, interval: str, count: int = DEFAULT_CUT_POINTS) -> list[pd.Timestamp]:
    """Open times to cut a series at for ``no_look_ahead``, sorted and deterministic.

    ``count`` spread evenly over the series (the first and the last row included), plus up to
    ``count`` first candles after gaps, spread evenly over the gaps: where a window restarts.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count!r}")
    times = pd.Series(pd.to_datetime(pd.Series(open_times), utc=True)).drop_duplicates().sort_values()
    times = times.reset_index(drop=True)
    if times.empty:
        return []
    even = np.unique(np.round(np.linspace(0, len(times) - 1, min(count, len(times)))).astype(int))
    chosen = set(times.iloc[even])
    after_gaps = [gap.before for gap in find_gaps(times, interval)]
    if after_gaps:
        picks = np.unique(np.round(np.linspace(0, len(after_gaps) - 1, min(count, len(after_gaps)))).astype(int))
        chosen.update(after_gaps[i] for i in picks)
    return sorted(chosen)


def no_look_ahead(
    candles: pd.DataFrame,
    interval: str,
    max_fill_minutes: int,
    cut_points: Sequence[Any],
    compute: Callable[..., pd.DataFrame] = compute_features,
) -> CheckOutcome:
    """At each cut point t, the feature row of t computed from the candles up to and including t
    equals the row of t computed from all candles: no feature reads a later candle.

    A cut point is an open time of ``candles`` or an integer position in them (-1: the last).
    Only FEATURE_COLUMNS are compared (the target of t is t + 1's label: it may learn later).
    ``compute`` is the feature function, ``compute_features`` unless a test passes another.
    Each cut point recomputes the features of the prefix: cost grows with cut points x rows.
    """
    require_columns(candles, ["open_time"], "the candle frame")
    ordered = candles.sort_values("open_time", kind="stable").reset_index(drop=True)
    times = pd.Series(pd.to_datetime(ordered["open_time"], utc=True))
    cuts = sorted({_cut_time(point, times) for point in cut_points})
    full = _rows_by_time(compute(ordered, interval, max_fill_minutes))
    differing: dict[str, int] = {}
    failed_cuts: list[pd.Timestamp] = []
    missing_rows = 0
    for cut in cuts:
        prefix = _rows_by_time(compute(ordered.loc[times <= cut], interval, max_fill_minutes))
        if cut not in full.index or cut not in prefix.index:
            missing_rows += 1
            failed_cuts.append(cut)
            continue
        names = _differing_features(prefix.loc[cut], full.loc[cut])
        for name in names:
            differing[name] = differing.get(name, 0) + 1
        if names:
            failed_cuts.append(cut)
    metadata = {
        "cut_points": len(cuts),
        "cut_points_differing": len(failed_cuts),
        "differing_features": sorted(differing),
        "differences_by_feature": dict(sorted(differing.items())),
        "cut_points_without_row": missing_rows,
        "first_differing_open_times": first_iso_times(failed_cuts),
        "checked_open_times": first_iso_times(cuts, limit=len(cuts)),
    }
    if not failed_cuts:
        return CheckOutcome(
            True,
            f"The features at all {plural(len(cuts), 'cut point')} are the same without the later candles.",
            metadata,
        )
    which = [", ".join(metadata["differing_features"])] if differing else []
    which += [f"{missing_rows} without a feature row in one of the two"] if missing_rows else []
    return CheckOutcome(
        False,
        f"The features at {len(failed_cuts)} of {plural(len(cuts), 'cut point')} "
        f"change when later candles are added ({'; '.join(which)}); the first is {iso_time(failed_cuts[0])}.",
        metadata,
    )


def _cut_time(point: Any, times: pd.Series) -> pd.Timestamp:
    """A cut point as one of ``times``: an integer is a position, anything else an open time."""
    if isinstance(point, (int, np.integer)) and not isinstance(point, bool):
        if not -len(times) <= point < len(times):
            raise ValueError(f"cut point {point} is outside the {len(times)} candles")
        return times.iloc[int(point)]
    moment = utc_timestamp(point)
    if not (times == moment).any():
        raise ValueError(f"cut point {iso_time(moment)} is not the open time of a candle")
    return moment


def _rows_by_time(features: pd.DataFrame) -> pd.DataFrame:
    """The feature columns indexed by UTC open time (the first row of a repeated time)."""
    indexed = features.set_index(pd.to_datetime(features["open_time"], utc=True))
    return indexed.loc[~indexed.index.duplicated(keep="first"), list(FEATURE_COLUMNS)]


def _differing_features(left: pd.Series, right: pd.Series) -> list[str]:
    """The FEATURE_COLUMNS whose values differ: NaN equals NaN, otherwise within the tolerance."""
    a = left.to_numpy(dtype="float64", na_value=np.nan)
    b = right.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        same = (a == b) | (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=RELATIVE_TOLERANCE, atol=0.0)
    return [name for name, equal in zip(FEATURE_COLUMNS, same, strict=True) if not equal]
