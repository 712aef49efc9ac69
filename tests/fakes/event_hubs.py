"""A stand-in for the app's event hub as the generators' SDK sender sees it, enforcing Event Hubs' documented contract.

Event Hubs cannot run here, so the tests install this `PartitionSender` (`shared.generation.sender.install`)
instead of an `EventHubProducerClient`. It refuses what the service refuses: a partition id the hub
does not have, an event over 1 MB (1,048,576 bytes, the Standard and Premium limit), an empty send;
and it keeps what was sent per partition, in order, with sequence numbers, as a hub would.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

MAX_EVENT_BYTES = 1_048_576


class FakeEventHub:
    """Partitions "0".."n-1"; `sent()` is every body in send order, `partitions[p]` each partition's log."""

    def __init__(self, partitions: int = 4, fail: bool = False) -> None:
        self.partitions: dict[str, list[bytes]] = {str(i): [] for i in range(partitions)}
        self.fail = fail
        self._order: list[bytes] = []
        self._lock = threading.Lock()

    def partition_ids(self) -> list[str]:
        return list(self.partitions)

    def send(self, partition_id: str, bodies: Sequence[bytes]) -> None:
        from shared.generation.sender import SendError

        if self.fail:
            raise SendError(f"sending to partition {partition_id} failed: EventHubConnectionError")
        if partition_id not in self.partitions:
            raise ValueError(f"the hub has no partition {partition_id!r}")
        if not bodies:
            raise ValueError("an empty send")
        for body in bodies:
            if not isinstance(body, bytes) or len(body) > MAX_EVENT_BYTES:
                raise ValueError("an event must be bytes of at most 1 MB")
        with self._lock:
            self.partitions[partition_id].extend(bodies)
            self._order.extend(bodies)

    def sent(self) -> list[bytes]:
        with self._lock:
            return list(self._order)
