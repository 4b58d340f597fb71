"""How a Binance Vision dump is refused, to the line and field, and how epoch numbers are told
apart at their boundaries: what `make mutate` found test_candle_files.py leaving loose (the error
paths of headerless files; docs/mutation.md)."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from btc_lifecycle.domain.candle_files import (
    LATEST_EPOCH_MS,
    MICROSECONDS_FROM,
    MILLISECONDS_FROM,
    CandleFileError,
    _epoch_ms,
    read_candle_file,
)

START_MS = 1_677_628_800_000  # 2023-03-01T00:00:00Z


def vision_line(minute: int, open_ms: int | None = None, close_ms: int | None = None, high: str = "23005") -> str:
    open_ms = START_MS + minute * 60_000 if open_ms is None else open_ms
    close_ms = open_ms + 59_999 if close_ms is None else close_ms
    return f"{open_ms},23000,{high},22995,23001,1.5,{close_ms},34501.5,42,0.75,17250.75,0"


def vision_file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "BTCUSDT-1m-2023-03.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def refusal(path: Path, interval: str = "1m") -> str:
    with pytest.raises(CandleFileError) as error:
        read_candle_file(path, interval)
    return str(error.value)


def test_a_non_numeric_field_is_named_with_its_line(tmp_path):
    path = vision_file(tmp_path, [vision_line(0), vision_line(1, high="x")])
    assert refusal(path) == f"{path}, line 2, field high: non-numeric 'x'"


def test_open_times_in_seconds_are_refused_at_their_line(tmp_path):
    path = vision_file(tmp_path, [vision_line(0), vision_line(1), vision_line(2, open_ms=1_677_628_920)])
    assert refusal(path) == (
        f"{path}, line 3, field open_time: epoch time too small for milliseconds (seconds?): 1677628920"
    )


def test_a_close_time_that_is_not_whole_is_refused_at_its_line(tmp_path):
    lines = [vision_line(0), vision_line(1).replace(f",{START_MS + 60_000 + 59_999},", f",{START_MS + 119_999}.25,")]
    path = vision_file(tmp_path, lines)
    assert refusal(path) == f"{path}, line 2, field close_time: epoch time is not a whole number: {START_MS + 119_999}"


def test_a_close_time_beyond_2262_is_refused(tmp_path):
    path = vision_file(tmp_path, [vision_line(0), vision_line(1, close_ms=9_999_999_999_999)])
    assert refusal(path) == f"{path}, line 2, field close_time: epoch time beyond the year 2262: 9999999999999"


def test_another_interval_is_refused_at_the_first_wrong_line_with_both_spans(tmp_path):
    lines = [vision_line(0), vision_line(1), vision_line(2, close_ms=START_MS + 120_000 + 299_999)]
    path = vision_file(tmp_path, lines)
    assert refusal(path) == (f"{path}, line 3: close_time - open_time spans 300 s, not the expected interval of 60 s")


def test_a_ragged_vision_file_is_refused_as_malformed(tmp_path):
    path = vision_file(tmp_path, [vision_line(0), vision_line(1) + ",7"])
    assert refusal(path).startswith(f"{path}: malformed csv")


def test_microseconds_with_a_sub_millisecond_part_are_floored_to_the_millisecond(tmp_path):
    lines = [
        vision_line(0, open_ms=START_MS * 1000 + 123, close_ms=(START_MS + 59_999) * 1000 + 999),
        vision_line(1, open_ms=(START_MS + 60_000) * 1000, close_ms=(START_MS + 119_999) * 1000),
    ]
    candles = read_candle_file(vision_file(tmp_path, lines))
    assert candles["open_time"].tolist() == [
        pd.Timestamp(START_MS, unit="ms", tz="UTC"),
        pd.Timestamp(START_MS + 60_000, unit="ms", tz="UTC"),
    ]


@pytest.mark.parametrize(
    ("number", "milliseconds"),
    [
        (MILLISECONDS_FROM, MILLISECONDS_FROM),  # the smallest millisecond time
        (MICROSECONDS_FROM, MICROSECONDS_FROM // 1000),  # the smallest microsecond time
        (LATEST_EPOCH_MS, LATEST_EPOCH_MS),  # pandas' last millisecond
    ],
)
def test_epoch_numbers_at_the_boundaries(number, milliseconds):
    assert _epoch_ms("f", pd.Series([float(number)]), "open_time", 0).tolist() == [milliseconds]


def generic_file(tmp_path: Path, times: list[str]) -> Path:
    path = tmp_path / "candles.csv"
    rows = [f"{time},23000,23005,22995,23001,1.5" for time in times]
    path.write_text("\n".join(["open_time,open,high,low,close,volume", *rows]) + "\n")
    return path


def test_candles_closer_than_the_interval_are_refused_naming_both(tmp_path):
    path = generic_file(tmp_path, ["2023-03-01T00:00:00Z", "2023-03-01T00:05:00Z", "2023-03-01T00:06:00Z"])
    assert refusal(path, "5m") == (
        f"{path}: candles at 2023-03-01T00:05:00+00:00 and 2023-03-01T00:06:00+00:00 are closer than the "
        "interval of 300 s"
    )


def test_times_with_different_offsets_are_read_as_utc(tmp_path):
    path = generic_file(tmp_path, ["2023-03-01T01:00:00+01:00", "2023-03-01T00:01:00+00:00", "2023-03-01T00:02:00"])
    candles = read_candle_file(path)
    assert [time.isoformat() for time in candles["open_time"]] == [
        "2023-03-01T00:00:00+00:00",
        "2023-03-01T00:01:00+00:00",
        "2023-03-01T00:02:00+00:00",
    ]
    assert str(candles["open_time"].dt.tz) == "UTC"


def test_times_all_in_another_offset_are_read_as_utc(tmp_path):
    path = generic_file(tmp_path, ["2023-03-01T01:00:00+01:00", "2023-03-01T01:01:00+01:00"])
    candles = read_candle_file(path)
    assert candles["open_time"].iloc[0].isoformat() == "2023-03-01T00:00:00+00:00"
    assert str(candles["open_time"].dt.tz) == "UTC"


def test_a_missing_time_is_named_with_its_line_and_the_formats_expected(tmp_path):
    path = generic_file(tmp_path, ["2023-03-01T00:00:00Z", "2023-03-01T00:01:00Z", ""])
    assert refusal(path) == (
        f"{path}, line 4, field open_time: missing value (expected ISO 8601 or epoch milliseconds)"
    )


def test_an_unparseable_time_is_quoted_with_its_line(tmp_path):
    path = generic_file(tmp_path, ["2023-03-01T00:00:00Z", "yesterday"])
    assert refusal(path) == (
        f"{path}, line 3, field open_time: unparseable 'yesterday' (expected ISO 8601 or epoch milliseconds)"
    )


def test_epoch_millisecond_times_of_a_generic_file_are_utc(tmp_path):
    candles = read_candle_file(generic_file(tmp_path, [str(START_MS), str(START_MS + 60_000)]))
    assert str(candles["open_time"].dt.tz) == "UTC"
    assert candles["open_time"].iloc[0] == pd.Timestamp("2023-03-01", tz="UTC")


def test_every_binance_extra_of_a_vision_file_is_read(tmp_path):
    candles = read_candle_file(vision_file(tmp_path, [vision_line(0), vision_line(1)]))
    first = candles.iloc[0]
    assert (first["quote_volume"], first["trades"]) == (34501.5, 42)
    assert (first["taker_buy_base_volume"], first["taker_buy_quote_volume"]) == (0.75, 17250.75)


def test_microseconds_just_beyond_2262_are_refused():
    with pytest.raises(CandleFileError, match="epoch time beyond the year 2262"):
        _epoch_ms("f", pd.Series([float((LATEST_EPOCH_MS + 1) * 1000)]), "open_time", 0)


# how a file is opened and decoded

GENERIC_HEADER = "open_time,open,high,low,close,volume"


def generic_row(minute: int, open_: str = "10") -> str:
    return f"2023-03-01T00:{minute:02d}:00Z,{open_},12,9,11,5"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def zip_file(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_an_empty_gzip_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "candles.csv.gz"
    path.write_bytes(gzip.compress(b"  \n"))
    assert refusal(path) == f"{path}: empty file"


def test_text_that_is_not_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "candles.csv"
    path.write_bytes(f"{GENERIC_HEADER}\n{generic_row(0)}\n\xff\xfe,3\n".encode("latin-1"))
    assert refusal(path) == f"{path}, line 3: not UTF-8 text"


def test_gzipped_text_that_is_not_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "candles.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n\xff\n"))
    assert refusal(path) == f"{path}, line 2: not UTF-8 text"


def test_a_zip_with_two_csvs_is_refused_naming_them(tmp_path):
    path = zip_file(tmp_path / "candles.zip", {"a.csv": b"x", "b.csv": b"y"})
    assert refusal(path) == f"{path}: a candle zip must hold exactly one csv, found 2: a.csv, b.csv"


def test_a_zip_with_many_csvs_names_only_the_first_five(tmp_path):
    path = zip_file(tmp_path / "candles.zip", {f"m{i}.csv": b"x" for i in range(7)})
    assert refusal(path) == (
        f"{path}: a candle zip must hold exactly one csv, found 7: m0.csv, m1.csv, m2.csv, m3.csv, m4.csv"
    )


def test_an_empty_zip_is_refused_as_holding_nothing(tmp_path):
    path = zip_file(tmp_path / "candles.zip", {})
    assert refusal(path) == f"{path}: a candle zip must hold exactly one csv, found 0: nothing"


def test_folders_inside_a_zip_are_not_counted_as_files(tmp_path):
    text = f"{GENERIC_HEADER}\n{generic_row(0)}\n".encode()
    path = zip_file(tmp_path / "candles.zip", {"sub/": b"", "sub/x.csv": text})
    assert len(read_candle_file(path)) == 1


def test_errors_inside_a_zip_name_the_zip_and_its_member(tmp_path):
    empty = zip_file(tmp_path / "empty.zip", {"x.csv": b" \n"})
    assert refusal(empty) == f"{empty} (x.csv): empty file"
    not_text = zip_file(tmp_path / "binary.zip", {"x.csv": b"a\n\xff"})
    assert refusal(not_text) == f"{not_text} (x.csv), line 2: not UTF-8 text"


# how the kind of file is told from its first line


def test_a_headerless_file_of_one_number_column_is_taken_for_a_vision_dump(tmp_path):
    path = write(tmp_path / "single.csv", f"{START_MS}\n{START_MS + 60_000}\n")
    assert refusal(path) == (
        f"{path}, line 1: a file without header must be a Binance Vision dump with 12 columns, found 1"
    )


def test_a_file_opening_with_a_blank_line_is_read_as_having_an_empty_header(tmp_path):
    path = write(tmp_path / "blank.csv", f"\n{vision_line(0)}\n")
    assert refusal(path) == (
        f"{path}, line 1: header lacks a time column (open_time, timestamp or datetime), open, high, low, "
        "close, volume; found "
    )


def test_a_vision_dump_with_quoted_numbers_is_still_a_vision_dump(tmp_path):
    fields = vision_line(0).split(",")
    path = write(tmp_path / "quoted.csv", ",".join(f'"{field}"' for field in fields) + "\n")
    frame = read_candle_file(path)
    assert frame["trades"].tolist() == [42.0]


def test_a_bad_candle_of_a_vision_dump_is_named_with_its_own_line(tmp_path):
    path = vision_file(tmp_path, [vision_line(0), vision_line(1, high="22990")])
    assert refusal(path) == (
        f"{path}, line 2: high below low at candle 2023-03-01T00:01:00+00:00 (1 candle(s) affected)"
    )


def test_a_bad_first_candle_is_named_at_the_line_after_the_header(tmp_path):
    path = write(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0, "13"), generic_row(1)]) + "\n")
    assert refusal(path) == (
        f"{path}, line 2: open or close outside the high-low range at candle 2023-03-01T00:00:00+00:00 "
        "(1 candle(s) affected)"
    )


# the csv table


def test_a_first_row_longer_than_the_header_is_refused_with_both_widths(tmp_path):
    path = write(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0) + ",7", generic_row(1)]) + "\n")
    assert refusal(path) == f"{path}, line 2: 7 fields, but the first line has 6"


def test_a_quoted_comma_is_inside_a_field_when_the_widths_are_counted(tmp_path):
    header = GENERIC_HEADER + ',"note, free text"'
    rows = [generic_row(0) + ',"a, b",7', generic_row(1) + ',"c, d"']
    path = write(tmp_path / "c.csv", "\n".join([header, *rows]) + "\n")
    assert refusal(path) == f"{path}, line 2: 8 fields, but the first line has 7"


def test_a_malformed_csv_quotes_the_parser(tmp_path):
    path = write(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0), '"' + generic_row(1)]) + "\n")
    assert (
        refusal(path) == f"{path}: malformed csv: Error tokenizing data. C error: EOF inside string starting at row 2"
    )


def test_trailing_blank_lines_are_ignored(tmp_path):
    path = write(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0), generic_row(1)]) + "\n\n\n\n")
    assert len(read_candle_file(path)) == 2


def test_a_header_followed_only_by_blank_lines_has_no_candles(tmp_path):
    path = write(tmp_path / "c.csv", GENERIC_HEADER + "\n\n\n")
    assert refusal(path) == f"{path}: no candles after the header"


# the generic header


def test_a_column_repeated_in_another_case_is_refused(tmp_path):
    path = write(tmp_path / "c.csv", f"{GENERIC_HEADER},Close\n{generic_row(0)},1\n")
    assert refusal(path) == f"{path}, line 1: column(s) close appear twice"


def test_a_header_lacking_columns_names_them_all_and_what_it_has(tmp_path):
    path = write(tmp_path / "c.csv", "time,open,high,extra\n1,2,3,4\n")
    assert refusal(path) == (
        f"{path}, line 1: header lacks a time column (open_time, timestamp or datetime), low, close, volume; "
        "found time, open, high, extra"
    )


# times


def test_a_time_of_blanks_is_a_missing_value(tmp_path):
    path = write(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0), "   ,10,12,9,11,5"]) + "\n")
    assert refusal(path) == (
        f"{path}, line 3, field open_time: missing value (expected ISO 8601 or epoch milliseconds)"
    )


def test_month_first_dates_are_not_iso_8601(tmp_path):
    rows = ["03/01/2023 00:00:00,10,12,9,11,5", "03/01/2023 00:01:00,10,12,9,11,5"]
    path = write(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, *rows]) + "\n")
    assert refusal(path) == (
        f"{path}, line 2, field open_time: unparseable '03/01/2023 00:00:00' (expected ISO 8601 or epoch milliseconds)"
    )


def test_a_month_first_date_with_an_offset_among_naive_times_is_not_iso_8601(tmp_path):
    rows = ["2023-03-01T00:00:00,10,12,9,11,5", "03/01/2023 00:01:00+00:00,10,12,9,11,5"]
    path = write(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, *rows]) + "\n")
    assert refusal(path) == (
        f"{path}, line 3, field open_time: unparseable '03/01/2023 00:01:00+00:00' "
        "(expected ISO 8601 or epoch milliseconds)"
    )


def test_a_naive_month_first_date_among_times_with_offsets_is_not_iso_8601(tmp_path):
    rows = ["03/01/2023 00:00:00,10,12,9,11,5", "2023-03-01T00:01:00+00:00,10,12,9,11,5"]
    path = write(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, *rows]) + "\n")
    assert refusal(path) == (
        f"{path}, line 2, field open_time: unparseable '03/01/2023 00:00:00' (expected ISO 8601 or epoch milliseconds)"
    )


def test_every_repeated_column_is_named(tmp_path):
    path = write(tmp_path / "c.csv", f"{GENERIC_HEADER},Open,Close\n{generic_row(0)},1,2\n")
    assert refusal(path) == f"{path}, line 1: column(s) close, open appear twice"


def test_a_price_of_blanks_is_a_missing_value(tmp_path):
    path = write(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0), "2023-03-01T00:01:00Z,  ,12,9,11,5"]))
    assert refusal(path) == f"{path}, line 3, field open: missing value"
