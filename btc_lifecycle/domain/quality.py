"""Data-quality checks on candle and label frames: pure functions behind the asset checks.

Each check returns a ``CheckOutcome``: whether it passed, one sentence for a human naming the
counts and the first offending open time(s), and metadata of plain JSON-able values (ints,
finite floats, strings, lists of ISO 8601 times) from which an ``AssetCheckResult`` is built.
Checks on the feature frame (``trainable`` rows, look-ahead) live in
``btc_lifecycle.modelling.quality``: the domain does not depend on the modelling layer.

A frame without a column a check reads is a caller's error (``ValueError``), not a failed check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candles import OHLCV_COLUMNS, find_gaps, interval_ms
from btc_lifecycle.domain.labels import LABEL_COLUMN, price_increase_labels

# How many offending open times the metadata lists; the counts cover all of them.
SAMPLE_SIZE = 5

# ohlc_consistent's rules: metadata key (rows breaking it) -> what it says in the description.
OHLC_RULES = {
    "price_missing_infinite_or_not_positive": "a price missing, infinite or not above 0",
    "volume_missing_infinite_or_negative": "volume missing, infinite or below 0",
    "low_above_open_or_close": "low above min(open, close)",
    "high_below_open_or_close": "high below max(open, close)",
}


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict: ``passed``, a one-sentence ``description`` and JSON-able ``metadata``."""

    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def utc_timestamp(moment: Any) -> pd.Timestamp:
    """A time as a UTC Timestamp; a naive time is taken as UTC."""
    stamp = pd.Timestamp(moment)
    if stamp is pd.NaT:
        return stamp
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def iso_time(moment: Any) -> str:
    """A time as ISO 8601 with its UTC offset, e.g. ``2024-01-01T00:00:00+00:00``."""
    stamp = utc_timestamp(moment)
    return "NaT" if stamp is pd.NaT else stamp.isoformat()


def first_iso_times(moments: Iterable[Any], limit: int = SAMPLE_SIZE) -> list[str]:
    """The first ``limit`` of ``moments`` (in the order given) as ISO strings."""
    out: list[str] = []
    for moment in moments:
        if len(out) == limit:
            break
        out.append(iso_time(moment))
    return out


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def agree(count: int, singular: str, plural_: str) -> str:
    """The verb form agreeing with ``count``: agree(1, "is", "are") == "is"."""
    return singular if count == 1 else plural_


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks the column(s) {', '.join(missing)}")


def _times(open_times: Any) -> pd.Series:
    """Open times as a UTC datetime Series with a fresh 0..n-1 index."""
    return pd.Series(pd.to_datetime(pd.Series(open_times), utc=True)).reset_index(drop=True)


def _numbers(column: pd.Series) -> np.ndarray:
    """A column as float64, anything missing or not numeric as NaN."""
    return pd.to_numeric(column, errors="coerce").astype("float64").to_numpy(dtype="float64", na_value=np.nan)


def unique_keys(open_times: Any) -> CheckOutcome:
    """No open time appears twice."""
    times = _times(open_times)
    repeats = times.duplicated(keep="first")  # the second, third, ... row of a repeated time
    repeated_times = times[repeats].drop_duplicates().sort_values()
    metadata = {
        "rows": len(times),
        "duplicate_rows": int(repeats.sum()),
        "duplicated_open_times": len(repeated_times),
        "first_duplicated_open_times": first_iso_times(repeated_times),
    }
    if not len(repeated_times):
        return CheckOutcome(True, f"All {plural(len(times), 'open time')} are unique.", metadata)
    return CheckOutcome(
        False,
        f"{plural(len(repeated_times), 'open time')} {agree(len(repeated_times), 'appears', 'appear')} more than once "
        f"({plural(metadata['duplicate_rows'], 'extra row')}); the first is {iso_time(repeated_times.iloc[0])}.",
        metadata,
    )


def ohlc_consistent(candles: pd.DataFrame) -> CheckOutcome:
    """Every candle has finite prices above 0, a finite volume of at least 0, and
    low <= min(open, close) and max(open, close) <= high."""
    require_columns(candles, ["open_time", *OHLCV_COLUMNS], "the candle frame")
    o, h, l, c, v = (_numbers(candles[name]) for name in OHLCV_COLUMNS)
    prices = np.column_stack([o, h, l, c])
    with np.errstate(invalid="ignore"):
        broken = {
            "price_missing_infinite_or_not_positive": ~(np.isfinite(prices) & (prices > 0)).all(axis=1),
            "volume_missing_infinite_or_negative": ~(np.isfinite(v) & (v >= 0)),
            # NaN compares False: a missing price is the first rule's, not these.
            "low_above_open_or_close": l > np.minimum(o, c),
            "high_below_open_or_close": h < np.maximum(o, c),
        }
    any_broken = np.logical_or.reduce(list(broken.values()))
    counts = {rule: int(rows.sum()) for rule, rows in broken.items()}
    offending = candles["open_time"].array[any_broken]
    metadata = {
        "rows": len(candles),
        "violating_rows": int(any_broken.sum()),
        **counts,
        "first_violating_open_times": first_iso_times(offending),
    }
    if not any_broken.any():
        return CheckOutcome(True, f"All {plural(len(candles), 'candle')} have consistent OHLCV values.", metadata)
    first = int(np.flatnonzero(any_broken)[0])
    first_rules = [OHLC_RULES[rule] for rule, rows in broken.items() if rows[first]]
    by_rule = "; ".join(f"{OHLC_RULES[rule]}: {count}" for rule, count in counts.items() if count)
    return CheckOutcome(
        False,
        f"{plural(metadata['violating_rows'], 'candle')} of {len(candles)} "
        f"{agree(metadata['violating_rows'], 'breaks', 'break')} OHLCV rules ({by_rule}); "
        f"the first is {iso_time(offending[0])} ({', '.join(first_rules)}).",
        metadata,
    )


def gaps_within(open_times: Any, interval: str, max_gap_minutes: int | float) -> CheckOutcome:
    """No gap between consecutive candles misses more than ``max_gap_minutes`` minutes.

    A gap's size is the minutes of the candles missing between two stored ones (for 1m candles,
    the missing candles). The caller decides the severity (a WARN: long gaps are outages).
    """
    if max_gap_minutes < 0:
        raise ValueError(f"max_gap_minutes must be >= 0, got {max_gap_minutes!r}")
    minutes_per_candle = interval_ms(interval) / 60_000
    times = _times(open_times).sort_values(kind="stable").reset_index(drop=True)
    gaps = find_gaps(times, interval)
    sizes = [gap.missing * minutes_per_candle for gap in gaps]
    too_long = [(gap, size) for gap, size in zip(gaps, sizes, strict=True) if size > max_gap_minutes]
    longest = max(range(len(gaps)), key=lambda i: sizes[i]) if gaps else None
    metadata: dict[str, Any] = {
        "rows": len(times),
        "max_gap_minutes": max_gap_minutes,
        "gaps": len(gaps),
        "missing_minutes": _whole(sum(sizes)),
        "gaps_over_threshold": len(too_long),
        "longest_gap_minutes": _whole(sizes[longest]) if longest is not None else 0,
        "longest_gap_after": iso_time(gaps[longest].after) if longest is not None else None,
        "first_gaps_over_threshold_after": first_iso_times(gap.after for gap, _ in too_long),
    }
    if not too_long:
        return CheckOutcome(
            True,
            f"No gap exceeds {_whole(max_gap_minutes)} minutes ({plural(len(gaps), 'gap')}, "
            f"longest {metadata['longest_gap_minutes']} minutes).",
            metadata,
        )
    first, first_size = too_long[0]
    where = f"{_whole(first_size)} minutes missing between {iso_time(first.after)} and {iso_time(first.before)}"
    if len(too_long) == 1:
        return CheckOutcome(False, f"1 gap exceeds {_whole(max_gap_minutes)} minutes: {where}.", metadata)
    return CheckOutcome(
        False,
        f"{plural(len(too_long), 'gap')} exceed {_whole(max_gap_minutes)} minutes, the longest "
        f"{metadata['longest_gap_minutes']} minutes after {metadata['longest_gap_after']}; the first has "
        f"{where}.",
        metadata,
    )


def fresh(last_open_time: Any, now: Any, interval: str, max_lag_minutes: int | float) -> CheckOutcome:
    """The newest candle closed no more than ``max_lag_minutes`` before ``now``.

    The lag is measured from the candle's end (open time + interval), so one threshold suits
    every interval; a newest candle still forming has a negative lag and passes.
    """
    if max_lag_minutes < 0:
        raise ValueError(f"max_lag_minutes must be >= 0, got {max_lag_minutes!r}")
    now_stamp = utc_timestamp(now)
    now_text = iso_time(now_stamp)
    if last_open_time is None or pd.isna(last_open_time):
        return CheckOutcome(
            False,
            f"There are no candles, so none is fresh as of {now_text}.",
            {"last_open_time": None, "now": now_text, "lag_minutes": None, "max_lag_minutes": max_lag_minutes},
        )
    last = utc_timestamp(last_open_time)
    closed_at = last + pd.Timedelta(milliseconds=interval_ms(interval))
    lag = (now_stamp - closed_at) / pd.Timedelta(minutes=1)
    metadata = {
        "last_open_time": iso_time(last),
        "now": now_text,
        "lag_minutes": round(float(lag), 3),
        "max_lag_minutes": max_lag_minutes,
    }
    passed = lag <= max_lag_minutes
    verdict = "within" if passed else "more than"
    return CheckOutcome(
        passed,
        f"The newest candle ({iso_time(last)}) closed {_whole(metadata['lag_minutes'])} minutes before {now_text}, "
        f"{verdict} the {_whole(max_lag_minutes)} minutes allowed.",
        metadata,
    )


def labels_match(labeled: pd.DataFrame, interval: str, context: pd.DataFrame | None = None) -> CheckOutcome:
    """The stored ``price_increase_label`` of every row of ``labeled`` equals its recomputation.

    ``context`` (optional) holds earlier candles, e.g. the previous day's tail: its rows before
    ``labeled``'s first open time are prepended for the recomputation, so the first row's label
    can be checked, but are not judged themselves. A missing label equals a missing label.
    """
    require_columns(labeled, ["open_time", "close", LABEL_COLUMN], "the labeled frame")
    rows = labeled[["open_time", "close"]].assign(_row=np.arange(len(labeled)))
    rows["open_time"] = pd.to_datetime(rows["open_time"], utc=True)
    context_rows = 0
    if context is not None and len(context) and len(labeled):
        require_columns(context, ["open_time", "close"], "the context frame")
        earlier = context[["open_time", "close"]].copy()
        earlier["open_time"] = pd.to_datetime(earlier["open_time"], utc=True)
        earlier = earlier.loc[earlier["open_time"] < rows["open_time"].min()].assign(_row=-1)
        context_rows = len(earlier)
        rows = pd.concat([earlier, rows], ignore_index=True)
    rows = rows.sort_values("open_time", kind="stable").reset_index(drop=True)
    rows["expected"] = price_increase_labels(rows, interval)
    own = rows.loc[rows["_row"] >= 0].sort_values("_row")
    expected = _numbers(own["expected"])
    stored = _numbers(labeled[LABEL_COLUMN])
    expected_na, stored_na = np.isnan(expected), np.isnan(stored)
    kinds = {
        "labels_differing": ~expected_na & ~stored_na & (expected != stored),
        "labels_missing": stored_na & ~expected_na,
        "labels_unexpected": ~stored_na & expected_na,
    }
    wrong = np.logical_or.reduce(list(kinds.values()))
    offending = labeled["open_time"].array[wrong]
    metadata = {
        "rows": len(labeled),
        "context_rows": context_rows,
        "mismatching_rows": int(wrong.sum()),
        **{kind: int(mask.sum()) for kind, mask in kinds.items()},
        "first_mismatching_open_times": first_iso_times(offending),
    }
    if not wrong.any():
        return CheckOutcome(True, f"All {plural(len(labeled), 'stored label')} equal their recomputation.", metadata)
    return CheckOutcome(
        False,
        f"{plural(metadata['mismatching_rows'], 'stored label')} of {len(labeled)} "
        f"{agree(metadata['mismatching_rows'], 'differs', 'differ')} from the recomputation "
        f"({metadata['labels_differing']} different, {metadata['labels_missing']} missing, "
        f"{metadata['labels_unexpected']} where none is due); the first is {iso_time(offending[0])}.",
        metadata,
    )


def _whole(value: int | float) -> int | float:
    """An integral float as an int (90.0 -> 90): tidier in descriptions and metadata."""
    return int(value) if float(value).is_integer() else float(value)
