"""Partition keys: how Event Hubs assigns a partition to a key, and the Cosmos DB containers' partition key paths.

Event Hubs: an event sent with a partition key goes to the partition the service's hash of that key
picks (`partition_for_key`, Bob Jenkins' lookup3 as the Azure SDKs reproduce it). The scorer sees an
account's transactions in order only if they travel through one partition, so producers group
records by the partition of partition key = `account_id` (`group_by_partition`) and send each group
to its partition by id, which lands them where the key would.

Cosmos DB: every container's partition key path, keyed by the container's default name (also its
symbol in infra/modules/cosmos.bicep, which creates them on Azure; tests/infra/test_templates.py
keeps the template and `COSMOS_PARTITION_KEY_PATHS` in step).

Pure: no SDK, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, overload

from shared.contract.schema import ACCOUNT_FIELD

COSMOS_PARTITION_KEY_PATHS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "scored": "/account_id",
        # Rejected documents carry no account_id (a body that failed validation has none to trust), so
        # that container is partitioned on /id: every document has one, and it is how rejects are read.
        "rejected": "/id",
        "history": "/account_id",
        "profiles": "/account_id",
        # The Cosmos DB trigger's lease container: the Functions extension requires /id.
        "leases": "/id",
    }
)

_MASK: Final = 0xFFFFFFFF


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


def _account_id(record: Mapping[str, Any]) -> str:
    return str(record[ACCOUNT_FIELD])


@overload
def group_by_partition[R: Mapping[str, Any]](
    items: Iterable[R], partition_ids: Sequence[str]
) -> dict[str, list[R]]: ...


@overload
def group_by_partition[T](
    items: Iterable[T], partition_ids: Sequence[str], key: Callable[[T], str]
) -> dict[str, list[T]]: ...


def group_by_partition(
    items: Iterable[Any], partition_ids: Sequence[str], key: Callable[[Any], str] = _account_id
) -> dict[str, list[Any]]:
    """Items by the partition of their partition key (a record's `account_id` unless `key` says), input order kept."""
    cache: dict[str, str] = {}
    groups: dict[str, list[Any]] = {}
    for item in items:
        partition_key = key(item)
        partition = cache.get(partition_key)
        if partition is None:
            partition = cache[partition_key] = partition_for_key(partition_key, partition_ids)
        groups.setdefault(partition, []).append(item)
    return groups
