"""functions.eventhub_time: pinned to the library it replaces, equal to it on every host shape, switchable off."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import version

import azure.functions
import orjson
import pytest
from azure.functions.eventhub import EventHubTriggerConverter
from hypothesis import given, settings
from hypothesis import strategies as st

from devhost.host_messages import eventhub_input, host_datetime
from devhost.worker import Worker
from functions import eventhub_time
from shared.generation.generator import TransactionGenerator

pytestmark = pytest.mark.unit

library_parse = eventhub_time._library_parse


def library_as_utc(text: str) -> datetime | None:
    """What azure-functions itself returns, with its naive (zone-less) results read as the UTC they are."""
    moment = library_parse(EventHubTriggerConverter, text)
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def test_pinned_to_the_installed_library(functions_worker: Worker) -> None:
    """Fails when azure-functions changes: re-read its `_parse_datetime`, re-measure, then move the pin.

    Installed when the worker indexes the app (function_app.py), as on Azure.
    """
    assert azure.functions.__version__ == version("azure-functions") == eventhub_time.PINNED_VERSION
    assert eventhub_time.installed()
    # The replaced method still has the shape the override was written against.
    assert EventHubTriggerConverter._parse_datetime.__func__ is eventhub_time._parse_datetime  # type: ignore[attr-defined]
    assert library_parse.__qualname__ == "_BaseConverter._parse_datetime"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-29T23:00:00.1234567", datetime(2025, 11, 29, 23, 0, 0, 123456, tzinfo=UTC)),
        ("2025-11-29T23:00:00.9999999", datetime(2025, 11, 29, 23, 0, 0, 999999, tzinfo=UTC)),
        ("2025-11-29T23:00:00.12", datetime(2025, 11, 29, 23, 0, 0, 120000, tzinfo=UTC)),
        ("2025-11-29T23:00:00", datetime(2025, 11, 29, 23, 0, 0, tzinfo=UTC)),
        ("2025-11-29T23:00:00Z", datetime(2025, 11, 29, 23, 0, 0, tzinfo=UTC)),
        ("2025-11-29T23:00:00.1234567Z", datetime(2025, 11, 29, 23, 0, 0, 123456, tzinfo=UTC)),
        ("2025-11-29T23:00:00.5+00:00", datetime(2025, 11, 29, 23, 0, 0, 500000, tzinfo=UTC)),
        ("2025-11-29T23:00:00-00:00", datetime(2025, 11, 29, 23, 0, 0, tzinfo=UTC)),
        # Not a host shape: handed to the library, made UTC.
        ("11/29/2025 23:00:00Z", datetime(2025, 11, 29, 23, 0, 0, tzinfo=UTC)),
        ("11/29/2025T23:00:00.5", datetime(2025, 11, 29, 23, 0, 0, 500000, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_every_host_shape_is_utc_aware(text: str | None, expected: datetime | None) -> None:
    """Zone-less, Z, +00:00, -00:00, seven fractional digits, no fraction: all UTC-aware, as the library's values."""
    parsed = eventhub_time.parse_enqueued_time(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)
        assert text is not None
        assert parsed == library_as_utc(text)


def test_what_neither_parses_still_raises_the_library_error() -> None:
    """A shape no one knows fails as the library fails (the override adds no silent fallback)."""
    with pytest.raises(ValueError, match="does not match format"):
        eventhub_time.parse_enqueued_time("29.11.2025 23:00")
    with pytest.raises(ValueError, match="does not match format"):
        eventhub_time.parse_enqueued_time("2025-11-29T23:00:00+02:00")


@settings(max_examples=500, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
    fraction=st.text(alphabet="0123456789", max_size=7),
    suffix=st.sampled_from(["", "Z", "+00:00", "-00:00"]),
)
def test_equals_the_library_on_generated_host_times(moment: datetime, fraction: str, suffix: str) -> None:
    """Any host shape (0 to 7 fractional digits, any of the four suffixes) parses as the library parses it."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + suffix
    assert eventhub_time.parse_enqueued_time(text) == library_as_utc(text)
    assert eventhub_time.parse_enqueued_time(host_datetime(moment)) == moment.replace(tzinfo=UTC)


def test_switched_off_the_library_parses() -> None:
    """ENQUEUED_TIME_PARSER=library (install(False)): the library's own (naive) result, untouched."""
    try:
        assert not eventhub_time.install(False)
        assert EventHubTriggerConverter._parse_datetime("2025-11-29T23:00:00.1234567") == datetime(
            2025, 11, 29, 23, 0, 0, 123456
        )
    finally:
        assert eventhub_time.install(True)
    assert EventHubTriggerConverter._parse_datetime("2025-11-29T23:00:00.1234567") == datetime(
        2025, 11, 29, 23, 0, 0, 123456, tzinfo=UTC
    )


def test_install_refuses_another_library_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """On an unpinned azure-functions the library keeps its parser (and a warning says why)."""
    eventhub_time.uninstall()
    try:
        monkeypatch.setattr(azure.functions, "__version__", "9.9.9")
        assert not eventhub_time.install()
        assert not eventhub_time.installed()
    finally:
        monkeypatch.undo()
        assert eventhub_time.install()


@pytest.mark.parametrize("parser", ["fast", "library"])
def test_worker_stores_the_same_enqueued_times(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch, parser: str
) -> None:
    """Through the worker, on or off, a zone-less host time is stored as the same UTC instant, whatever TZ says."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    eventhub_time.install(parser == "fast")
    try:
        enqueued = datetime(2025, 11, 29, 23, 0, 0, 123456, tzinfo=UTC)
        record = TransactionGenerator(seed=3).generate(1, now=enqueued)[0]
        inputs = eventhub_input([orjson.dumps(record)], enqueued=[enqueued])
        result = functions_worker.invoke("ScoreTransactions", *inputs)
    finally:
        monkeypatch.undo()
        time.tzset()
        eventhub_time.install(True)
    assert [d["enqueued_time"] for d in result.documents("scored")] == ["2025-11-29T23:00:00.123Z"]
