"""A narrow, switchable override of azure-functions' Event Hubs enqueued-time parsing.

Why: before `ScoreTransactions` runs, the worker turns every event of a batch into an
`EventHubEvent`, and azure-functions 2.3.0 parses each event's `EnqueuedTimeUtc` by trying twelve
UTC `strptime` formats, each raising, before a zone-less one matches (`meta._parse_datetime`).
That is about 130 µs per event on the worker's event-loop thread, some 20 times our own scoring
cost per transaction, and it holds up every other invocation in the process while it runs
(docs/worker.md, "Behaviour of the engine"). One `fromisoformat` does the same job in well under a microsecond.

What: `EventHubTriggerConverter._parse_datetime` (that class only; no other trigger's times) is
replaced by `parse_enqueued_time` for exactly the shapes the host sends: `YYYY-MM-DDTHH:MM:SS`,
with or without up to seven fractional digits, with no zone (UTC wall time from a .NET DateTime
of Kind Unspecified), `Z`, `+00:00` or `-00:00`. Any other text goes to the library's own parser.
Unlike the library, which returns a naive datetime for the zone-less form, the result is always
UTC-aware. Seven fractional digits are cut to six, as the library cuts them.

Guards:
- Pinned: it installs only on azure-functions `PINNED_VERSION`, whose parser it was read from and
  measured against; on any other version it leaves the library alone and logs a warning, and
  tests/functions/test_eventhub_time.py fails until someone re-reads the new library.
- Switchable: ENQUEUED_TIME_PARSER=library leaves the library's parser in place. The switch is read
  once, when `function_app.py` calls `install` while the worker indexes the app, before any batch
  is converted; nothing reads settings per event.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import azure.functions
from azure.functions.eventhub import EventHubTriggerConverter

logger = logging.getLogger(__name__)

PINNED_VERSION: Final = "2.3.0"
"""The azure-functions release whose `_parse_datetime` this replaces (requirements.txt pins it)."""

_HOST_SHAPE: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?(?:Z|[+-]00:00)?")

# The library's parser as a plain function of (cls, text), kept for the fallback and the off switch.
_library_parse: Final[Callable[[Any, str | None], datetime | None]] = EventHubTriggerConverter._parse_datetime.__func__  # type: ignore[attr-defined]


def parse_enqueued_time(text: str | None) -> datetime | None:
    """A host-sent enqueued time as a UTC-aware datetime; other shapes as the library parses them (made UTC)."""
    if not text:
        return None
    moment: datetime | None
    if type(text) is str and _HOST_SHAPE.fullmatch(text):
        moment = datetime.fromisoformat(text)
    else:
        moment = _library_parse(EventHubTriggerConverter, text)
        if moment is None:
            return None
    # The host's zone-less times are UTC wall time; the library's local formats are the same text.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _parse_datetime(cls: Any, datetime_str: str | None) -> datetime | None:
    return parse_enqueued_time(datetime_str)


def installed() -> bool:
    """Whether Event Hubs trigger conversion goes through this module (it may still be switched off)."""
    return getattr(EventHubTriggerConverter._parse_datetime, "__func__", None) is _parse_datetime


def install(enabled: bool = True) -> bool:
    """Route `EventHubTriggerConverter._parse_datetime` here, on the pinned library only; True if installed.

    `enabled=False` (ENQUEUED_TIME_PARSER=library) puts the library's parser back instead.
    """
    if not enabled:
        uninstall()
        return False
    if installed():
        return True
    if azure.functions.__version__ != PINNED_VERSION:
        logger.warning(
            "azure-functions %s is not %s: Event Hubs enqueued times keep the library's parser",
            azure.functions.__version__,
            PINNED_VERSION,
        )
        return False
    EventHubTriggerConverter._parse_datetime = classmethod(_parse_datetime)  # type: ignore[method-assign,assignment]
    return True


def uninstall() -> None:
    """Put the library's parser back (for measuring both through the same worker)."""
    if installed():
        EventHubTriggerConverter._parse_datetime = classmethod(_library_parse)  # type: ignore[method-assign,assignment]
