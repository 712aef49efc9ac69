"""A partitioned in-process event stream standing in for an Event Hub.

It keeps what the local runner needs from Event Hubs' contract: events are appended to one of N
partitions with a per-partition sequence number and an enqueued time; a consumer reads each
partition in order, in batches of at most `max_batch`, and checkpoints per partition; resetting
the checkpoints replays retained events (at-least-once delivery). Retention is bounded, as on a
real hub, so a long run keeps flat memory. `StreamSender` is the generators' producer into it.
Producers append from any thread (the runner's loop and HTTP callers' invocations at once), so each
partition's log is guarded by its own lock.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoredEvent:
    sequence_number: int
    enqueued_at: float  # time.time() seconds
    body: bytes


class Partition:
    def __init__(self, partition_id: str, retain: int) -> None:
        self.id = partition_id
        self._lock = threading.Lock()
        self.log: deque[StoredEvent] = deque(maxlen=retain)
        self.next_sequence = 0
        self.checkpoint = 0  # next sequence number not yet stored: where a restarted consumer resumes
        self.delivered = 0  # next sequence number to hand to the function

    def append(self, body: bytes, now: float) -> None:
        with self._lock:
            if len(self.log) == self.log.maxlen and self.log[0].sequence_number >= self.checkpoint:
                # A hub would silently age this event out; locally that is a sizing mistake, so say it.
                raise OverflowError(f"partition {self.id}: retention full of events not yet stored; raise retention")
            self.log.append(StoredEvent(self.next_sequence, now, body))
            self.next_sequence += 1

    def backlog(self) -> int:
        return self.next_sequence - self.checkpoint

    def deliver(self, max_batch: int) -> list[StoredEvent]:
        """The next batch after what was already handed out (in flight until its checkpoint is committed)."""
        with self._lock:
            if not self.log or self.delivered >= self.next_sequence:
                return []
            start = max(self.delivered - self.log[0].sequence_number, 0)
            batch = list(itertools.islice(self.log, start, start + max_batch))
        if batch:
            self.delivered = batch[-1].sequence_number + 1
        return batch


class EventStream:
    """N partitions; `send` spreads a batch round-robin, as the Event Hubs gateway does without a key."""

    def __init__(self, partitions: int, retain_per_partition: int = 100_000) -> None:
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.partitions = [Partition(str(i), retain_per_partition) for i in range(partitions)]
        self._next = 0
        self._lock = threading.Lock()

    def send(self, bodies: Sequence[bytes]) -> None:
        now = time.time()
        parts, n = self.partitions, len(self.partitions)
        with self._lock:
            for body in bodies:
                parts[self._next].append(body, now)
                self._next = (self._next + 1) % n

    def send_to(self, partition_id: str, bodies: Sequence[bytes]) -> None:
        """Append to one partition, as a producer sending by partition id (or partition key) does."""
        now = time.time()
        partition = self.partitions[int(partition_id)]
        for body in bodies:
            partition.append(body, now)

    def backlog(self) -> int:
        return sum(p.backlog() for p in self.partitions)

    def max_backlog(self) -> int:
        """Events not yet stored in the fullest partition."""
        return max(p.backlog() for p in self.partitions)

    def rewind(self) -> None:
        """Move every checkpoint back to the oldest retained event: the whole retained stream is redelivered."""
        for p in self.partitions:
            p.checkpoint = p.delivered = p.log[0].sequence_number if p.log else p.next_sequence


class StreamSender:
    """The generators' `PartitionSender` when this process plays Event Hubs: appends to the stream's partitions."""

    def __init__(self, stream: EventStream) -> None:
        self._stream = stream

    def partition_ids(self) -> list[str]:
        return [p.id for p in self._stream.partitions]

    def send(self, partition_id: str, bodies: Sequence[bytes]) -> None:
        self._stream.send_to(partition_id, bodies)
