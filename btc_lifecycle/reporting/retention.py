"""Report folders on disk: naming, crash-safe publication and retention.

A completed report is a folder named by its UTC timestamp (``20260326T101500Z``, with ``-2``,
``-3``... when two land in the same second), optionally after a label that says what it reports
on (``v3-20260326T101500Z`` for model version 3). Work in progress lives in ``.tmp-*`` siblings,
which are never taken for reports.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
TEMP_PREFIX = ".tmp-"
T = TypeVar("T")
STALE_TEMP_AGE = timedelta(hours=1)

# A label has no hyphen, so the stamp and its ``-N`` suffix stay unambiguous after it, and no
# leading dot, so a report is never hidden or taken for a ``.tmp-*`` folder.
_LABEL = r"[0-9A-Za-z_][0-9A-Za-z._]*"
_REPORT_FOLDER = re.compile(rf"(?:({_LABEL})-)?(\d{{8}}T\d{{6}}Z)(?:-(\d+))?")


def report_stamp(moment: datetime) -> str:
    """``moment`` in UTC as a folder name; naive datetimes are taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def labelled_stamp(label: str, stamp: str) -> str:
    """``<label>-<stamp>``: a report folder name that says what it reports on. The label becomes
    part of a path: letters, digits, '.' and '_' only, not starting with a dot."""
    if not re.fullmatch(_LABEL, label):
        raise ValueError(f"a report label may hold only letters, digits, '.' and '_' (no leading '.'), got {label!r}")
    return f"{label}-{stamp}"


def _report_order(folder: Path) -> tuple[str, int, str] | None:
    # Ordered by time whatever the label: retention keeps the newest reports of a kind.
    match = _REPORT_FOLDER.fullmatch(folder.name)
    if match is None or folder.is_symlink() or not folder.is_dir():
        return None
    return match.group(2), int(match.group(3) or 1), match.group(1) or ""


def completed_report_folders(root: Path) -> list[Path]:
    """Timestamp-named report folders under ``root``, oldest first."""
    if not root.is_dir():
        return []
    ordered = [(order, path) for path in root.iterdir() if (order := _report_order(path))]
    return [path for _, path in sorted(ordered)]


def new_temp_folder(root: Path, stamp: str) -> Path:
    """A fresh ``.tmp-<stamp>-<pid>`` folder under ``root`` to build a report in."""
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{TEMP_PREFIX}{stamp}-{os.getpid()}-{time.monotonic_ns()}"
    folder.mkdir()
    return folder


def publish_report_folder(temp_folder: Path, stamp: str) -> Path:
    """Rename a finished temp folder to its timestamp name; atomic on one filesystem.

    Renaming onto an existing folder fails, so a second report in the same second gets the
    next free ``-N`` suffix rather than overwriting the first.
    """
    root = temp_folder.parent
    _flush_to_disk(temp_folder)
    for attempt in range(1, 1000):
        target = root / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        if target.exists():
            continue
        try:
            os.rename(temp_folder, target)
        except OSError:
            if target.exists():
                continue  # another process won the name between the check and the rename
            raise
        _flush_to_disk(root)
        return target
    raise FileExistsError(f"no free report folder name for {stamp} in {root}")


def _flush_to_disk(folder: Path) -> None:
    # Without fsync a power cut can persist the rename before the files' contents.
    for path in [*folder.iterdir(), folder]:
        if path.is_file() or path == folder:
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)


def prune_report_folders(root: Path, keep: int) -> list[Path]:
    """Delete the oldest completed report folders under ``root`` beyond the newest ``keep``.

    Only timestamp-named folders count; other files, symlinks and ``.tmp-*`` folders are left
    alone. Returns the deleted folders, oldest first.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1 so the newest report survives, got {keep}")
    doomed = completed_report_folders(root)[:-keep]
    for folder in doomed:
        # Renamed first so a crash mid-delete leaves a temp folder, not a broken report.
        trash = folder.with_name(f"{TEMP_PREFIX}deleting-{folder.name}")
        os.rename(folder, trash)
        shutil.rmtree(trash)
    return doomed


def remove_stale_temp_folders(root: Path, older_than: timedelta = STALE_TEMP_AGE) -> list[Path]:
    """Delete ``.tmp-*`` folders untouched for ``older_than``: leftovers of crashed builds.

    Younger ones may belong to a build still running in another process. Age is measured on
    the wall clock, like the folders' modification times, not on a report's logical time.
    """
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than.total_seconds()
    stale = [
        path
        for path in sorted(root.iterdir())
        if path.name.startswith(TEMP_PREFIX)
        and path.is_dir()
        and not path.is_symlink()
        and path.stat().st_mtime < cutoff
    ]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def build_report_folder(
    kind_root: Path, name: str, keep_last: int | None, write: Callable[[Path], T]
) -> tuple[Path, T]:
    """Write a report into a temporary sibling with ``write(folder)``, rename it to ``name`` only
    when complete, then keep the newest ``keep_last`` (all when None). A failure removes the
    temporary folder and raises: nothing half-written is ever taken for a report."""
    remove_stale_temp_folders(kind_root)
    temp = new_temp_folder(kind_root, name)
    try:
        written = write(temp)
        folder = publish_report_folder(temp, name)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    if keep_last is not None:
        prune_report_folders(kind_root, keep_last)
    return folder, written
