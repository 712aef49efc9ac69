"""The process's caches in one registry: what tests and the local host reset to start as a fresh process.

Each module that keeps process-wide state registers how to forget it (settings parsed once, the
state store, the generators' stream and Event Hubs sender, the telemetry exporter), so a reset is
one call, `reset_all()`, and no test or host has to know the list.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_lock = threading.Lock()
_resets: dict[str, Callable[[], None]] = {}


def register(name: str, reset: Callable[[], None]) -> None:
    """Remember how to forget one cache; registering a name again replaces its reset."""
    with _lock:
        _resets[name] = reset


def names() -> list[str]:
    """The registered caches, in registration order."""
    with _lock:
        return list(_resets)


def reset(*names: str) -> None:
    """Forget the named caches only (a host that changed some settings and keeps the rest).

    A name not registered yet belongs to a module not imported yet, which holds nothing to forget.
    """
    with _lock:
        resets = [_resets[n] for n in names if n in _resets]
    for forget in resets:
        forget()


def reset_all() -> None:
    """Forget every registered cache: the next use builds it again from the settings, as a new process would."""
    with _lock:
        resets = list(_resets.values())
    for forget in resets:
        forget()
