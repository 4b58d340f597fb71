"""Candle files on disk: a generic CSV with a header, or a Binance Vision dump (csv, zip or gz).

``read_candle_file`` returns a validated, sorted candle frame (see ``candles.py``). Parsing is
vectorised; only after a vectorised check fails does the reader look for the offending line, so
that every error names the file and the line (1-based, counting a header) or the field.
"""

from __future__ import annotations

import csv
import gzip
import io
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from btc_lifecycle.domain.candles import (
    EXTRA_COLUMNS,
    OHLCV_COLUMNS,
    CandleDataError,
    complete_candle_frame,
    interval_ms,
    sort_and_deduplicate,
    validate_candles,
)

TIME_COLUMNS = ("open_time", "timestamp", "datetime")
VISION_COLUMNS = ("open_time", *OHLCV_COLUMNS, "close_time", *EXTRA_COLUMNS, "ignore")
# Epoch milliseconds stay below 1e14 until the year 5138; microseconds (Vision spot files from
# 2025 on) are above it. Below 1e11 ms (1973) the numbers are almost surely epoch seconds.
MICROSECONDS_FROM = 10**14
MILLISECONDS_FROM = 10**11
LATEST_EPOCH_MS = pd.Timestamp.max.value // 1_000_000  # 2262-04-11: pandas' nanosecond limit
_OFFSET_AT_END = r"(?:[Zz]|[+-]\d\d(?::?\d\d)?)$"


class CandleFileError(CandleDataError):
    """A candle file that cannot be read; the message names the file and the line or field."""


def read_candle_file(path: str | Path, interval: str = "1m") -> pd.DataFrame:
    """Read a generic CSV or a Binance Vision dump into a validated candle frame sorted by time.

    Exact repeated candles are dropped; their count is in ``frame.attrs["duplicates_dropped"]``.
    """
    source, text = _candle_text(Path(path))
    return read_candle_text(source, text, interval)


def read_candle_text(
    source: str,
    text: str,
    interval: str = "1m",
    period: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    vision: bool = False,
) -> pd.DataFrame:
    """``read_candle_file`` on text already read from ``source`` (named in every error).

    ``period`` is the [start, end) a Vision archive's name promises: every open time must lie
    in it and on the interval's grid. ``vision`` refuses anything but a Vision dump.
    """
    step_ms = interval_ms(interval)
    if not text.strip():
        raise CandleFileError(f"{source}: empty file")
    first_line = text.split("\n", 1)[0]
    if vision or _is_number(first_line.split(",", 1)[0]):
        frame, header_lines = _parse_vision(source, text, step_ms, period), 0
    else:
        frame, header_lines = _parse_generic(source, text), 1
    if frame.empty:
        raise CandleFileError(f"{source}: no candles after the header")
    frame = complete_candle_frame(frame, interval)
    _check_candles(source, frame, header_lines)
    candles, dropped = _sorted_without_repeats(source, frame, header_lines)
    _check_spacing(source, candles, step_ms)
    candles.attrs["duplicates_dropped"] = dropped
    return candles


def _candle_text(path: Path) -> tuple[str, str]:
    """The file's name for messages and its decoded text; a zip must hold exactly one csv."""
    if path.suffix.lower() == ".gz":
        try:
            return str(path), _decode(str(path), gzip.decompress(path.read_bytes()))
        except (gzip.BadGzipFile, zlib.error, EOFError) as error:
            raise CandleFileError(f"{path}: truncated or corrupt gzip ({error})") from None
    if path.suffix.lower() != ".zip":
        return str(path), _decode(str(path), path.read_bytes())
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if not name.endswith("/")]
            if len(members) != 1:
                raise CandleFileError(
                    f"{path}: a candle zip must hold exactly one csv, found {len(members)}: "
                    f"{', '.join(members[:5]) or 'nothing'}"
                )
            source = f"{path} ({members[0]})"
            return source, _decode(source, archive.read(members[0]))
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        raise CandleFileError(f"{path}: truncated or corrupt zip ({error})") from None


def _decode(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CandleFileError(f"{source}, line {line}: not UTF-8 text") from None


def _is_number(text: str) -> bool:
    try:
        float(text.strip().strip('"'))
    except ValueError:
        return False
    return True


def _field_count(line: str) -> int:
    """The fields of one csv line as pandas reads them: a quoted comma is inside a field."""
    return len(next(csv.reader([line])))


def _read_table(source: str, text: str, **options) -> pd.DataFrame:
    # Blank lines are kept as empty rows so that row index + offset is the line in the file.
    # index_col=False: a first row longer than the header is an error, not an index column.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(io.StringIO(text), skip_blank_lines=False, index_col=False, **options)
    except pd.errors.ParserWarning:
        lines = text.split("\n")
        width = _field_count(lines[0])
        line = next((n for n, row in enumerate(lines, 1) if row.strip() and _field_count(row) != width), 1)
        raise CandleFileError(
            f"{source}, line {line}: {_field_count(lines[line - 1])} fields, but the first line has {width}"
        ) from None
    except (pd.errors.ParserError, ValueError) as error:
        raise CandleFileError(f"{source}: malformed csv: {str(error).strip()}") from None
    filled = table.notna().any(axis=1).to_numpy()
    last = len(filled) - int(np.argmax(filled[::-1])) if filled.any() else 0
    return table.iloc[:last]  # trailing blank lines are harmless; inner ones are reported later


def _parse_generic(source: str, text: str) -> pd.DataFrame:
    table = _read_table(source, text, dtype=str)
    table.columns = [str(name).strip().lower() for name in table.columns]
    repeated = sorted({name for name in table.columns if list(table.columns).count(name) > 1})
    if repeated:
        raise CandleFileError(f"{source}, line 1: column(s) {', '.join(repeated)} appear twice")
    time_column = next((name for name in TIME_COLUMNS if name in table.columns), None)
    missing = [name for name in OHLCV_COLUMNS if name not in table.columns]
    if time_column is None or missing:
        wanted = ["a time column (open_time, timestamp or datetime)"] if time_column is None else []
        raise CandleFileError(
            f"{source}, line 1: header lacks {', '.join(wanted + missing)}; found {', '.join(table.columns)}"
        )
    extras = [name for name in EXTRA_COLUMNS if name in table.columns]
    frame = _numeric_columns(source, table, [*OHLCV_COLUMNS, *extras], header_lines=1)
    frame.insert(0, "open_time", _parse_times(source, table[time_column], time_column, 1))
    return frame


def _parse_vision(
    source: str, text: str, step_ms: int, period: tuple[pd.Timestamp, pd.Timestamp] | None = None
) -> pd.DataFrame:
    frame = _vision_numbers(source, text)
    open_ms = _epoch_ms(source, frame.pop("open_time"), "open_time", header_lines=0)
    close_ms = _epoch_ms(source, frame.pop("close_time"), "close_time", header_lines=0)
    # The close time tells the file's interval; reading 5m candles as 1m must fail loudly.
    wrong = close_ms - open_ms != step_ms - 1
    if wrong.any():
        row = int(np.argmax(wrong.to_numpy()))
        span = (close_ms.iloc[row] - open_ms.iloc[row] + 1) / 1000
        raise CandleFileError(
            f"{source}, line {row + 1}: close_time - open_time spans {span:g} s, "
            f"not the expected interval of {step_ms / 1000:g} s"
        )
    if period is not None:
        _check_period(source, open_ms, step_ms, period)
    frame.insert(0, "open_time", pd.to_datetime(open_ms, unit="ms", utc=True))
    return frame


def _vision_numbers(source: str, text: str) -> pd.DataFrame:
    """The 11 numeric columns of a Vision dump as float64 (epoch µs stay exact below 2^53).

    One C-parser pass reads a clean file; any doubt (a wrong width, a blank or non-numeric cell)
    sends it to the field-by-field reader, which names the line."""
    try:
        table = pd.read_csv(io.StringIO(text), header=None, dtype="float64", skip_blank_lines=False)
        if table.shape[1] == len(VISION_COLUMNS) and not table.iloc[:, :6].isna().any().any():
            table.columns = list(VISION_COLUMNS)
            numbers = table[list(VISION_COLUMNS[:-1])]
            if not numbers[["close_time"]].isna().any().any():
                return numbers
    except (ValueError, pd.errors.ParserError, pd.errors.ParserWarning):
        pass
    table = _read_table(source, text, header=None, dtype=str)
    if table.shape[1] != len(VISION_COLUMNS):
        raise CandleFileError(
            f"{source}, line 1: a file without header must be a Binance Vision dump with "
            f"{len(VISION_COLUMNS)} columns, found {table.shape[1]}"
        )
    table.columns = list(VISION_COLUMNS)
    return _numeric_columns(source, table, VISION_COLUMNS[:-1], header_lines=0)


def _check_period(source: str, open_ms: pd.Series, step_ms: int, period: tuple[pd.Timestamp, pd.Timestamp]) -> None:
    """Every open time inside the archive's [start, end) and on the interval's grid."""
    start, end = (int(moment.timestamp() * 1000) for moment in period)
    values = open_ms.to_numpy()
    for mask, problem in (
        (
            (values < start) | (values >= end),
            f"lies outside the file's period {period[0].date()} .. {(period[1] - pd.Timedelta(days=1)).date()}",
        ),
        ((values - start) % step_ms != 0, f"is not on the {step_ms / 1000:g} s grid of the interval"),
    ):
        if mask.any():
            row = int(np.argmax(mask))
            moment = pd.Timestamp(int(values[row]), unit="ms", tz="UTC").isoformat()
            raise CandleFileError(f"{source}, line {row + 1}, field open_time: {moment} {problem}")


def _numeric_columns(
    source: str, table: pd.DataFrame, names: list[str] | tuple[str, ...], header_lines: int
) -> pd.DataFrame:
    """The named columns as float64; the first missing or non-numeric cell is an error."""
    columns = {}
    for name in names:
        raw = table[name].str.strip()
        numbers = pd.to_numeric(raw, errors="coerce")
        # Only the Binance extras may be blank; a blank price or time is an error.
        required = name not in EXTRA_COLUMNS
        bad = numbers.isna() & (raw.notna() | required)
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            value = raw.iloc[row]
            problem = "missing value" if pd.isna(value) or value == "" else f"non-numeric {value!r}"
            raise CandleFileError(f"{source}, line {row + 1 + header_lines}, field {name}: {problem}")
        columns[name] = numbers.astype("float64")
    return pd.DataFrame(columns, index=table.index)


def _epoch_ms(source: str, numbers: pd.Series, field: str, header_lines: int) -> pd.Series:
    """Integer epoch milliseconds from a column in one unit: milliseconds, or microseconds (Vision
    spot files from 2025 on). The first value's size says the file's unit; every other value
    must be in the same one."""
    values = numbers.to_numpy()
    micros = bool(len(values)) and values[0] >= MICROSECONDS_FROM
    unit = "microseconds" if micros else "milliseconds"
    problems = [
        (values != np.floor(values), "epoch time is not a whole number"),
        (values < MILLISECONDS_FROM, "epoch time too small for milliseconds (seconds?)"),
        (
            (values >= MICROSECONDS_FROM) != micros,
            f"epoch time in another unit than the file's first line ({unit})",
        ),
        ((values / 1000 if micros else values) > LATEST_EPOCH_MS, "epoch time beyond the year 2262"),
    ]
    for mask, problem in problems:
        if mask.any():
            row = int(np.argmax(mask))
            raise CandleFileError(
                f"{source}, line {row + 1 + header_lines}, field {field}: {problem}: {values[row]:.0f}"
            )
    whole = values.astype("int64")
    return pd.Series(whole // 1000 if micros else whole, index=numbers.index)


def _parse_times(source: str, raw: pd.Series, field: str, header_lines: int) -> pd.Series:
    """UTC times from ISO 8601 strings (offset or not; naive means UTC) or epoch ms integers."""
    raw = raw.str.strip()
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().all():
        return pd.to_datetime(_epoch_ms(source, numbers, field, header_lines), unit="ms", utc=True)
    try:
        times = _iso_times(raw)
        if times.notna().all():
            return times
    except (ValueError, TypeError, OverflowError):
        pass
    for row, value in enumerate(raw):  # the slow path only runs to find the bad line
        try:
            if pd.isna(value) or pd.isna(pd.to_datetime(value, utc=True, format="ISO8601")):
                raise ValueError
        except (ValueError, TypeError, OverflowError):
            shown = "missing value" if pd.isna(value) or value == "" else f"unparseable {value!r}"
            raise CandleFileError(
                f"{source}, line {row + 1 + header_lines}, field {field}: {shown} "
                "(expected ISO 8601 or epoch milliseconds)"
            ) from None
    raise CandleFileError(f"{source}, field {field}: times cannot be parsed")


def _iso_times(raw: pd.Series) -> pd.Series:
    # pandas reads a naive time in the offset of the aware ones around it, so the two kinds
    # are parsed apart: naive means UTC.
    has_offset = raw.str.contains(":", regex=False) & raw.str.contains(_OFFSET_AT_END)
    if has_offset.all() or not has_offset.any():
        return pd.to_datetime(raw, utc=True, format="ISO8601")
    aware = pd.to_datetime(raw[has_offset], utc=True, format="ISO8601")
    naive = pd.to_datetime(raw[~has_offset], format="ISO8601").dt.tz_localize("UTC")
    return pd.concat([aware, naive]).sort_index()


def _check_candles(source: str, frame: pd.DataFrame, header_lines: int) -> None:
    """``validate_candles``, plus the line of the first offending candle in file order."""
    try:
        validate_candles(frame, source)
    except CandleDataError as error:
        # A prefix of the file fails once it holds the first bad row: bisect for it.
        good, bad = 0, len(frame)
        while bad - good > 1:
            middle = (good + bad) // 2
            try:
                validate_candles(frame.iloc[:middle], source)
                good = middle
            except CandleDataError:
                bad = middle
        problem = str(error).removeprefix(f"{source}: ")
        raise CandleFileError(f"{source}, line {bad + header_lines}: {problem}") from None


def _sorted_without_repeats(source: str, frame: pd.DataFrame, header_lines: int) -> tuple[pd.DataFrame, int]:
    try:
        return sort_and_deduplicate(frame, source)
    except CandleDataError as error:
        values = frame[["open_time", *OHLCV_COLUMNS]].drop_duplicates()
        clash = values.loc[values["open_time"].duplicated(keep=False), "open_time"].iloc[0]
        rows = np.flatnonzero((frame["open_time"] == clash).to_numpy())
        lines = ", ".join(str(row + 1 + header_lines) for row in rows)
        problem = str(error).removeprefix(f"{source}: ")
        raise CandleFileError(f"{source}, lines {lines}: {problem}") from None


def _check_spacing(source: str, candles: pd.DataFrame, step_ms: int) -> None:
    # Candles closer than the interval mean the file holds a finer interval than asked for.
    gaps = candles["open_time"].diff().dropna()
    close = gaps < pd.Timedelta(milliseconds=step_ms)
    if close.any():
        row = close.idxmax()
        raise CandleFileError(
            f"{source}: candles at {candles['open_time'][row - 1].isoformat()} and "
            f"{candles['open_time'][row].isoformat()} are closer than the interval "
            f"of {step_ms / 1000:g} s"
        )
