"""Page objects for the Dagster 1.13 web UI: what a person sees and clicks, located by text and role."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

# The run page's title, e.g. "Runs | 0c1537fa [SUCCESS]", follows the run's status live.
TERMINAL_RUN_TITLE = re.compile(r"\[(SUCCESS|FAILURE|CANCELED)\]")
# A backfill's status tag once it has ended ("In progress", "Canceling" and "Failing" are not).
TERMINAL_BACKFILL_STATUS = re.compile(r"^Status\s*(Succeeded|Completed|Failed|Canceled)\b")
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

    def automation_shows(self, names: list[str]) -> None:
        """The "Automation" page lists each of ``names`` (schedules and sensors, with their next tick)."""
        self.page.goto(f"{self.base_url}/automation")
        for name in names:
            expect(self.page.get_by_text(name, exact=True).first).to_be_visible()

    def open_asset(self, name: str) -> AssetPage:
        self.page.goto(f"{self.base_url}/assets/{name}")
        return AssetPage(self.page, name)

    def open_partitions(self, name: str) -> AssetPartitionsPage:
        """The asset's "Partitions" tab: every day, its status, and a chosen day's latest materialization."""
        self.page.goto(f"{self.base_url}/assets/{name}?view=partitions")
        expect(self.page.get_by_role("tab", name="Partitions", exact=True)).to_have_attribute("aria-selected", "true")
        return AssetPartitionsPage(self.page, name)


class AssetLineagePage:
    def __init__(self, page: Page) -> None:
        self.page = page
        # "Materialize all…" (with an ellipsis) when some asset is partitioned: it opens a dialog.
        self.materialize_all_button = page.get_by_role("button", name=re.compile(r"\bMaterialize all…?$"))
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

    def materialize_all(self) -> PartitionsDialog:
        """Click "Materialize all…": with partitioned assets, it asks which partitions first."""
        self.materialize_all_button.click()
        return PartitionsDialog(self.page)


class PartitionsDialog:
    """The launch dialog of partitioned assets: "Partition selection", "Launch backfill" or "Launch 1 run"."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialog = page.get_by_role("dialog")
        expect(self.dialog.get_by_text("Partition selection", exact=True)).to_be_visible()
        # The count next to "Partition selection": "0 partitions", "1 partition", "3 partitions".
        self.selected = self.dialog.get_by_text(re.compile(r"^[\d,]+ partitions?$"))

    def title(self) -> str:
        return self.dialog.get_by_text(re.compile(r"^Launch runs to materialize ")).inner_text()

    def select(self, partitions: str, count: int) -> None:
        """Type a selection ("2024-01-02", "[2024-01-01...2024-01-03]") and see ``count`` partitions selected.

        The dialog first offers only the last 90 days: older days need "Show all partitions".
        """
        textbox = self.dialog.get_by_role("textbox")
        expect(textbox).to_be_visible()
        show_all = self.dialog.get_by_role("button", name="Show all partitions")
        if show_all.count():
            show_all.click()
            # Typed too early, a day outside the last 90 days is "not found": wait for the range to widen.
            expect(show_all).to_have_count(0)
        textbox.fill(partitions)
        textbox.press("Enter")
        noun = "partition" if count == 1 else "partitions"
        expect(self.selected).to_have_text(f"{count:,} {noun}")

    def launch_backfill(self) -> BackfillPage:
        """Click "Launch backfill", then the "View" link of the "Created backfill" toast."""
        self.dialog.get_by_role("button", name="Launch backfill", exact=True).click()
        toast = self.page.get_by_text(re.compile(r"^Created backfill")).first
        expect(toast).to_be_visible()
        self.page.get_by_role("link", name="View", exact=True).click()
        self.page.wait_for_url(re.compile(r"/runs/b/\w+"))
        return BackfillPage(self.page)

    def launch_run(self) -> RunPage:
        """Click "Launch 1 run", then the "View" link of the "Launched run" toast."""
        self.dialog.get_by_role("button", name="Launch 1 run", exact=True).click()
        self.page.get_by_role("link", name="View", exact=True).click()
        self.page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
        return RunPage(self.page)


class BackfillPage:
    """``/runs/b/<id>``: the backfill's status, and per asset how many targeted partitions succeeded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.backfill_id = page.url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
        # The "Status" detail of the overview: its label, then a tag ("In progress", "Succeeded").
        self.status = page.get_by_text("Status", exact=True).locator("xpath=..")

    def wait_for_end(self, timeout_seconds: float) -> str:
        """The status tag once terminal: "Succeeded", "Completed", "Failed" or "Canceled" (the page polls)."""
        expect(self.status).to_have_text(TERMINAL_BACKFILL_STATUS, timeout=timeout_seconds * 1000)
        return TERMINAL_BACKFILL_STATUS.search(self.status.inner_text()).group(1)

    def asset_progress(self, name: str) -> str:
        """The asset's row from its progress on: "100% completed 3 0 3 0" (partitions targeted, in
        progress, succeeded, failed) or "100% completed - - Succeeded -" (unpartitioned)."""
        link = self.page.locator(f'a[href="/assets/{name}"]')
        other_assets = self.page.locator(f'a[href^="/assets/"]:not([href="/assets/{name}"])')
        # The outermost block holding this asset's link and no other asset's: its row.
        row = self.page.locator("div").filter(has=link).filter(has_not=other_assets).first
        text = " ".join(row.inner_text().split())
        return text[re.search(r"\d+% completed", text).start() :]

    def listed_assets(self) -> list[str]:
        """Names of the assets the backfill overview lists (links to ``/assets/<name>``)."""
        links = self.page.locator('a[href^="/assets/"]')
        expect(links.first).to_be_visible()
        return sorted({href.rsplit("/", 1)[-1] for href in (link.get_attribute("href") for link in links.all())})


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

    def row_count(self) -> int:
        """The overview's "Row count" (``dagster/row_count`` of the latest materialization), e.g. "3,000"."""
        label = self.page.get_by_text("Row count", exact=True)
        expect(label).to_be_visible()
        value = label.locator("xpath=..").inner_text().removeprefix("Row count").strip()
        return int(value.replace(",", ""))


class AssetPartitionsPage:
    def __init__(self, page: Page, name: str) -> None:
        self.page = page
        self.name = name
        self.materialize_button = page.get_by_role("button", name=re.compile(r"\bMaterialize…?$"))

    def count_of(self, status: str) -> int:
        """The number in a status filter's label, e.g. 3 for "Materialized (3)"."""
        label = self.page.get_by_role("checkbox", name=re.compile(rf"^{status} \([\d,]+\)$"))
        expect(label).to_have_count(1)
        name = self.page.get_by_text(re.compile(rf"^{status} \([\d,]+\)$")).inner_text()
        return int(re.search(r"\(([\d,]+)\)", name).group(1).replace(",", ""))

    def select(self, partition: str) -> PartitionDetails:
        """Filter the list by name and click the partition: the right-hand panel shows its latest materialization."""
        self.page.get_by_role("textbox", name="Filter by name…").fill(partition)
        # The list's label also exists as a hidden copy, measured for middle truncation.
        self.page.get_by_text(partition, exact=True).filter(visible=True).first.click()
        self.page.wait_for_url(re.compile(rf"[?&]partition={re.escape(partition)}\b"))
        return PartitionDetails(self.page, partition)

    def materialize(self) -> PartitionsDialog:
        self.materialize_button.click()
        return PartitionsDialog(self.page)


class PartitionDetails:
    """The partitions view's right-hand panel for one partition."""

    def __init__(self, page: Page, partition: str) -> None:
        self.page = page
        self.partition = partition
        expect(page.get_by_text("Latest materialization", exact=True)).to_be_visible()
        self.run_link = page.get_by_role("link", name=re.compile(r"^[0-9a-f]{8}$"))

    def latest_run(self) -> str:
        """The short id (8 hex digits) of the run that last materialized this partition."""
        expect(self.run_link).to_have_count(1)
        return self.run_link.inner_text().strip()

    def metadata_int(self, key: str) -> int:
        row = self.page.get_by_role("row").filter(has=self.page.get_by_role("cell", name=key, exact=True))
        expect(row).to_have_count(1)
        return int(row.get_by_role("cell").nth(1).inner_text().strip().replace(",", ""))
