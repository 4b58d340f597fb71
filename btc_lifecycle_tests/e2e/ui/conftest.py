"""A running `dagster dev` on a replayed candle file, and headless Chromium driven by Playwright."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from btc_lifecycle_tests.conftest import write_generic_csv
from btc_lifecycle_tests.e2e.ui.dagster_dev import DagsterDev
from btc_lifecycle_tests.e2e.ui.dagster_ui import DagsterUI
from btc_lifecycle_tests.e2e.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: Playwright's own browser download is not used
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def chromium() -> Path:
    """The system Chromium; a local run without it skips, CI without it fails."""
    if CHROMIUM.is_file():
        return CHROMIUM
    message = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)"
    if in_ci():
        pytest.fail(f"{message}; CI is set, so a missing browser is a failure")
    pytest.skip(f"{message}; skipped because CI is unset")


@pytest.fixture
def candles_file(tmp_path: Path, generated_candles) -> Path:
    return write_generic_csv(generated_candles, tmp_path / "candles.csv")


@pytest.fixture
def dagster_dev(tmp_path: Path, candles_file: Path, chromium: Path):
    """Started, not yet ready (the test waits, so that its own start-up overlaps with Dagster's)."""
    server = DagsterDev(Workspace(tmp_path / "state"), candles_file, tmp_path / "dagster-dev.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def ui(request, tmp_path: Path, chromium: Path, dagster_dev: DagsterDev):
    from playwright.sync_api import sync_playwright

    screenshots = tmp_path / "screenshots"
    screenshots.mkdir()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(20_000)
            session = DagsterUI(page, dagster_dev.url, screenshots)
            yield session
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                session.screenshot("at-failure")
        finally:
            context.close()
            print(f"\nscreenshots: {screenshots}\ndagster dev log: {dagster_dev.log_path}")
