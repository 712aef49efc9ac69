"""Packing transactions into Event Hubs events: `{"records": [...]}` envelopes with account affinity.

Why envelopes: Event Hubs and the Functions worker both charge per event, not per byte (a
throughput unit takes 1,000 events/s or 1 MB/s; the worker spends ~140 µs converting each event),
so a ~450-byte transaction per event pays for a whole event. Many records per event is how Azure's
own services stream logs to Event Hubs, and `shared.contract.schema` accepts both forms.

Why affinity: the scorer sees an account's transactions in order only if they travel through one
partition. Records are grouped by the partition Event Hubs would choose for partition key =
`account_id` (`partition_for_key`, the service's hash as the Azure SDKs reproduce it), kept in
input order within each group, and each envelope holds one group's records only. A producer that
can target partitions (tools/send_events.py, with the azure-eventhub SDK) sends each envelope to
its group's partition; one that cannot (the Functions output binding) still keeps every envelope
single-partition, and each account's records within a call in order in one envelope or a run of them.

Pure: no SDK, no I/O. Sizes are counted on the encoded bytes that will be sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from shared.contract.schema import ACCOUNT_FIELD

MAX_ENVELOPE_BYTES: Final = 1_000_000
"""Largest envelope body produced: under Event Hubs' 1 MB (1,048,576 bytes) event limit with room
for the AMQP header, properties and tracing headers the SDK or the host may add."""
_OPEN: Final = b'{"records":['
_CLOSE: Final = b"]}"
_MASK: Final = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event to send: its body, the partition its records belong to, and how many records it holds."""

    partition_id: str
    body: bytes
    records: int


class RecordTooLargeError(ValueError):
    """A single record cannot fit in any event under the byte ceiling."""


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def _lookup3(data: bytes, seed1: int = 0, seed2: int = 0) -> tuple[int, int]:
    """Bob Jenkins' lookup3 `hashlittle2`: the hash Event Hubs applies to partition keys.

    Ported from the Azure SDKs' PartitionResolver, which call it "a direct port of the Event Hubs
    service code" (Azure.Messaging.EventHubs `PartitionResolver.cs`; azure-messaging-eventhubs
    `PartitionResolver.java`). Bytes are read unsigned, as the .NET original reads them.
    """
    a = b = c = (0xDEADBEEF + len(data) + seed1) & _MASK
    c = (c + seed2) & _MASK
    index, size = 0, len(data)

    def word(i: int) -> int:
        return int.from_bytes(data[i : i + 4].ljust(4, b"\0"), "little")

    while size > 12:
        a = (a + word(index)) & _MASK
        b = (b + word(index + 4)) & _MASK
        c = (c + word(index + 8)) & _MASK
        a = ((a - c) & _MASK) ^ _rot(c, 4)
        c = (c + b) & _MASK
        b = ((b - a) & _MASK) ^ _rot(a, 6)
        a = (a + c) & _MASK
        c = ((c - b) & _MASK) ^ _rot(b, 8)
        b = (b + a) & _MASK
        a = ((a - c) & _MASK) ^ _rot(c, 16)
        c = (c + b) & _MASK
        b = ((b - a) & _MASK) ^ _rot(a, 19)
        a = (a + c) & _MASK
        c = ((c - b) & _MASK) ^ _rot(b, 4)
        b = (b + a) & _MASK
        index += 12
        size -= 12
    if size == 0:
        return c, b
    # The tail: up to 12 bytes, zero-padded, added as three little-endian words.
    tail = data[index:].ljust(12, b"\0")
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    c = (c ^ b) - _rot(b, 14) & _MASK
    a = (a ^ c) - _rot(c, 11) & _MASK
    b = (b ^ a) - _rot(a, 25) & _MASK
    c = (c ^ b) - _rot(b, 16) & _MASK
    a = (a ^ c) - _rot(c, 4) & _MASK
    b = (b ^ a) - _rot(a, 14) & _MASK
    c = (c ^ b) - _rot(b, 24) & _MASK
    return c, b


def hash_code(partition_key: str) -> int:
    """The signed 16-bit hash Event Hubs derives from a partition key (UTF-8 bytes, hash1 XOR hash2)."""
    hash1, hash2 = _lookup3(partition_key.encode("utf-8"))
    value = (hash1 ^ hash2) & 0xFFFF
    return value - 0x10000 if value >= 0x8000 else value


def partition_for_key(partition_key: str, partition_ids: Sequence[str]) -> str:
    """The partition Event Hubs assigns an event with this partition key: `|hash % n|`, C#'s remainder."""
    if not partition_ids:
        raise ValueError("no partitions to choose from")
    return partition_ids[abs(hash_code(partition_key)) % len(partition_ids)]


def group_by_partition(
    records: Iterable[Mapping[str, Any]], partition_ids: Sequence[str]
) -> dict[str, list[Mapping[str, Any]]]:
    """Records by the partition of their `account_id`, input order kept within each partition."""
    cache: dict[str, str] = {}
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        account = str(record[ACCOUNT_FIELD])
        partition = cache.get(account)
        if partition is None:
            partition = cache[account] = partition_for_key(account, partition_ids)
        groups.setdefault(partition, []).append(record)
    return groups


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
