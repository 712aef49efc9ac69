"""The one registry of process caches: every module with process-wide state is in it, and a reset forgets it."""

from __future__ import annotations

import pytest

from shared import caches

pytestmark = pytest.mark.unit


def test_the_app_registers_every_process_cache() -> None:
    """Importing the app registers the caches the runner and the tests reset by name."""
    import function_app  # noqa: F401

    assert set(caches.names()) >= {"settings", "state store", "telemetry", "generator stream", "event hubs sender"}


def test_reset_all_gives_a_fresh_settings_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a reset the next use reads the environment again, as a new process would."""
    from shared.settings import get_settings

    monkeypatch.setenv("GENERATE_MAX_COUNT", "7")
    caches.reset_all()
    assert get_settings().max_generate_count == 7
    monkeypatch.setenv("GENERATE_MAX_COUNT", "8")
    assert get_settings().max_generate_count == 7
    caches.reset("settings")
    assert get_settings().max_generate_count == 8
