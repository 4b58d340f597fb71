"""Page objects for the Dagster 1.13 web UI: what a person sees and clicks, located by text and role."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

# The run page's title, e.g. "Runs | 0c1537fa [SUCCESS]", follows the run's status live.
TERMINAL_RUN_TITLE = re.compile(r"\[(SUCCESS|FAILURE|CANCELED)\]")
# CSS-module class of an asset node's name in the graph (the hash after it changes per build).
ASSET_NODE_NAME = '[class*="AssetNode_assetName"]'


def shows_name(label: str, name: str) -> bool:
    """Whether a graph label is ``name``, or ``name`` cut in the middle ("long_a…name")."""
    if label == name:
        return True
    head, ellipsis, tail = label.partition("…")
    return bool(ellipsis) and len(label) < len(name) and name.startswith(head) and name.endswith(tail)


class DagsterUI:
    def __init__(self, page: Page, base_url: str, screenshots: Path) -> None:
        self.page = page
        self.base_url = base_url
        self.screenshots = screenshots
        self.taken: list[Path] = []

    def screenshot(self, name: str) -> Path:
        path = self.screenshots / f"{len(self.taken) + 1:02d}-{name}.png"
        self.page.screenshot(path=path)
        self.taken.append(path)
        return path

    def open_global_lineage(self) -> AssetLineagePage:
        self.page.goto(f"{self.base_url}/asset-groups")
        expect(self.page.get_by_text("Global asset lineage", exact=True)).to_be_visible()
        return AssetLineagePage(self.page)

    def open_asset(self, name: str) -> AssetPage:
        self.page.goto(f"{self.base_url}/assets/{name}")
        return AssetPage(self.page, name)


class AssetLineagePage:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.materialize_all_button = page.get_by_role("button", name=re.compile(r"\bMaterialize all$"))
        self.launched_run_link = page.get_by_role("link", name="View", exact=True)  # in the "Launched run" toast
        expect(self.materialize_all_button).to_be_enabled()

    def expand_all_groups(self) -> None:
        """Groups start collapsed; the graph's settings menu expands them all (only offered for 2+ groups)."""
        self.page.get_by_role("button", name="settings", exact=True).click()
        expand = self.page.get_by_role("menuitem", name="Expand all groups")
        if expand.count():
            expand.click()
        self.page.keyboard.press("Escape")  # the menu stays open after a click
        expect(self.page.get_by_role("dialog")).to_have_count(0)

    def asset_labels(self) -> list[str]:
        names = self.page.locator(ASSET_NODE_NAME)
        expect(names.first).to_be_visible()
        return [text.strip() for text in names.all_inner_texts()]

    def missing_assets(self, expected: list[str], timeout_seconds: float = 10) -> list[str]:
        """Names in ``expected`` that no node of the graph shows (polled while the layout settles)."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            labels = self.asset_labels()
            missing = [name for name in expected if not any(shows_name(label, name) for label in labels)]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.2)

    def materialize_all(self) -> None:
        """Click "Materialize all" and wait for the "Launched run" toast."""
        self.materialize_all_button.click()
        dialog = self.page.get_by_role("dialog")
        expect(self.launched_run_link.or_(dialog).first).to_be_visible()
        if not self.launched_run_link.is_visible():
            # A launch error is shown as an alert; a launchpad (config, partitions) has a launch button.
            launch = dialog.get_by_role("button", name=re.compile(r"^(Launch|Materialize)"))
            if not launch.count():
                raise AssertionError(f"Materialize all opened a dialog instead of a run:\n{dialog.inner_text()}")
            launch.first.click()
        expect(self.launched_run_link).to_be_visible()

    def open_launched_run(self) -> RunPage:
        self.launched_run_link.click()
        self.page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
        return RunPage(self.page)


class RunPage:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.run_id = page.url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]

    def wait_for_end(self, timeout_seconds: float) -> str:
        """SUCCESS, FAILURE or CANCELED, once the run has ended."""
        expect(self.page).to_have_title(TERMINAL_RUN_TITLE, timeout=timeout_seconds * 1000)
        return TERMINAL_RUN_TITLE.search(self.page.title()).group(1)

    def expect_status_tag(self, text: str) -> None:
        """The header's tag next to the run id ("Success", "Failure")."""
        expect(self.page.get_by_text(text, exact=True).first).to_be_visible()

    def step_counts(self) -> str:
        """The right-hand panel's summary, e.g. "Succeeded (4)", for failure messages."""
        headers = self.page.get_by_text(re.compile(r"^(Preparing|Executing|Errored|Succeeded|Not executed) \(\d+\)$"))
        return ", ".join(headers.all_inner_texts())


class AssetPage:
    def __init__(self, page: Page, name: str) -> None:
        self.page = page
        self.name = name

    def metadata_row(self, key: str) -> Locator:
        row = self.page.get_by_role("row").filter(has=self.page.get_by_text(key, exact=True))
        expect(row).to_have_count(1)
        return row

    def metadata_value(self, key: str) -> str:
        """The value cell (the last one: key, timestamp, value) of the latest materialization's ``key``."""
        return self.metadata_row(key).get_by_role("cell").last.inner_text().strip()

    def metadata_int(self, key: str) -> int:
        return int(self.metadata_value(key).replace(",", ""))
