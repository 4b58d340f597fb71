"""Specifications of the replay exchange's kline archives: Binance's data.binance.vision tree, made
from the candles it serves, read back through real HTTP with the client's own reader."""

from __future__ import annotations

import http.client
import io
import json
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pandas as pd
import pytest

from btc_lifecycle.domain.archives import Archive, ArchiveError, published_checksum, read_archive, verified
from btc_lifecycle.domain.synthetic import synthetic_candles
from btc_lifecycle.replay_exchange import ArchiveFault, ReplayExchange, parse_archive_fault, write_archive_tree
from btc_lifecycle.replay_exchange.__main__ import main as replay_main
from btc_lifecycle.replay_exchange.__main__ import parse_arguments
from btc_lifecycle.replay_exchange.archives import kline_csv
from btc_lifecycle.replay_exchange.binance_shapes import KlineSeries

DAY_MS = 86_400_000
# Five days from a listing on 2023-02-26: the file ends at 2023-03-03T00:00, where replay starts.
FIRST_DAY = "2023-02-26"
DAYS = 5
# A klines row's values after its open time, in row order (close time left out).
VALUES = [
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
]


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return synthetic_candles(DAYS * 1440, start=f"{FIRST_DAY}T00:00:00Z", seed=11)


@pytest.fixture
def exchange(candles):
    with ReplayExchange(candles, speed=0) as running:
        yield running


def archive(period: str, symbol: str = "BTCUSDT", interval: str = "1m") -> Archive:
    return Archive(symbol, interval, period)


def fetch(url: str) -> tuple[int, dict, bytes]:
    """Status, headers and body of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def download(exchange: ReplayExchange, wanted: Archive) -> tuple[bytes, str]:
    """The zip and the digest its .CHECKSUM states, both answered 200."""
    status, headers, data = fetch(f"{exchange.base_url}/{wanted.path}")
    assert status == 200 and headers["Content-Type"] == "application/zip"
    status, headers, checksum = fetch(f"{exchange.base_url}/{wanted.checksum_path}")
    assert status == 200 and headers["Content-Type"] == "text/plain"
    return data, published_checksum(checksum.decode(), wanted)


def status_of(exchange: ReplayExchange, path: str) -> int:
    return fetch(f"{exchange.base_url}/{path}")[0]


def add_faults(exchange: ReplayExchange, *specs: str) -> dict:
    request = urllib.request.Request(
        f"{exchange.base_url}/replay/archives", data=json.dumps({"add": list(specs)}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def klines_of(exchange: ReplayExchange, wanted: Archive) -> list[list]:
    """Every klines row of the archive's period, paged as a client pages them."""
    since, end, rows = wanted.start.value // 1_000_000, wanted.end.value // 1_000_000 - 1, []
    while True:
        url = f"{exchange.base_url}/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime={since}&endTime={end}&limit=1000"
        page = json.loads(fetch(url)[2])
        if not page:
            return rows
        rows += page
        since = page[-1][0] + 60_000


def csv_lines(data: bytes) -> list[list[str]]:
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        (member,) = bundle.namelist()
        return [line.split(",") for line in bundle.read(member).decode().splitlines()]


def assert_same_candles(frame: pd.DataFrame, rows: list[list]) -> None:
    assert len(frame) == len(rows) > 0
    assert (frame["open_time"].astype("int64") // 1_000_000).tolist() == [row[0] for row in rows]
    expected = np.array([[float(value) for value in row[1:6] + row[7:11]] for row in rows])
    assert np.array_equal(frame[VALUES].to_numpy(dtype="float64"), expected)


# --- what an archive holds ---------------------------------------------------------------


def test_a_day_archive_reads_back_to_the_candles_the_klines_endpoint_serves(exchange):
    day = archive("2023-03-01")
    data, checksum = download(exchange, day)
    verified(data, checksum, day)
    rows = klines_of(exchange, day)
    assert_same_candles(read_archive(data, day), rows)
    # Field for field the very text the endpoint answers: a client stores the same values either way.
    assert csv_lines(data) == [[str(value) for value in row] for row in rows]


def test_the_archive_holds_one_csv_named_like_binances_deflated(exchange):
    data, _ = download(exchange, archive("2023-03-01"))
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        (member,) = bundle.infolist()
    assert member.filename == "BTCUSDT-1m-2023-03-01.csv" and member.compress_type == zipfile.ZIP_DEFLATED


def test_a_month_archive_holds_the_month_since_the_listing_as_its_days_do(exchange):
    month = archive("2023-02")
    data, checksum = download(exchange, month)
    verified(data, checksum, month)
    candles = read_archive(data, month)
    assert len(candles) == 3 * 1440 and candles["open_time"].iloc[0] == pd.Timestamp(f"{FIRST_DAY}T00:00Z")
    days = [read_archive(download(exchange, day)[0], day) for day in month.daily()[-3:]]
    pd.testing.assert_frame_equal(candles, pd.concat(days, ignore_index=True))


def test_periods_from_2025_are_written_in_microseconds_and_read_the_same():
    candles = synthetic_candles(2 * 1440, start="2024-12-31T00:00:00Z", seed=3)
    with ReplayExchange(candles, speed=0) as exchange:
        for period, first_open_ms, unit in (
            ("2024-12-31", 1_735_603_200_000, 1),
            ("2025-01-01", 1_735_689_600_000, 1000),
        ):
            data, checksum = download(exchange, archive(period))
            verified(data, checksum, archive(period))
            first = csv_lines(data)[0]
            assert [int(first[0]), int(first[6])] == [first_open_ms * unit, (first_open_ms + 60_000) * unit - 1]
            assert_same_candles(read_archive(data, archive(period)), klines_of(exchange, archive(period)))


def test_csv_fields_have_the_klines_endpoints_digits_even_next_to_a_rounding_half(candles):
    series = KlineSeries(candles.head(1440), "1m")
    rng = np.random.default_rng(5)
    tricky = rng.uniform(0, 100_000, series.values.shape)
    tricky[:200, 0] = np.arange(200) / 1e8 + 5e-9  # halves at the ninth decimal, as floats
    tricky[:4, 1] = [0.0, 0.999999999, 1e-12, 123_456_789.123456785]
    tricky[:, 6] = rng.integers(0, 10**6, len(tricky))  # trades: whole numbers
    series.values = tricky
    text, ends = kline_csv(series, 0, 1440)
    assert text.decode().splitlines() == [",".join(map(str, row)) for row in series._rows_between(0, 1440)]
    assert ends[-1] == len(text) and len(ends) == 1440


# --- checksums and faults ----------------------------------------------------------------


def test_checksum_fault_publishes_a_digest_that_does_not_match_the_zip(exchange):
    add_faults(exchange, "checksum@2023-03-01")
    data, checksum = download(exchange, archive("2023-03-01"))
    with pytest.raises(ArchiveError, match="checksum mismatch"):
        verified(data, checksum, archive("2023-03-01"))
    verified(*download(exchange, archive("2023-03-02")), archive("2023-03-02"))  # only that period


def test_missing_fault_makes_the_zip_and_its_checksum_404_for_that_period_only(exchange):
    add_faults(exchange, "missing@2023-03-01", "missing@2023-02")
    for gone in (archive("2023-03-01"), archive("2023-02")):
        assert [status_of(exchange, gone.path), status_of(exchange, gone.checksum_path)] == [404, 404]
    assert [status_of(exchange, archive(day).path) for day in ("2023-02-28", "2023-03-02")] == [200, 200]


def test_truncate_fault_announces_the_whole_zip_and_sends_half_of_it(exchange):
    add_faults(exchange, "truncate@2023-03-01")
    with urllib.request.urlopen(f"{exchange.base_url}/{archive('2023-03-01').path}", timeout=10) as response:
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
    whole, _ = exchange.archives.zip_and_digest(archive("2023-03-01"))
    assert len(cut.value.partial) == len(whole) // 2 and cut.value.expected == len(whole) - len(whole) // 2
    assert status_of(exchange, archive("2023-03-01").checksum_path) == 200


def test_micros_fault_writes_microseconds_before_2025_and_the_reader_still_gets_the_candles(exchange):
    day = archive("2023-03-01")
    plain = read_archive(download(exchange, day)[0], day)
    add_faults(exchange, "micros@2023-03-01")
    data, checksum = download(exchange, day)
    verified(data, checksum, day)
    assert all(int(line[0]) >= 10**15 and int(line[6]) >= 10**15 for line in csv_lines(data))
    pd.testing.assert_frame_equal(read_archive(data, day), plain)


def test_revise_fault_republishes_more_volume_under_a_new_checksum(exchange):
    day = archive("2023-03-01")
    first_data, first_checksum = download(exchange, day)
    add_faults(exchange, "revise@2023-03-01")
    data, checksum = download(exchange, day)
    assert checksum != first_checksum
    verified(data, checksum, day)
    before, after = read_archive(first_data, day), read_archive(data, day)
    for name in ("volume", "quote_volume"):
        np.testing.assert_allclose(after[name], before[name] * 1.01, rtol=1e-9)
    unchanged = ["open_time", "open", "high", "low", "close", "taker_buy_base_volume"]
    pd.testing.assert_frame_equal(after[unchanged], before[unchanged])


def test_archive_faults_are_set_cleared_and_shown_over_http(exchange):
    assert add_faults(exchange, "missing@2023-03-01", "micros@2023-02") == {
        "faults": ["missing@2023-03-01", "micros@2023-02"]
    }
    assert json.loads(fetch(f"{exchange.base_url}/replay/archives")[2])["faults"] == [
        "missing@2023-03-01",
        "micros@2023-02",
    ]
    request = urllib.request.Request(f"{exchange.base_url}/replay/archives", data=b'{"clear": true}', method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == {"faults": []}
    assert status_of(exchange, archive("2023-03-01").path) == 200


def test_a_bad_fault_over_http_is_a_400_naming_it(exchange):
    with pytest.raises(urllib.error.HTTPError) as refused:
        add_faults(exchange, "gone@2023-03")
    assert refused.value.code == 400 and "gone@2023-03" in json.loads(refused.value.read())["msg"]


def test_the_constructor_takes_archive_faults(candles):
    with ReplayExchange(candles, speed=0, archive_faults=["missing@2023-03-01"]) as exchange:
        assert status_of(exchange, archive("2023-03-01").path) == 404


@pytest.mark.parametrize(
    "spec",
    ["missing", "gone@2023-03", "missing@", "missing@2023-3", "missing@2023-13", "missing@2023-02-30", "@2023-03"],
)
def test_a_bad_fault_spec_is_a_value_error_naming_it_and_the_kinds(spec):
    with pytest.raises(ValueError, match="checksum, missing, truncate, micros, revise") as error:
        parse_archive_fault(spec)
    assert repr(spec) in str(error.value)


# --- what is published -------------------------------------------------------------------


def test_a_day_is_published_once_it_has_ended_by_the_replay_clock(exchange):
    exchange.clock.set_now(pd.Timestamp("2023-03-02T12:00Z").value // 1_000_000)
    assert [status_of(exchange, archive(day).path) for day in ("2023-03-01", "2023-03-02")] == [200, 404]
    assert status_of(exchange, archive("2023-03-02").checksum_path) == 404
    exchange.clock.set_now(pd.Timestamp("2023-03-03T00:00Z").value // 1_000_000)
    assert status_of(exchange, archive("2023-03-02").path) == 200


def test_a_month_is_published_once_it_has_ended_even_when_the_file_ends_before(exchange):
    assert status_of(exchange, archive("2023-03").path) == 404  # the file ends on March 3rd
    exchange.clock.set_now(pd.Timestamp("2023-04-01T00:00Z").value // 1_000_000 - 1)
    assert status_of(exchange, archive("2023-03").path) == 404
    exchange.clock.set_now(pd.Timestamp("2023-04-01T00:00Z").value // 1_000_000)
    assert len(read_archive(download(exchange, archive("2023-03"))[0], archive("2023-03"))) == 2 * 1440


@pytest.mark.parametrize(
    "path",
    [
        archive("2023-02-25").path,  # before the listing
        archive("2023-01").path,
        archive("2023-03-03").path,  # after the file, not ended either
        archive("2023-03-01", symbol="ETHUSDT").path,
        archive("2023-03-01", interval="5m").path,
        archive("2023-03-01").path.replace("/daily/", "/monthly/"),
        "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2023-02-30.zip",
        "data/spot/daily/klines/BTCUSDT/1m/",
        "data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2023-03-01.zip",
    ],
)
def test_an_unpublished_or_unknown_archive_is_a_404_page(exchange, path):
    status, headers, body = fetch(f"{exchange.base_url}/{path}")
    assert status == 404 and headers["Content-Type"] == "text/html" and b"404 Not Found" in body


# --- a tree on disk ----------------------------------------------------------------------


def test_write_archive_tree_writes_every_ended_month_and_day_in_binances_layout(tmp_path, candles):
    written = write_archive_tree(candles, tmp_path)
    days = [f"2023-02-{day}" for day in (26, 27, 28)] + ["2023-03-01", "2023-03-02"]
    assert written == sorted(archive(period) for period in ["2023-02", *days])
    files = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file())
    assert files == sorted(path for each in written for path in (each.path, each.checksum_path))
    for each in written:
        data = (tmp_path / each.path).read_bytes()
        verified(data, published_checksum((tmp_path / each.checksum_path).read_text(), each), each)
    month = read_archive((tmp_path / archive("2023-02").path).read_bytes(), archive("2023-02"))
    pd.testing.assert_frame_equal(month[VALUES[:5]], candles[VALUES[:5]].head(3 * 1440))


def test_write_archive_tree_writes_the_same_bytes_every_time_and_stops_at_now(tmp_path, candles):
    now = pd.Timestamp("2023-03-01T00:00Z").value // 1_000_000
    assert [each.period for each in write_archive_tree(candles, tmp_path / "a", now_ms=now)] == [
        "2023-02",
        "2023-02-26",
        "2023-02-27",
        "2023-02-28",
    ]
    write_archive_tree(candles, tmp_path / "b", now_ms=now)
    for each in ("2023-02", "2023-02-26"):
        path = archive(each).path
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()


def test_cli_writes_the_archives_of_a_candle_file_and_exits(tmp_path, candles, capsys):
    path = tmp_path / "candles.csv"
    candles[["open_time", "open", "high", "low", "close", "volume"]].to_csv(path, index=False)
    assert replay_main(["--candles", str(path), "--write-archives", str(tmp_path / "tree")]) == 0
    assert capsys.readouterr().out == f"wrote 6 archives under {tmp_path / 'tree'}\n"
    assert (tmp_path / "tree" / archive("2023-03-02").checksum_path).is_file()


def test_cli_archive_fault_flag_repeats_and_refuses_a_bad_spec(capsys):
    arguments = parse_arguments(
        ["--candles", "c.csv", "--archive-fault", "missing@2023-03", "--archive-fault", "micros@2023-03-05"]
    )
    assert arguments.archive_fault == [ArchiveFault("missing", "2023-03"), ArchiveFault("micros", "2023-03-05")]
    with pytest.raises(SystemExit) as exit_:
        parse_arguments(["--candles", "c.csv", "--archive-fault", "late@2023-03"])
    assert exit_.value.code == 2 and "archive fault 'late@2023-03'" in capsys.readouterr().err
