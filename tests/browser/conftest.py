"""Debian's chromium driven by Playwright, with a throwaway profile; skipped (or failed in CI) when absent."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

CHROMIUM = Path("/usr/bin/chromium")
# No network on the test machines: without the background-networking flags chromium keeps
# trying (and failing) to reach its update and sync services.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1440, "height": 960}


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the Python package playwright is not installed"
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (Debian package chromium)"
    return None


# Module scope, not session: Playwright's sync API keeps an asyncio event loop running on the main
# thread while it is open, so every later test in the run that calls asyncio.run() would fail with
# "cannot be called from a running event loop". Closed at the end of the browser module, it is gone
# before the other test files run.
@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """A headless chromium context on a fresh user-data-dir, shared by one module's browser tests."""
    missing = _missing()
    if missing is not None:
        message = f"{missing}; run `make test`, which installs what the browser tests need"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]},
        )
        try:
            yield context
        finally:
            context.close()
