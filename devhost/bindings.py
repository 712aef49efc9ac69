"""The host's side of the bindings, for calling functions outside the Functions host.

Tests, the local runner and the benchmark call each function through its real entry point
(`FunctionBuilder.build().get_user_function()`), so they need what the host would hand over:
Event Hubs batches decoded by `azure.functions`' own trigger converter from the wire shape the host
sends for `cardinality=many` + `dataType=binary`, and `Out` objects to collect what a function sets.
"""

from __future__ import annotations

import json
from collections import UserDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions._eventhub import EventHubEvent
from azure.functions.eventhub import EventHubTriggerConverter
from azure.functions.meta import Datum

T = TypeVar("T")


@cache
def indexed_functions() -> dict[str, Any]:
    """`function_app.app`'s functions by name, indexed once as the worker does.

    `FunctionApp.get_functions()` remembers the names it has seen, so a second call reports every
    function as a duplicate; everything outside the host goes through this one cached index.
    """
    from function_app import app

    return {str(fn.get_function_name()): fn for fn in app.get_functions()}


def user_function(name: str) -> Callable[..., Any]:
    """The real entry point of one function, as the worker invokes it."""
    entry: Callable[..., Any] = indexed_functions()[name].get_user_function()
    return entry


class Out(func.Out[T], Generic[T]):
    """What the worker passes for an output binding: holds the value the function sets."""

    def __init__(self) -> None:
        self._value: T | None = None
        self.was_set = False

    def set(self, val: T) -> None:
        self._value = val
        self.was_set = True

    def get(self) -> T:
        if self._value is None:
            raise LookupError("the function did not set this output")
        return self._value


def _host_time(moment: datetime) -> str:
    # The host writes 7 fractional digits; the converter trims them, so mimic the real shape.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def eventhub_batch(
    bodies: Sequence[bytes],
    *,
    partition: str = "0",
    first_sequence_number: int = 0,
    enqueued: Sequence[datetime] | None = None,
    event_hub: str = "transactions",
    consumer_group: str = "scoring",
    decode: bool = True,
    properties: Sequence[dict[str, Any]] | None = None,
) -> list[func.EventHubEvent]:
    """Decode a batch exactly as the Python worker does for an Event Hubs trigger with cardinality=many.

    `decode=False` builds the same `EventHubEvent` objects directly instead of through the worker's
    converter, whose datetime parsing (up to six `strptime` formats per event) would otherwise be
    most of a local run's time. The tests keep the default, so the converter's path stays covered.
    """
    now = datetime.now(UTC)
    times = list(enqueued) if enqueued is not None else [now] * len(bodies)
    system_properties = [
        {
            "EnqueuedTimeUtc": _host_time(times[i]),
            "SequenceNumber": first_sequence_number + i,
            "Offset": str((first_sequence_number + i) * 1024),
            "PartitionKey": None,
        }
        for i in range(len(bodies))
    ]
    metadata: dict[str, Datum] = {
        "SystemPropertiesArray": Datum(json.dumps(system_properties), "json"),
        "PartitionContext": Datum(
            json.dumps({"EventHubName": event_hub, "ConsumerGroup": consumer_group, "PartitionId": partition}),
            "json",
        ),
    }
    if properties is not None:
        # Each event's application properties, e.g. the Diagnostic-Id producer SDKs set for tracing.
        metadata["PropertiesArray"] = Datum(json.dumps(list(properties)), "json")
    if not decode:
        return [
            EventHubEvent(
                body=body,
                trigger_metadata=metadata,
                enqueued_time=times[i],
                sequence_number=first_sequence_number + i,
                offset=(first_sequence_number + i) * 1024,  # type: ignore[arg-type]  # the converter passes an int
            )
            for i, body in enumerate(bodies)
        ]
    data = Datum(SimpleNamespace(bytes=list(bodies)), "collection_bytes")
    events = EventHubTriggerConverter.decode(data, trigger_metadata=metadata)
    assert isinstance(events, list), "cardinality=many always decodes to a list"
    return events


def documents(out: Out[func.DocumentList]) -> list[dict[str, Any]]:
    """The documents a function set on a Cosmos DB output, as plain dicts (empty if never set)."""
    if not out.was_set:
        return []
    # `Document` is a `UserDict`; its documented `.data` attribute is the plain dict, which
    # spares a per-key copy through Python-level __getitem__.
    return [d.data if isinstance(d, UserDict) else dict(d) for d in out.get()]


def document_list(docs: Sequence[dict[str, Any]]) -> func.DocumentList:
    """What the Cosmos DB trigger's converter hands a function: a `DocumentList` of `Document`s.

    Built through `UserDict`'s documented `.data` attribute: `Document.from_dict` copies key by key
    through Python-level __setitem__, which dominated a local run's publishing cost.
    """
    out = func.DocumentList()
    for d in docs:
        doc = func.Document.__new__(func.Document)
        doc.data = d
        out.append(doc)
    return out
