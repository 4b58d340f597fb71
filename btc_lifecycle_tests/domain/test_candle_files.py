"""Specifications of ``read_candle_file``: the formats it reads and how it refuses bad files."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.candle_files import CandleFileError, read_candle_file
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


def test_generic_csv_with_epoch_milliseconds(tmp_path):
    rows = sample_rows()
    lines = ["datetime,open,high,low,close,volume"] + [",".join(map(str, r)) for r in rows]

    candles = read_candle_file(write(tmp_path, "epoch.csv", lines))

    assert (candles["open_time"].astype("int64") // 1_000_000).tolist() == [r[0] for r in rows]


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


def refusal(path: Path) -> str:
    with pytest.raises(CandleFileError) as caught:
        read_candle_file(path)
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


def test_unparseable_time_is_refused_with_its_line(tmp_path):
    lines = generic_lines(sample_rows(4))
    lines[4] = "yesterday" + lines[4][lines[4].index(",") :]
    assert "line 5, field open_time: unparseable 'yesterday'" in refusal(write(tmp_path, "bad.csv", lines))


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


def test_zip_with_two_files_is_refused(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", vision_line(sample_rows(1)[0]))
        archive.writestr("b.csv", vision_line(sample_rows(1)[0]))
    assert "exactly one csv, found 2" in refusal(path)


def test_empty_file_is_refused(tmp_path):
    assert "empty file" in refusal(write(tmp_path, "empty.csv", [""]))


def test_header_without_candles_is_refused(tmp_path):
    assert "no candles" in refusal(write(tmp_path, "header.csv", [GENERIC_HEADER]))


def test_headerless_file_without_twelve_columns_is_refused(tmp_path):
    path = write(tmp_path, "six.csv", [f"{START_MS},1,2,1,1,1"])
    assert "line 1: a file without header must be a Binance Vision dump with 12 columns" in (refusal(path))


def test_vision_file_of_another_interval_is_refused(tmp_path):
    line = vision_line(sample_rows(1)[0]).split(",")
    line[6] = str(START_MS + 299_999)  # a five-minute candle
    assert "line 1: close_time - open_time spans 300 s" in refusal(write(tmp_path, "5m.csv", [",".join(line)]))


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
