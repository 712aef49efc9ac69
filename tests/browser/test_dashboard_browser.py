"""The dashboard page in a real chromium: counters move, charts draw, reasons show, no console errors."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from devhost.dashboard import DashboardServer, DashboardState
from shared.generator import TransactionGenerator

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).resolve().parents[2] / ".test-output" / "browser" / "dashboard.png"
THRESHOLD = 0.62
MODEL_VERSION = "xgb-demo-feeder"
RISKY_RECIPIENTS = frozenset({"travel", "electronics", "jewelry", "gambling", "money_transfer"})
TICK_S = 0.05


def fake_scores(tx: dict[str, Any], noise: float) -> tuple[float, list[dict[str, Any]]]:
    """A plausible probability and reasons for one transaction: suspicious fields push it up, so does the label."""
    pushes = {
        "amount": 0.9 * math.log(max(tx["amount"], 1.0) / 60.0),
        "foreign_transaction": 1.6 * tx["foreign_transaction"],
        "category_recipient": 1.3 if tx["category_recipient"] in RISKY_RECIPIENTS else -0.4,
        "transaction_type": 0.7 if tx["transaction_type"] == "online" else -0.3,
        "day_of_week": 0.4 if tx["day_of_week"] in ("saturday", "sunday") else 0.0,
    }
    z = -4.2 + sum(pushes.values()) + 2.4 * tx["is_fraud"] + noise
    probability = 1.0 / (1.0 + math.exp(-z))
    top = sorted(((v, k) for k, v in pushes.items() if v > 0), reverse=True)[:3]
    return probability, [{"field": k, "contribution": round(v, 4)} for v, k in top]


def published_row(tx: dict[str, Any], noise: float) -> dict[str, Any]:
    """What the change feed would publish for `tx`: the Power BI row plus `reasons` on flagged rows."""
    probability, reasons = fake_scores(tx, noise)
    flagged = probability >= THRESHOLD
    return {
        "id": tx["id"],
        "timestamp": tx["timestamp"],
        "account_id": tx["account_id"],
        "amount": tx["amount"],
        "category_recipient": tx["category_recipient"],
        "transaction_type": tx["transaction_type"],
        "transaction_method": tx["transaction_method"],
        "foreign_transaction": tx["foreign_transaction"],
        "fraud_probability": probability,
        "is_flagged": flagged,
        "threshold": THRESHOLD,
        "model_version": MODEL_VERSION,
        "scored_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "is_fraud": tx["is_fraud"],
        "top_reason": reasons[0]["field"] if flagged and reasons else "",
        "reasons": reasons if flagged else [],
    }


def feed(state: DashboardState, stop: threading.Event) -> None:
    """Record a few thousand rows a second, with a gently varying rate, until told to stop."""
    generator = TransactionGenerator(fraud_rate=0.10, seed=20261121)
    rng = np.random.default_rng(7)
    tick = 0
    while not stop.is_set():
        n = int(250 + 150 * math.sin(tick / 15.0) + rng.integers(0, 60))
        transactions = generator.generate(n)
        noise = rng.normal(0.0, 0.8, n)
        rejected = int(rng.poisson(n * 0.004))
        state.record_generated(n + rejected)
        state.record_published([published_row(tx, float(e)) for tx, e in zip(transactions, noise, strict=True)])
        if rejected:
            reasons = ["missing", "out_of_range", "unknown_category", "invalid_json"]
            picks = rng.choice(len(reasons), size=rejected, p=[0.45, 0.3, 0.15, 0.1])
            state.record_rejected(rejected, {reasons[i]: int((picks == i).sum()) for i in set(picks.tolist())})
        state.record_latencies((rng.lognormal(mean=math.log(0.035), sigma=0.45, size=n)).tolist())
        tick += 1
        stop.wait(TICK_S)


@pytest.fixture
def live_dashboard() -> Iterator[DashboardServer]:
    """A dashboard server whose state a background thread keeps feeding."""
    state = DashboardState()
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(state, stop), name="dashboard-feeder", daemon=True)
    with DashboardServer(state) as server:
        feeder.start()
        try:
            yield server
        finally:
            stop.set()
            feeder.join(timeout=10)


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
        assert rows.first.locator("[data-testid=reason]").count() >= 1
        assert page.locator("[data-testid=rejected-reasons] li[data-reason=missing]").count() == 1

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert problems == []
    finally:
        page.close()
