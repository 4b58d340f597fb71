"""Parity of the features where they are served: pure comparisons behind the Feast checks.

Training reads the features table; Feast serves the same rows offline (Parquet, point-in-time)
and online (the newest candle). Both must hand back exactly what the table holds: a value that
differs, even in the last bit, means the model scores inputs it was not trained on. Floats are
compared exactly (NaN equals NaN): nothing on the way (Parquet, Feast's protobufs) rounds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from btc_lifecycle.domain.quality import CheckOutcome, first_iso_times, iso_time, plural, require_columns
from btc_lifecycle.modelling.features import FEATURE_COLUMNS


def same_feature_values(
    expected: pd.DataFrame,
    actual: pd.DataFrame,
    columns: Sequence[str] = FEATURE_COLUMNS,
    expected_name: str = "the features table",
    actual_name: str = "the served features",
) -> CheckOutcome:
    """Every candle (``open_time``) of ``expected`` is in ``actual`` with the same value in each
    of ``columns``, and ``actual`` holds no other candle. The description names the first
    differing candle and feature with both values."""
    require_columns(expected, ["open_time", *columns], expected_name)
    require_columns(actual, ["open_time", *columns], actual_name)
    left, right = _by_time(expected), _by_time(actual)
    missing = left.index.difference(right.index)
    extra = right.index.difference(left.index)
    common = left.index.intersection(right.index)
    differing_rows = np.zeros(len(common), dtype=bool)
    by_feature: dict[str, int] = {}
    first: tuple[pd.Timestamp, str, float, float] | None = None
    for name in columns:
        a, b = _numbers(left.loc[common, name]), _numbers(right.loc[common, name])
        differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        if differs.any():
            by_feature[name] = int(differs.sum())
            at = int(np.argmax(differs))
            if first is None or common[at] < first[0]:
                first = (common[at], name, float(a[at]), float(b[at]))
        differing_rows |= differs
    metadata: dict[str, Any] = {
        "candles_compared": len(common),
        "candles_differing": int(differing_rows.sum()),
        "candles_missing": len(missing),
        "candles_extra": len(extra),
        "differences_by_feature": dict(sorted(by_feature.items())),
        "first_differing_open_times": first_iso_times(common[differing_rows]),
        "first_missing_open_times": first_iso_times(missing),
        "columns_compared": len(columns),
    }
    if not differing_rows.any() and missing.empty and extra.empty:
        return CheckOutcome(
            True,
            f"{_capital(actual_name)} equals {expected_name} at all {plural(len(common), 'candle')}, "
            f"value for value ({plural(len(columns), 'column')}).",
            metadata,
        )
    problems = []
    if first is not None:
        moment, name, a, b = first
        problems.append(
            f"differs at {plural(int(differing_rows.sum()), 'candle')} "
            f"({', '.join(f'{n} at {c}' for n, c in sorted(by_feature.items()))}); the first is candle "
            f"{iso_time(moment)}, {name} = {a!r} in {expected_name} but {b!r} in {actual_name}"
        )
        metadata["first_difference"] = f"{iso_time(moment)} {name}: {a!r} != {b!r}"
    if not missing.empty:
        problems.append(f"lacks {plural(len(missing), 'candle')} of {expected_name}, the first {iso_time(missing[0])}")
    if not extra.empty:
        problems.append(
            f"holds {plural(len(extra), 'candle')} {expected_name} does not, the first {iso_time(extra[0])}"
        )
    return CheckOutcome(False, f"{_capital(actual_name)} {'; '.join(problems)}.", metadata)


def online_matches_offline(
    online: tuple[pd.Timestamp, Mapping[str, float]] | None,
    newest_exported: pd.Timestamp | None,
    table: pd.DataFrame,
    offline: pd.DataFrame | None,
    columns: Sequence[str] = FEATURE_COLUMNS,
) -> CheckOutcome:
    """The online store's row ``(event time, values)`` is the newest exported candle, and its
    values equal the features table's row (``table``) and the offline store's (``offline``)."""
    if online is None:
        return CheckOutcome(
            False,
            "The online store holds no candle for the market: the online materialization wrote nothing.",
            {"newest_exported_open_time": iso_time(newest_exported) if newest_exported is not None else "none"},
        )
    event_time, values = online
    metadata: dict[str, Any] = {
        "online_open_time": iso_time(event_time),
        "newest_exported_open_time": iso_time(newest_exported) if newest_exported is not None else "none",
    }
    if newest_exported is None or event_time != newest_exported:
        return CheckOutcome(
            False,
            f"The online store holds candle {iso_time(event_time)}, not the newest exported candle "
            f"{metadata['newest_exported_open_time']}: the online store lags the offline one.",
            metadata,
        )
    served = pd.DataFrame({"open_time": [event_time], **{name: [values.get(name)] for name in columns}})
    table_row = table.loc[pd.to_datetime(table["open_time"], utc=True) == event_time]
    outcomes = [same_feature_values(table_row, served, columns, "the features table", "the online store")]
    if offline is not None:
        outcomes.append(same_feature_values(offline, served, columns, "the offline store", "the online store"))
    for outcome, source in zip(outcomes, ("features_table", "offline_store"), strict=False):
        metadata[f"differs_from_{source}"] = not outcome.passed
        if "first_difference" in outcome.metadata:
            metadata[f"first_difference_from_{source}"] = outcome.metadata["first_difference"]
    failed = [outcome for outcome in outcomes if not outcome.passed]
    if failed:
        return CheckOutcome(False, " ".join(outcome.description for outcome in failed), metadata)
    return CheckOutcome(
        True,
        f"The online store's candle {iso_time(event_time)} is the newest exported one, and its "
        f"{plural(len(columns), 'feature')} equal the features table's and the offline store's, value for value.",
        metadata,
    )


def _by_time(frame: pd.DataFrame) -> pd.DataFrame:
    indexed = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame["open_time"], utc=True)))
    return indexed.loc[~indexed.index.duplicated(keep="last")].sort_index()


def _numbers(column: pd.Series) -> np.ndarray:
    """A column as float64, a missing value (None, NA) as NaN."""
    return pd.to_numeric(column, errors="coerce").astype("float64").to_numpy(dtype="float64", na_value=np.nan)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
