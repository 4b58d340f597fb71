"""Specifications of Binance's kline archives: which archive holds which days, how a checksum is
read and checked, and which files are refused, each error naming the archive and the line."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest

from btc_lifecycle.domain.archives import (
    Archive,
    ArchiveError,
    archives_for,
    checksum_line,
    published_checksum,
    read_archive,
    verified,
)

DAY_2023 = Archive("BTCUSDT", "1m", "2023-03-05")
DAY_2025 = Archive("BTCUSDT", "1m", "2025-01-01")
# Rows as Binance publishes them: 12 columns, no header, times in µs from 2025 on.
ROWS_2025 = [
    "1735689600000000,93576.00000000,93610.93000000,93537.50000000,93610.93000000,8.21827000,"
    "1735689659999999,768978.12129990,1806,4.30941000,403231.60432010,0",
    "1735689660000000,93610.93000000,93652.00000000,93606.39000000,93650.01000000,11.74093000,"
    "1735689719999999,1099285.91521650,2075,6.45640000,604484.56735300,0",
]


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def zipped(text: str, member: str = "BTCUSDT-1m-2025-01-01.csv") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(member, text)
    return buffer.getvalue()


def ms_rows(start: str, count: int, step_ms: int = 60_000, shift_ms: int = 0) -> str:
    first = int(utc(start).timestamp() * 1000) + shift_ms
    lines = []
    for index in range(count):
        opened = first + index * step_ms
        lines.append(f"{opened},100.0,101.0,99.0,100.5,2.0,{opened + step_ms - 1},201.0,7,1.0,100.5,0")
    return "\n".join(lines) + "\n"


def test_an_archive_is_named_and_placed_as_binance_publishes_it():
    month = Archive("BTCUSDT", "1m", "2024-03")
    assert month.path == "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-03.zip"
    assert DAY_2023.path == "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2023-03-05.zip"
    assert DAY_2023.checksum_path == DAY_2023.path + ".CHECKSUM"
    assert (month.start, month.end) == (utc("2024-03-01"), utc("2024-04-01"))
    assert len(month.days()) == 31 and month.daily()[4] == Archive("BTCUSDT", "1m", "2024-03-05")
    assert Archive.from_name("BTCUSDT-1m-2024-03.zip") == month
    assert Archive.from_name("btcusdt_1m.csv") is None


def test_whole_months_come_from_month_archives_and_the_other_days_from_day_archives():
    plan = archives_for("BTCUSDT", "1m", utc("2024-01-30"), utc("2024-04-03"))
    assert [archive.period for archive in plan] == [
        "2024-01-30",
        "2024-01-31",
        "2024-02",
        "2024-03",
        "2024-04-01",
        "2024-04-02",
    ]
    inside_a_month = archives_for("BTCUSDT", "1m", utc("2024-02-01"), utc("2024-02-03"))
    assert [archive.period for archive in inside_a_month] == ["2024-02-01", "2024-02-02"]
    assert archives_for("BTCUSDT", "1m", utc("2024-02-01"), utc("2024-02-01")) == []


def test_a_checksum_is_read_from_the_sha256sum_line_for_the_archive():
    data = zipped(ms_rows("2023-03-05", 3), "BTCUSDT-1m-2023-03-05.csv")
    text = checksum_line(data, DAY_2023.name)
    assert verified(data, published_checksum(text, DAY_2023), DAY_2023) == text.split()[0]
    binary_mode = text.replace("  ", " *").upper().replace(DAY_2023.name.upper(), DAY_2023.name)
    assert published_checksum(binary_mode, DAY_2023) == text.split()[0]


def test_a_checksum_file_for_another_archive_is_refused():
    text = checksum_line(b"zip", "BTCUSDT-1m-2023-03-06.zip")
    with pytest.raises(ArchiveError, match=r"BTCUSDT-1m-2023-03-05\.zip\.CHECKSUM: no sha256sum line"):
        published_checksum(text, DAY_2023)


def test_bytes_that_do_not_hash_to_the_published_checksum_are_refused():
    data = zipped(ms_rows("2023-03-05", 3))
    wrong = published_checksum(checksum_line(data + b"!", DAY_2023.name), DAY_2023)
    with pytest.raises(ArchiveError, match=r"BTCUSDT-1m-2023-03-05\.zip: checksum mismatch"):
        verified(data, wrong, DAY_2023)


def test_a_microsecond_archive_reads_to_the_same_candles_as_milliseconds():
    candles = read_archive(zipped("\n".join(ROWS_2025) + "\n"), DAY_2025)
    assert candles["open_time"].tolist() == [utc("2025-01-01T00:00"), utc("2025-01-01T00:01")]
    assert candles["close"].tolist() == [93610.93, 93650.01]
    assert candles["trades"].tolist() == [1806, 2075]
    in_ms = "\n".join(
        ",".join(
            str(int(field) // 1000) if position in (0, 6) else field for position, field in enumerate(row.split(","))
        )
        for row in ROWS_2025
    )
    pd.testing.assert_frame_equal(read_archive(zipped(in_ms), DAY_2025), candles)


def test_the_unit_is_the_files_not_each_values():
    mixed = ROWS_2025[0] + "\n" + ms_rows("2025-01-01T00:01", 1)
    with pytest.raises(ArchiveError, match=r"line 2, field open_time: epoch time in another unit .*microseconds"):
        read_archive(zipped(mixed), DAY_2025)


def test_rows_outside_the_archives_period_are_refused():
    with pytest.raises(ArchiveError, match=r"line 1, field open_time: 2023-03-04T23:59:00\+00:00 lies outside"):
        read_archive(zipped(ms_rows("2023-03-04T23:59", 3)), DAY_2023)
    # Microseconds read as milliseconds would land in the year 55,000: the period catches it.
    with pytest.raises(ArchiveError, match="lies outside the file's period 2023-03-05"):
        read_archive(zipped("\n".join(ROWS_2025)), DAY_2023)


def test_rows_off_the_intervals_grid_or_closer_than_it_are_refused():
    with pytest.raises(ArchiveError, match=r"line 1, field open_time: .* is not on the 60 s grid"):
        read_archive(zipped(ms_rows("2023-03-05", 3, shift_ms=30_000)), DAY_2023)
    five_minutes = ms_rows("2023-03-05", 3, step_ms=300_000)
    with pytest.raises(ArchiveError, match="spans 300 s, not the expected interval of 60 s"):
        read_archive(zipped(five_minutes), DAY_2023)


def test_an_archive_with_gaps_on_the_grid_is_read():
    rows = ms_rows("2023-03-05", 5).splitlines()
    candles = read_archive(zipped("\n".join(rows[:2] + rows[4:])), DAY_2023)
    assert len(candles) == 3


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (zipped(ms_rows("2023-03-05", 50))[:-40], "truncated or corrupt zip"),
        (b"not a zip", "truncated or corrupt zip"),
        (zipped(""), "empty csv"),
    ],
)
def test_a_broken_zip_is_refused_naming_the_archive(data, problem):
    with pytest.raises(ArchiveError, match=rf"BTCUSDT-1m-2023-03-05\.zip.*{problem}"):
        read_archive(data, DAY_2023)


def test_a_csv_with_a_header_is_not_an_archive():
    text = "open_time,open,high,low,close,volume\n" + ms_rows("2023-03-05", 2)
    with pytest.raises(ArchiveError, match=r"2023-03-05\.zip .*malformed csv: .*6 fields in line 2, saw 12"):
        read_archive(zipped(text), DAY_2023)
