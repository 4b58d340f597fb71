"""Report folders: only completed, timestamp-named folders are reports, and only old ones go."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest

from btc_lifecycle.reporting import prune_report_folders
from btc_lifecycle.reporting.retention import (
    completed_report_folders,
    new_temp_folder,
    publish_report_folder,
    remove_stale_temp_folders,
    report_stamp,
)

STAMPS = ["20260101T000000Z", "20260102T000000Z", "20260102T000000Z-2", "20260103T120000Z"]


def make_reports(root, names=STAMPS):
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "report.pdf").write_bytes(b"%PDF")
    return [root / name for name in names]


def test_prune_deletes_only_the_oldest_beyond_keep(tmp_path):
    reports = make_reports(tmp_path)
    deleted = prune_report_folders(tmp_path, keep=2)
    assert deleted == reports[:2]
    assert completed_report_folders(tmp_path) == reports[2:]


def test_prune_orders_by_folder_name_not_modification_time(tmp_path):
    reports = make_reports(tmp_path)
    os.utime(reports[-1], (0, 0))  # the newest by name looks ancient on disk
    prune_report_folders(tmp_path, keep=1)
    assert completed_report_folders(tmp_path) == [reports[-1]]


def test_prune_never_touches_unrelated_files_temp_folders_or_symlinks(tmp_path):
    make_reports(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "20200101T000000Z.pdf").write_bytes(b"a file, not a folder")
    (tmp_path / "old-report").mkdir()
    (tmp_path / ".tmp-20200101T000000Z-1").mkdir()
    elsewhere = tmp_path.parent / f"{tmp_path.name}-outside"
    elsewhere.mkdir()
    (tmp_path / "20190101T000000Z").symlink_to(elsewhere)
    prune_report_folders(tmp_path, keep=1)
    remaining = sorted(path.name for path in tmp_path.iterdir())
    assert remaining == [
        ".tmp-20200101T000000Z-1",
        "20190101T000000Z",
        "20200101T000000Z.pdf",
        "20260103T120000Z",
        "notes.txt",
        "old-report",
    ]
    assert elsewhere.is_dir()


def test_prune_with_fewer_reports_than_keep_deletes_nothing(tmp_path):
    make_reports(tmp_path, STAMPS[:2])
    assert prune_report_folders(tmp_path, keep=5) == []
    assert prune_report_folders(tmp_path / "absent", keep=5) == []


def test_prune_refuses_to_keep_nothing(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        prune_report_folders(tmp_path, keep=0)


def test_publish_renames_a_temp_folder_and_never_overwrites(tmp_path):
    first = new_temp_folder(tmp_path, "20260326T101500Z")
    (first / "report.pdf").write_bytes(b"first")
    second = new_temp_folder(tmp_path, "20260326T101500Z")
    assert publish_report_folder(first, "20260326T101500Z").name == "20260326T101500Z"
    assert publish_report_folder(second, "20260326T101500Z").name == "20260326T101500Z-2"
    assert (tmp_path / "20260326T101500Z" / "report.pdf").read_bytes() == b"first"
    assert not first.exists() and not second.exists()


def test_stale_temp_folders_are_removed_and_fresh_ones_kept(tmp_path):
    stale, fresh = tmp_path / ".tmp-a", tmp_path / ".tmp-b"
    stale.mkdir()
    fresh.mkdir()
    day_old = time.time() - 86_400
    os.utime(stale, (day_old, day_old))
    make_reports(tmp_path, STAMPS[:1])
    assert remove_stale_temp_folders(tmp_path) == [stale]
    assert fresh.is_dir() and (tmp_path / STAMPS[0]).is_dir()


def test_report_stamp_is_utc():
    moment = datetime.fromisoformat("2026-03-26T11:15:00+01:00")
    assert report_stamp(moment) == "20260326T101500Z"
    assert report_stamp(datetime(2026, 3, 26, 10, 15, tzinfo=UTC)) == "20260326T101500Z"
