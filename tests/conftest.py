"""Shared fixtures: clean settings per test, and the app's functions by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.settings import get_settings

APP_SETTINGS = (
    "GENERATE_MAX_COUNT",
    "GENERATOR_FRAUD_RATE",
    "GENERATOR_SEED",
    "GENERATOR_TIMER_COUNT",
    "MODEL_DIR",
    "FRAUD_THRESHOLD",
    "POWERBI_PUSH_URL",
    "POWERBI_TIMEOUT_SECONDS",
    "POWERBI_PUBLISH",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
)


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from default settings, whatever the developer's shell exports."""
    for name in APP_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def user_function() -> Callable[[str], Callable[..., Any]]:
    """Look up a function of `function_app.app` by name and return its real entry point."""
    from devhost.bindings import user_function as lookup

    return lookup
