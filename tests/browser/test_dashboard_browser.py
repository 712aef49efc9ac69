"""The dashboard page in a real chromium: counters move, charts draw, reasons show, no console errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devhost.dashboard import DashboardServer
from devhost.dashboard_state import DashboardState
from devhost.runner import LocalPipeline, RunOptions
from devhost.store import SQLiteStore

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / ".test-output" / "browser" / "dashboard.png"
MODEL_VERSION = json.loads((ROOT / "model" / "fraud_model.metadata.json").read_text())["version"]


@pytest.fixture
def live_dashboard(tmp_path: Path) -> Iterator[DashboardServer]:
    """The dashboard of a real local pipeline run (the app's functions, embedded store) going on in the background."""
    state = DashboardState()
    pipeline = LocalPipeline(
        SQLiteStore(tmp_path / "pipeline.sqlite"),
        RunOptions(events=1_000_000, rate=3000, duration_s=60, partitions=2),
        observer=state,
    )
    pipeline.stream.send([b"{not json", b'{"id": "no-timestamp"}'])  # rejected events show on the page too
    runner = threading.Thread(target=pipeline.run, name="local-pipeline", daemon=True)
    with DashboardServer(state) as server:
        runner.start()
        try:
            yield server
        finally:
            pipeline.stop()
            runner.join(timeout=30)
            pipeline.close()


def counter(page: Page, testid: str) -> float:
    """The raw number behind a counter tile (its `data-value`), not the formatted text."""
    raw = page.get_by_test_id(testid).get_attribute("data-value")
    assert raw, f"{testid} has no value yet"
    return float(raw)


def test_dashboard_updates_live(browser_context: BrowserContext, live_dashboard: DashboardServer) -> None:
    """Counters are non-zero and move between two reads; both charts, the table and reasons render."""
    page = browser_context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        page.goto(live_dashboard.url)
        page.wait_for_function(
            "() => Number(document.querySelector('[data-testid=scored-count]').dataset.value || 0) > 0",
            timeout=10_000,
        )

        first = {k: counter(page, k) for k in ("scored-count", "flagged-count", "generated-count")}
        page.wait_for_timeout(1500)
        second = {k: counter(page, k) for k in ("scored-count", "flagged-count", "generated-count")}
        for key, value in first.items():
            assert value > 0, key
            assert second[key] > value, key
        assert counter(page, "events-per-second") > 0
        assert 0 < counter(page, "precision") <= 1
        assert 0 < counter(page, "recall") <= 1
        assert counter(page, "latency-p99") > counter(page, "latency-p50") > 0
        assert page.get_by_test_id("status").inner_text() == "running"
        assert page.get_by_test_id("model-version").inner_text() == MODEL_VERSION

        # Wait for several complete seconds so the line chart has a shape worth a screenshot.
        page.wait_for_function(
            "() => (document.querySelector('#rate-chart path[data-series=scored]')?.getAttribute('d') || '')"
            ".split('L').length >= 6",
            timeout=15_000,
        )
        for series in ("scored", "flagged"):
            path = page.locator(f"#rate-chart path[data-series={series}]").get_attribute("d")
            assert path
            assert path.startswith("M")
        assert page.locator("[data-testid=histogram-bars] rect").count() >= 10
        assert page.get_by_test_id("threshold-line").count() == 1

        rows = page.locator("[data-testid=flagged-rows] tr[data-id]")
        assert 1 <= rows.count() <= 25
        chips = rows.first.locator("[data-testid=reason]")
        assert chips.count() >= 1
        # Each chip reads as the scorer's words for its reason ("no account history", "amount: 4.93"),
        # not as the feature's name, which is only the fallback for documents without words.
        shown = chips.evaluate_all("els => els.map(e => [e.dataset.field, e.firstChild.textContent])")
        for field, words in shown:
            assert field
            assert words.strip()
            assert words not in (field, field.replace("_", " ")), shown
        assert page.locator("[data-testid=rejected-reasons] li[data-reason='body:invalid_json']").count() == 1

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert problems == []
    finally:
        page.close()
