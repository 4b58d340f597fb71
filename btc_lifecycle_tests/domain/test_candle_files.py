"""Specifications of ``read_candle_file``: the formats it reads, how it tells epoch numbers apart
at their boundaries, and how it refuses bad files, naming the file, line and field."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
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
from btc_lifecycle.domain.candles import CANDLE_COLUMNS, CandleDataError

START_MS = 1_677_628_800_000  # 2023-03-01T00:00:00Z
GENERIC_HEADER = "open_time,open,high,low,close,volume"


def sample_rows(count: int = 5, seed: int = 7) -> list[tuple]:
    """Consistent minute candles: (open_ms, open, high, low, close, volume)."""
    rng = np.random.default_rng(seed)
    rows, price = [], 23_000.0
    for index in range(count):
        close = round(price * (1 + rng.normal(0, 0.001)), 2)
        high = round(max(price, close) + rng.uniform(0, 5), 2)
        low = round(min(price, close) - rng.uniform(0, 5), 2)
        volume = round(rng.uniform(0.1, 3), 6)
        rows.append((START_MS + index * 60_000, price, high, low, close, volume))
        price = close
    return rows


def vision_line(row: tuple, time_scale: int = 1) -> str:
    open_ms, o, h, l, c, v = row
    close_ms = open_ms + 59_999
    return (
        f"{open_ms * time_scale},{o:.8f},{h:.8f},{l:.8f},{c:.8f},{v:.8f},"
        f"{close_ms * time_scale},{v * c:.8f},42,{v / 2:.8f},{v * c / 2:.8f},0"
    )


def iso(open_ms: int) -> str:
    return pd.Timestamp(open_ms, unit="ms", tz="UTC").isoformat()


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def generic_lines(rows: list[tuple]) -> list[str]:
    return [GENERIC_HEADER] + [f"{iso(r[0])},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}" for r in rows]


def test_generic_csv_with_iso_times_reads_as_utc_candle_frame(tmp_path):
    rows = sample_rows()
    path = write(tmp_path, "candles.csv", generic_lines(rows))

    candles = read_candle_file(path)

    assert list(candles.columns) == list(CANDLE_COLUMNS)
    assert str(candles["open_time"].dt.tz) == "UTC"
    assert candles["open_time"].iloc[0] == pd.Timestamp("2023-03-01T00:00:00Z")
    assert candles["close"].tolist() == [row[4] for row in rows]
    assert candles["close_time"].iloc[0] == pd.Timestamp("2023-03-01T00:00:59.999Z")
    assert candles["quote_volume"].isna().all()


def test_generic_csv_converts_offsets_to_utc_and_treats_naive_times_as_utc(tmp_path):
    lines = [
        "Timestamp,OPEN,High,Low,Close,Volume,notes",
        "2023-03-01T02:00:00+02:00,10,11,9,10.5,1,a",
        "2023-03-01T00:01:00,10.5,11,10,10.7,2,b",
    ]
    candles = read_candle_file(write(tmp_path, "mixed.csv", lines))

    assert candles["open_time"].tolist() == [pd.Timestamp("2023-03-01T00:00Z"), pd.Timestamp("2023-03-01T00:01Z")]


def test_generic_csv_with_epoch_milliseconds_reads_utc_times(tmp_path):
    rows = sample_rows()
    lines = ["datetime,open,high,low,close,volume"] + [",".join(map(str, r)) for r in rows]

    candles = read_candle_file(write(tmp_path, "epoch.csv", lines))

    assert (candles["open_time"].astype("int64") // 1_000_000).tolist() == [r[0] for r in rows]
    assert str(candles["open_time"].dt.tz) == "UTC"
    assert candles["open_time"].iloc[0] == pd.Timestamp("2023-03-01", tz="UTC")


def test_generic_csv_is_returned_sorted_without_exact_repeats(tmp_path):
    lines = generic_lines(sample_rows(4))
    path = write(tmp_path, "shuffled.csv", [lines[0], lines[3], lines[1], lines[2], lines[1]])

    candles = read_candle_file(path)

    assert candles["open_time"].is_monotonic_increasing and len(candles) == 3
    assert candles.attrs["duplicates_dropped"] == 1


def test_vision_csv_in_milliseconds_fills_the_binance_extras(tmp_path):
    rows = sample_rows()
    candles = read_candle_file(write(tmp_path, "BTCUSDT-1m-2023-03.csv", map(vision_line, rows)))

    assert len(candles) == len(rows)
    assert candles["trades"].tolist() == [42.0] * len(rows)
    assert candles["quote_volume"].iloc[0] == pytest.approx(rows[0][5] * rows[0][4])
    assert candles["taker_buy_base_volume"].notna().all()


def test_vision_zip_in_microseconds_reads_like_milliseconds(tmp_path):
    rows = sample_rows()
    path = tmp_path / "BTCUSDT-1m-2025-01-01.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("BTCUSDT-1m-2025-01-01.csv", "\n".join(vision_line(r, 1000) for r in rows))

    candles = read_candle_file(path)

    assert (candles["open_time"].astype("int64") // 1_000_000).tolist() == [r[0] for r in rows]
    assert candles["close_time"].iloc[-1] == pd.Timestamp(rows[-1][0] + 59_999, unit="ms", tz="UTC")


@pytest.mark.real_data
def test_the_shared_month_reads_whole_and_gapless(shared_candles_path):
    candles = read_candle_file(shared_candles_path)

    assert len(candles) == 30_240
    assert candles["open_time"].iloc[0] == pd.Timestamp("2023-03-01T00:00:00Z")
    assert candles["open_time"].iloc[-1] == pd.Timestamp("2023-03-21T23:59:00Z")
    assert candles["open_time"].diff().dropna().eq(pd.Timedelta(minutes=1)).all()


def refusal(path: Path, interval: str = "1m") -> str:
    """The message ``read_candle_file`` refuses ``path`` with; it always names the file."""
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path, interval)
    assert isinstance(caught.value, (ValueError, CandleDataError))
    message = str(caught.value)
    assert str(path) in message
    return message


def test_header_without_a_time_column_is_refused_naming_line_one(tmp_path):
    path = write(tmp_path, "bad.csv", ["time,open,high,low,close,volume", "1,2,3,1,2,1"])
    assert "line 1: header lacks a time column" in refusal(path)


def test_header_missing_volume_is_refused_naming_the_column(tmp_path):
    path = write(tmp_path, "bad.csv", ["open_time,open,high,low,close", f"{START_MS},2,3,1,2"])
    assert "line 1: header lacks volume" in refusal(path)


def test_non_numeric_price_is_refused_with_its_line_counting_the_header(tmp_path):
    lines = generic_lines(sample_rows(5))
    lines[3] = lines[3].replace(lines[3].split(",")[2], "12x", 1)
    assert "line 4, field high: non-numeric '12x'" in refusal(write(tmp_path, "bad.csv", lines))


def test_missing_value_is_refused_with_its_line(tmp_path):
    lines = generic_lines(sample_rows(3))
    lines[2] = lines[2].rsplit(",", 1)[0] + ","
    assert "line 3, field volume: missing value" in refusal(write(tmp_path, "bad.csv", lines))


def test_epoch_seconds_are_refused_rather_than_read_as_1970(tmp_path):
    lines = ["timestamp,open,high,low,close,volume", "1677628800,1,2,1,1,1"]
    message = refusal(write(tmp_path, "seconds.csv", lines))
    assert "line 2, field timestamp: epoch time too small" in message


@pytest.mark.parametrize("price", ["0", "-5"])
def test_zero_or_negative_price_is_refused_with_its_line(tmp_path, price):
    lines = generic_lines(sample_rows(4))
    fields = lines[3].split(",")
    fields[4] = price  # low
    lines[3] = ",".join(fields)
    assert "line 4: zero or negative price" in refusal(write(tmp_path, "bad.csv", lines))


def test_high_below_low_is_refused_with_its_line(tmp_path):
    lines = generic_lines(sample_rows(4))
    lines[2] = f"{iso(START_MS + 60_000)},100,90,95,92,1"
    assert "line 3: high below low" in refusal(write(tmp_path, "bad.csv", lines))


def test_conflicting_candles_for_one_minute_are_refused_naming_both_lines(tmp_path):
    lines = generic_lines(sample_rows(3))
    lines.append(f"{iso(START_MS)},1,2,1,1.5,1")
    assert "lines 2, 5: different candles share the open time" in refusal(write(tmp_path, "bad.csv", lines))


def test_truncated_zip_is_refused(tmp_path):
    path = tmp_path / "cut.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cut.csv", "\n".join(vision_line(r) for r in sample_rows(50)))
    path.write_bytes(path.read_bytes()[:-40])
    assert "truncated or corrupt zip" in refusal(path)


def test_empty_file_is_refused(tmp_path):
    assert "empty file" in refusal(write(tmp_path, "empty.csv", [""]))


def test_header_without_candles_is_refused(tmp_path):
    assert "no candles" in refusal(write(tmp_path, "header.csv", [GENERIC_HEADER]))


def test_headerless_file_without_twelve_columns_is_refused(tmp_path):
    path = write(tmp_path, "six.csv", [f"{START_MS},1,2,1,1,1"])
    assert "line 1: a file without header must be a Binance Vision dump with 12 columns" in (refusal(path))


def test_blank_line_inside_the_file_is_refused_with_its_line(tmp_path):
    lines = generic_lines(sample_rows(3))
    lines.insert(2, "")
    assert "line 3" in refusal(write(tmp_path, "blank.csv", lines))


def test_gzip_compressed_csv_reads_like_the_plain_file(tmp_path):
    plain = write(tmp_path, "plain.csv", generic_lines(sample_rows(5)))
    packed = tmp_path / "packed.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    pd.testing.assert_frame_equal(read_candle_file(packed), read_candle_file(plain))


def test_truncated_gzip_is_refused(tmp_path):
    packed = gzip.compress("\n".join(generic_lines(sample_rows(50))).encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    assert "cut.csv.gz: truncated or corrupt gzip" in refusal(path)


def test_the_shipped_sample_reads_four_days_including_the_crash():
    sample = Path(__file__).resolve().parents[2] / "data" / "sample"
    candles = read_candle_file(sample / "btcusdt_1m_2023-03-07_2023-03-10_binanceus.csv.gz")
    assert len(candles) == 4 * 1440
    assert str(candles["open_time"].iloc[0]) == "2023-03-07 00:00:00+00:00"
    assert str(candles["open_time"].iloc[-1]) == "2023-03-10 23:59:00+00:00"


# Binance Vision dumps: headerless, twelve columns, refused to the line and field


def dump_line(minute: int, open_ms: int | None = None, close_ms: int | None = None, high: str = "23005") -> str:
    """One line of a Vision dump: the candle ``minute`` minutes after START_MS."""
    open_ms = START_MS + minute * 60_000 if open_ms is None else open_ms
    close_ms = open_ms + 59_999 if close_ms is None else close_ms
    return f"{open_ms},23000,{high},22995,23001,1.5,{close_ms},34501.5,42,0.75,17250.75,0"


def dump_file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "BTCUSDT-1m-2023-03.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_non_numeric_field_is_named_with_its_line(tmp_path):
    path = dump_file(tmp_path, [dump_line(0), dump_line(1, high="x")])
    assert refusal(path) == f"{path}, line 2, field high: non-numeric 'x'"


def test_open_times_in_seconds_are_refused_at_their_line(tmp_path):
    path = dump_file(tmp_path, [dump_line(0), dump_line(1), dump_line(2, open_ms=1_677_628_920)])
    assert refusal(path) == (
        f"{path}, line 3, field open_time: epoch time too small for milliseconds (seconds?): 1677628920"
    )


def test_a_close_time_that_is_not_whole_is_refused_at_its_line(tmp_path):
    lines = [dump_line(0), dump_line(1).replace(f",{START_MS + 60_000 + 59_999},", f",{START_MS + 119_999}.25,")]
    path = dump_file(tmp_path, lines)
    assert refusal(path) == f"{path}, line 2, field close_time: epoch time is not a whole number: {START_MS + 119_999}"


def test_a_close_time_beyond_2262_is_refused(tmp_path):
    path = dump_file(tmp_path, [dump_line(0), dump_line(1, close_ms=9_999_999_999_999)])
    assert refusal(path) == f"{path}, line 2, field close_time: epoch time beyond the year 2262: 9999999999999"


def test_another_interval_is_refused_at_the_first_wrong_line_with_both_spans(tmp_path):
    lines = [dump_line(0), dump_line(1), dump_line(2, close_ms=START_MS + 120_000 + 299_999)]
    path = dump_file(tmp_path, lines)
    assert refusal(path) == (f"{path}, line 3: close_time - open_time spans 300 s, not the expected interval of 60 s")


def test_a_vision_file_keeps_one_time_unit_from_its_first_line_on(tmp_path):
    rows = sample_rows(3)
    lines = [vision_line(rows[0], 1000), vision_line(rows[1], 1000), vision_line(rows[2])]
    with pytest.raises(CandleFileError, match=r"line 3, field open_time: epoch time in another unit .*microseconds"):
        read_candle_file(write(tmp_path, "mixed.csv", lines))


def test_a_ragged_vision_file_is_refused_as_malformed(tmp_path):
    path = dump_file(tmp_path, [dump_line(0), dump_line(1) + ",7"])
    assert refusal(path).startswith(f"{path}: malformed csv")


def test_microseconds_with_a_sub_millisecond_part_are_floored_to_the_millisecond(tmp_path):
    lines = [
        dump_line(0, open_ms=START_MS * 1000 + 123, close_ms=(START_MS + 59_999) * 1000 + 999),
        dump_line(1, open_ms=(START_MS + 60_000) * 1000, close_ms=(START_MS + 119_999) * 1000),
    ]
    candles = read_candle_file(dump_file(tmp_path, lines))
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


def test_every_binance_extra_of_a_vision_file_is_read(tmp_path):
    candles = read_candle_file(dump_file(tmp_path, [dump_line(0), dump_line(1)]))
    first = candles.iloc[0]
    assert (first["quote_volume"], first["trades"]) == (34501.5, 42)
    assert (first["taker_buy_base_volume"], first["taker_buy_quote_volume"]) == (0.75, 17250.75)


def test_microseconds_just_beyond_2262_are_refused():
    with pytest.raises(CandleFileError, match="epoch time beyond the year 2262"):
        _epoch_ms("f", pd.Series([float((LATEST_EPOCH_MS + 1) * 1000)]), "open_time", 0)


# how a file is opened and decoded


def generic_row(minute: int, open_: str = "10") -> str:
    return f"2023-03-01T00:{minute:02d}:00Z,{open_},12,9,11,5"


def write_text(path: Path, text: str) -> Path:
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
    path = write_text(tmp_path / "single.csv", f"{START_MS}\n{START_MS + 60_000}\n")
    assert refusal(path) == (
        f"{path}, line 1: a file without header must be a Binance Vision dump with 12 columns, found 1"
    )


def test_a_file_opening_with_a_blank_line_is_read_as_having_an_empty_header(tmp_path):
    path = write_text(tmp_path / "blank.csv", f"\n{dump_line(0)}\n")
    assert refusal(path) == (
        f"{path}, line 1: header lacks a time column (open_time, timestamp or datetime), open, high, low, "
        "close, volume; found "
    )


def test_a_vision_dump_with_quoted_numbers_is_still_a_vision_dump(tmp_path):
    fields = dump_line(0).split(",")
    path = write_text(tmp_path / "quoted.csv", ",".join(f'"{field}"' for field in fields) + "\n")
    frame = read_candle_file(path)
    assert frame["trades"].tolist() == [42.0]


def test_a_bad_candle_of_a_vision_dump_is_named_with_its_own_line(tmp_path):
    path = dump_file(tmp_path, [dump_line(0), dump_line(1, high="22990")])
    assert refusal(path) == (
        f"{path}, line 2: high below low at candle 2023-03-01T00:01:00+00:00 (1 candle(s) affected)"
    )


def test_a_bad_first_candle_is_named_at_the_line_after_the_header(tmp_path):
    path = write_text(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0, "13"), generic_row(1)]) + "\n")
    assert refusal(path) == (
        f"{path}, line 2: open or close outside the high-low range at candle 2023-03-01T00:00:00+00:00 "
        "(1 candle(s) affected)"
    )


# the csv table


def test_a_first_row_longer_than_the_header_is_refused_with_both_widths(tmp_path):
    path = write_text(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0) + ",7", generic_row(1)]) + "\n")
    assert refusal(path) == f"{path}, line 2: 7 fields, but the first line has 6"


def test_a_quoted_comma_is_inside_a_field_when_the_widths_are_counted(tmp_path):
    header = GENERIC_HEADER + ',"note, free text"'
    rows = [generic_row(0) + ',"a, b",7', generic_row(1) + ',"c, d"']
    path = write_text(tmp_path / "c.csv", "\n".join([header, *rows]) + "\n")
    assert refusal(path) == f"{path}, line 2: 8 fields, but the first line has 7"


def test_a_malformed_csv_quotes_the_parser(tmp_path):
    path = write_text(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0), '"' + generic_row(1)]) + "\n")
    assert (
        refusal(path) == f"{path}: malformed csv: Error tokenizing data. C error: EOF inside string starting at row 2"
    )


def test_trailing_blank_lines_are_ignored(tmp_path):
    path = write_text(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0), generic_row(1)]) + "\n\n\n\n")
    assert len(read_candle_file(path)) == 2


def test_a_header_followed_only_by_blank_lines_has_no_candles(tmp_path):
    path = write_text(tmp_path / "c.csv", GENERIC_HEADER + "\n\n\n")
    assert refusal(path) == f"{path}: no candles after the header"


# the generic header


def test_a_column_repeated_in_another_case_is_refused(tmp_path):
    path = write_text(tmp_path / "c.csv", f"{GENERIC_HEADER},Close\n{generic_row(0)},1\n")
    assert refusal(path) == f"{path}, line 1: column(s) close appear twice"


def test_a_header_lacking_columns_names_them_all_and_what_it_has(tmp_path):
    path = write_text(tmp_path / "c.csv", "time,open,high,extra\n1,2,3,4\n")
    assert refusal(path) == (
        f"{path}, line 1: header lacks a time column (open_time, timestamp or datetime), low, close, volume; "
        "found time, open, high, extra"
    )


# times


def test_a_time_of_blanks_is_a_missing_value(tmp_path):
    path = write_text(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0), "   ,10,12,9,11,5"]) + "\n")
    assert refusal(path) == (
        f"{path}, line 3, field open_time: missing value (expected ISO 8601 or epoch milliseconds)"
    )


def test_month_first_dates_are_not_iso_8601(tmp_path):
    rows = ["03/01/2023 00:00:00,10,12,9,11,5", "03/01/2023 00:01:00,10,12,9,11,5"]
    path = write_text(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, *rows]) + "\n")
    assert refusal(path) == (
        f"{path}, line 2, field open_time: unparseable '03/01/2023 00:00:00' (expected ISO 8601 or epoch milliseconds)"
    )


def test_a_month_first_date_with_an_offset_among_naive_times_is_not_iso_8601(tmp_path):
    rows = ["2023-03-01T00:00:00,10,12,9,11,5", "03/01/2023 00:01:00+00:00,10,12,9,11,5"]
    path = write_text(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, *rows]) + "\n")
    assert refusal(path) == (
        f"{path}, line 3, field open_time: unparseable '03/01/2023 00:01:00+00:00' "
        "(expected ISO 8601 or epoch milliseconds)"
    )


def test_a_naive_month_first_date_among_times_with_offsets_is_not_iso_8601(tmp_path):
    rows = ["03/01/2023 00:00:00,10,12,9,11,5", "2023-03-01T00:01:00+00:00,10,12,9,11,5"]
    path = write_text(tmp_path / "c.csv", "\n".join([GENERIC_HEADER, *rows]) + "\n")
    assert refusal(path) == (
        f"{path}, line 2, field open_time: unparseable '03/01/2023 00:00:00' (expected ISO 8601 or epoch milliseconds)"
    )


def test_every_repeated_column_is_named(tmp_path):
    path = write_text(tmp_path / "c.csv", f"{GENERIC_HEADER},Open,Close\n{generic_row(0)},1,2\n")
    assert refusal(path) == f"{path}, line 1: column(s) close, open appear twice"


def test_a_price_of_blanks_is_a_missing_value(tmp_path):
    path = write_text(
        tmp_path / "c.csv", "\n".join([GENERIC_HEADER, generic_row(0), "2023-03-01T00:01:00Z,  ,12,9,11,5"])
    )
    assert refusal(path) == f"{path}, line 3, field open: missing value"
