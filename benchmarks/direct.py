"""The baseline the worker path is measured against: a function called directly, as a plain Python callable.

Azure never does this (devhost.worker is how every function runs here); the benchmark keeps it only
to show what the worker engine adds. The Event Hubs events are built by `azure.functions`' own
trigger converter from the host's wire shape, outside any timed region.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import azure.functions as func
from azure.functions.eventhub import EventHubTriggerConverter
from azure.functions.meta import Datum

from devhost.host_messages import host_datetime


class Out[T](func.Out[T]):
    """What the worker passes for an output binding: holds the value the function sets."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        if self._value is None:
            raise LookupError("the function did not set this output")
        return self._value


def eventhub_events(
    bodies: Sequence[bytes],
    enqueued: Sequence[datetime],
    first_sequence_number: int = 0,
    partition: str = "0",
    properties: Sequence[dict[str, Any]] | None = None,
) -> list[func.EventHubEvent]:
    """A cardinality-many batch decoded by the library's converter, from host-shaped (zone-less) metadata."""
    system = [
        {"EnqueuedTimeUtc": host_datetime(t), "SequenceNumber": first_sequence_number + i, "Offset": str(i)}
        for i, t in enumerate(enqueued)
    ]
    metadata = {
        "SystemPropertiesArray": Datum(json.dumps(system), "json"),
        "PartitionContext": Datum(json.dumps({"PartitionId": partition}), "json"),
    }
    if properties is not None:
        metadata["PropertiesArray"] = Datum(json.dumps(list(properties)), "json")
    data = Datum(SimpleNamespace(bytes=list(bodies)), "collection_bytes")
    events = EventHubTriggerConverter.decode(data, trigger_metadata=metadata)
    assert isinstance(events, list)
    return events


def context(trace_parent: str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") -> Any:
    """The part of the invocation context ScoreTransactions reads: the host's trace parent."""
    return SimpleNamespace(trace_context=SimpleNamespace(trace_parent=trace_parent))


def documents(out: Out[Any]) -> list[Any]:
    """What a function set on a Cosmos DB output."""
    return list(out.get())
