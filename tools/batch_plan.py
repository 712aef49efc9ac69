"""Planning events into Event Hubs batches: each event's partition, envelopes, and batches under the byte ceiling.

Events are planned into batches by `pack`, a pure function that counts bytes the way the SDK's
`EventDataBatch` does, before `tools.send_events` adds them to `create_batch()` batches. The SDK
stays the judge: if a batch refuses an event the plan said would fit, the sender sends the batch and
starts a new one.

Pure: no SDK, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from shared.contract.envelopes import MAX_ENVELOPE_BYTES, envelope_body, pack_encoded
from shared.contract.partitions import group_by_partition

MAX_BATCH_BYTES: Final = 1_048_576
"""The SDK's default batch ceiling (1 MiB), the largest batch Standard and Premium namespaces accept."""
_EMPTY_ENVELOPE_BYTES: Final = len(envelope_body([]))


class PartitionMode(StrEnum):
    """How events are spread over partitions."""

    NONE = "none"
    ACCOUNT = "account_id"
    ROUND_ROBIN = "round-robin"


def encoded_size(body_bytes: int) -> int:
    """Bytes one event with this body adds to a batch, counted as `EventDataBatch.add` counts them.

    An AMQP data section adds 5 bytes of header up to 255 bytes of body, 8 above; the batch adds 5
    bytes of framing per message under 256 bytes, 8 from there on. Events here carry no properties and
    no partition key; application properties or tracing headers would add bytes, which is why the
    SDK's own batch has the last word.
    """
    message = body_bytes + (5 if body_bytes <= 255 else 8)
    return message + (5 if message < 256 else 8)


@dataclass(frozen=True)
class Packing:
    """A batch plan: indices into the input, in order, and the items too large for any batch."""

    batches: tuple[tuple[int, ...], ...]
    oversized: tuple[int, ...]


def pack(body_sizes: Sequence[int], max_batch_bytes: int = MAX_BATCH_BYTES) -> Packing:
    """Greedily fill batches in input order so none exceeds `max_batch_bytes` (pure; no SDK needed)."""
    batches: list[tuple[int, ...]] = []
    oversized: list[int] = []
    current: list[int] = []
    used = 0
    for index, size in enumerate(body_sizes):
        cost = encoded_size(size)
        if cost > max_batch_bytes:
            oversized.append(index)
            continue
        if current and used + cost > max_batch_bytes:
            batches.append(tuple(current))
            current, used = [], 0
        current.append(index)
        used += cost
    if current:
        batches.append(tuple(current))
    return Packing(tuple(batches), tuple(oversized))


def route(
    account_ids: Sequence[str], mode: PartitionMode, partition_ids: Sequence[str]
) -> list[tuple[str | None, list[int]]]:
    """Group event indices by target partition; `None` means "let Event Hubs choose"."""
    if mode is not PartitionMode.ACCOUNT:
        return [(None, list(range(len(account_ids))))]
    groups = group_by_partition(range(len(account_ids)), partition_ids, key=lambda index: account_ids[index])
    return sorted(groups.items())


def events(bodies: list[bytes], records_per_event: int, max_batch_bytes: int) -> tuple[list[tuple[bytes, int]], int]:
    """(event body, transactions in it) for each event, and how many bodies fit no event.

    Bare bodies when `records_per_event` is 1, else envelopes that fit one event and one batch.
    """
    if records_per_event == 1:
        return [(body, 1) for body in bodies], 0
    # The envelope's own AMQP framing (8 + 8 bytes, `encoded_size`) must fit the batch too.
    limit = min(MAX_ENVELOPE_BYTES, max_batch_bytes - 16)
    fitting = [body for body in bodies if len(body) + _EMPTY_ENVELOPE_BYTES <= limit]
    return pack_encoded(fitting, records_per_event, limit), len(bodies) - len(fitting)
