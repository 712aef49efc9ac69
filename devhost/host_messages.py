"""The messages the Functions host sends the Python worker, per trigger, built as the .NET host builds them.

Each shape is read from Microsoft's host and extension source (docs/worker.md, "Message shapes", names the files):
- Event Hubs, cardinality many, dataType binary: bodies as `collection_bytes`; trigger metadata
  `PartitionContext` (json), `PartitionKeyArray` and `OffsetArray` (`collection_string`, empty
  entries dropped), `SequenceNumberArray` (`collection_sint64`), `EnqueuedTimeUtcArray`,
  `PropertiesArray` and `SystemPropertiesArray` (json). Enqueued times are written by Newtonsoft
  from a `DateTime` of Kind Unspecified: UTC wall time with up to seven fractional digits and *no
  zone* (`2025-11-29T23:00:00.1234567`).
- HTTP: `RpcHttp` with lower-cased headers, empty query values dropped, the body always bytes;
  nothing in trigger metadata (the worker declares RpcHttpTriggerMetadataRemoved).
- Timer: the `TimerInfo` as json. Cosmos DB change feed: the documents as one json array, no
  trigger metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from devhost.worker import protos


def host_datetime(moment: datetime) -> str:
    """`moment` as the host writes `EnqueuedTimeUtc`: UTC, no zone, up to 7 fractional digits, trailing zeros cut."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    ticks = f"{utc.microsecond * 10:07d}".rstrip("0")  # .NET's "FFFFFFF": 100 ns ticks, no trailing zeros
    return f"{text}.{ticks}" if ticks else text


def _json(value: Any) -> Any:
    return protos().TypedData(json=orjson.dumps(value).decode())


def eventhub_input(
    bodies: Sequence[bytes],
    *,
    partition: str = "0",
    first_sequence_number: int = 0,
    enqueued: Sequence[datetime] | None = None,
    partition_keys: Sequence[str | None] | None = None,
    properties: Sequence[Mapping[str, Any]] | None = None,
    event_hub: str = "transactions",
    consumer_group: str = "scoring",
    namespace: str = "fraud-ns.servicebus.windows.net",
    arg_name: str = "events",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, trigger metadata) of one Event Hubs delivery of `bodies` from one partition."""
    p = protos()
    n = len(bodies)
    now = datetime.now(UTC)
    times = [host_datetime(t) for t in (enqueued if enqueued is not None else [now] * n)]
    keys = list(partition_keys) if partition_keys is not None else [None] * n
    sequence_numbers = [first_sequence_number + i for i in range(n)]
    offsets = [str(s * 1024) for s in sequence_numbers]
    props = [dict(x) for x in properties] if properties is not None else [{} for _ in range(n)]
    system = [
        {
            "x-opt-sequence-number": sequence_numbers[i],
            "x-opt-offset": offsets[i],
            "x-opt-enqueued-time": times[i],
            **({"x-opt-partition-key": keys[i]} if keys[i] else {}),
            "SequenceNumber": sequence_numbers[i],
            "Offset": offsets[i],
            "PartitionKey": keys[i],
            "EnqueuedTimeUtc": times[i],
        }
        for i in range(n)
    ]
    inputs = {arg_name: p.TypedData(collection_bytes=p.CollectionBytes(bytes=list(bodies)))}
    metadata = {
        "PartitionContext": _json(
            {
                "FullyQualifiedNamespace": namespace,
                "EventHubName": event_hub,
                "ConsumerGroup": consumer_group,
                "PartitionId": partition,
                "IsCheckpointingAfterInvocation": True,
            }
        ),
        # Null or empty entries are dropped from string collections (the worker does not declare
        # IncludeEmptyEntriesInMessagePayload), so this list may be shorter than the batch.
        "PartitionKeyArray": p.TypedData(collection_string=p.CollectionString(string=[k for k in keys if k])),
        "OffsetArray": p.TypedData(collection_string=p.CollectionString(string=offsets)),
        "SequenceNumberArray": p.TypedData(collection_sint64=p.CollectionSInt64(sint64=sequence_numbers)),
        "EnqueuedTimeUtcArray": _json(times),
        "PropertiesArray": _json(props),
        "SystemPropertiesArray": _json(system),
    }
    return inputs, metadata


def http_input(
    method: str = "POST",
    path: str = "/api/transactions",
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    arg_name: str = "req",
    base_url: str = "http://localhost:7071",
    route: Mapping[str, str] | None = None,
    url: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, trigger metadata) of one HTTP request as the host forwards it.

    `route` holds the route template's values (the host's `params`); `url` is the request's whole
    URL when it is known (a real request), else it is built from `base_url`, `path` and `params`.
    """
    p = protos()
    query = {k: v for k, v in (params or {}).items() if v != ""}  # the host drops empty values
    full_url = url or base_url + path + ("?" + urlencode(dict(params)) if params else "")
    http = p.RpcHttp(
        method=method,
        url=full_url,
        headers={k.lower(): v for k, v in (headers or {}).items() if v != ""},
        query=query,
        params=dict(route or {}),
        body=p.TypedData(bytes=body),
    )
    return {arg_name: p.TypedData(http=http)}, {}


def timer_input(past_due: bool = False, arg_name: str = "timer") -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, trigger metadata) of one timer tick: the host's TimerInfo as json."""
    info = {
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": {
            "Last": "0001-01-01T00:00:00",
            "Next": "0001-01-01T00:00:00",
            "LastUpdated": "0001-01-01T00:00:00",
        },
        "IsPastDue": past_due,
    }
    return {arg_name: _json(info)}, {}


def cosmos_feed_input(
    documents: Sequence[Mapping[str, Any]], arg_name: str = "documents"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, trigger metadata) of one change-feed delivery: a json array, no trigger metadata."""
    return {arg_name: _json(list(documents))}, {}
