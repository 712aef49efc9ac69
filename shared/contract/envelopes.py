"""Packing transactions into Event Hubs events: `{"records": [...]}` envelopes with account affinity.

Why envelopes: Event Hubs and the Functions worker both charge per event, not per byte (a
throughput unit takes 1,000 events/s or 1 MB/s; the worker spends ~140 µs converting each event),
so a ~450-byte transaction per event pays for a whole event. Many records per event is how Azure's
own services stream logs to Event Hubs, and `shared.contract.schema` accepts both forms.

Why affinity: the scorer sees an account's transactions in order only if they travel through one
partition. Records are grouped by the partition Event Hubs would choose for partition key =
`account_id` (`shared.contract.partitions.group_by_partition`), kept in input order within each
group, and each envelope holds one group's records only. A producer that can target partitions
(tools/send_events.py, with the azure-eventhub SDK) sends each envelope to its group's partition;
one that cannot (the Functions output binding) still keeps every envelope single-partition, and
each account's records within a call in order in one envelope or a run of them.

Pure: no SDK, no I/O. Sizes are counted on the encoded bytes that will be sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from shared.contract.partitions import group_by_partition

MAX_ENVELOPE_BYTES: Final = 1_000_000
"""Largest envelope body produced: under Event Hubs' 1 MB (1,048,576 bytes) event limit with room
for the AMQP header, properties and tracing headers the SDK or the host may add."""
_OPEN: Final = b'{"records":['
_CLOSE: Final = b"]}"


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event to send: its body, the partition its records belong to, and how many records it holds."""

    partition_id: str
    body: bytes
    records: int


class RecordTooLargeError(ValueError):
    """A single record cannot fit in any event under the byte ceiling."""


def envelope_body(encoded_records: Sequence[bytes]) -> bytes:
    """`{"records":[...]}` around records already encoded as JSON."""
    return _OPEN + b",".join(encoded_records) + _CLOSE


def pack_encoded(
    encoded: Sequence[bytes], records_per_event: int, max_event_bytes: int = MAX_ENVELOPE_BYTES
) -> list[tuple[bytes, int]]:
    """(event body, records in it) for encoded records, in order: bare when `records_per_event` is 1.

    An envelope closes at `records_per_event` records or before its body would pass `max_event_bytes`.
    """
    if records_per_event < 1:
        raise ValueError("records_per_event must be at least 1")
    frame = len(_OPEN) + len(_CLOSE)
    events: list[tuple[bytes, int]] = []
    current: list[bytes] = []
    size = frame
    for i, record in enumerate(encoded):
        alone = len(record) if records_per_event == 1 else frame + len(record)
        if alone > max_event_bytes:
            raise RecordTooLargeError(f"record {i} is {len(record)} bytes; an event holds at most {max_event_bytes}")
        if records_per_event == 1:
            events.append((record, 1))
            continue
        if current and (len(current) == records_per_event or size + 1 + len(record) > max_event_bytes):
            events.append((envelope_body(current), len(current)))
            current, size = [], frame
        size += len(record) + (1 if current else 0)
        current.append(record)
    if current:
        events.append((envelope_body(current), len(current)))
    return events


def pack_envelopes(
    records: Sequence[Mapping[str, Any]],
    records_per_event: int,
    partition_ids: Sequence[str],
    max_event_bytes: int = MAX_ENVELOPE_BYTES,
) -> list[Envelope]:
    """Events for `records`: grouped by account partition, in order within each, packed per `pack_encoded`."""
    return [
        Envelope(partition_id, body, count)
        for partition_id, group in sorted(group_by_partition(records, partition_ids).items())
        for body, count in pack_encoded([orjson.dumps(r) for r in group], records_per_event, max_event_bytes)
    ]
