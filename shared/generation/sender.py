"""Sending generated events to Event Hubs by partition, so each account's transactions stay on one partition.

Why: the scorer's per-account state is exact when an account's payments arrive in order, and that
holds only within one partition. The Functions Event Hubs output binding cannot set a partition key
or partition from Python (an output event is a bare string: azure-functions-python-worker#654,
Azure/Azure-Functions#2430), so the host spreads events over all partitions and two partitions
carry every account at once. The generators therefore send with the azure-eventhub SDK: one
module-level `EventHubProducerClient` per process (reused across invocations, as Microsoft's
guidance for SDK clients in Functions asks), each event to the partition that partition key =
`account_id` would give (`shared.contract.partitions.partition_for_key`, Event Hubs' own hash), sent by
partition id because one SDK batch holds one partition key only.

Connection: the same settings the bindings use, `EventHubConnection__fullyQualifiedNamespace` with
the app's managed identity (DefaultAzureCredential; `EventHubConnection__clientId` for a
user-assigned one; the role it needs, Azure Event Hubs Data Sender, is the binding's), or an
`EventHubConnection` connection string (the emulator, a SAS key). GENERATOR_SENDER=binding goes
back to the output binding.

A host that plays Event Hubs itself (the local runner) installs its own `PartitionSender` with
`install`; the functions cannot tell the difference, as they cannot tell a real hub from another.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from shared import caches
from shared.contract.envelopes import MAX_ENVELOPE_BYTES, pack_encoded
from shared.contract.partitions import group_by_partition

logger = logging.getLogger(__name__)

SDK_MAX_EVENT_BYTES: Final = MAX_ENVELOPE_BYTES
"""Envelopes sent through the SDK may use (almost) the whole 1 MB event."""


class SendError(RuntimeError):
    """Events could not be sent (after the SDK's own retries); the message names no credential."""


class PartitionSender(Protocol):
    """Sends event bodies to one partition of the app's event hub."""

    def partition_ids(self) -> list[str]: ...

    def send(self, partition_id: str, bodies: Sequence[bytes]) -> None: ...


class EventHubsSender:
    """An `EventHubProducerClient`: `create_batch(partition_id=...)` batches, a full one sent and a new one started."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._partitions: list[str] | None = None

    def partition_ids(self) -> list[str]:
        if self._partitions is None:
            from azure.eventhub.exceptions import EventHubError

            try:
                self._partitions = [str(p) for p in self._client.get_partition_ids()]
            except EventHubError as exc:
                raise SendError(f"reading the event hub's partitions failed: {type(exc).__name__}") from exc
        return self._partitions

    def send(self, partition_id: str, bodies: Sequence[bytes]) -> None:
        from azure.eventhub import EventData
        from azure.eventhub.exceptions import EventHubError

        try:
            batch = self._client.create_batch(partition_id=partition_id)
            for body in bodies:
                try:
                    batch.add(EventData(body))
                except ValueError:  # the batch is full: send it, start the next
                    self._client.send_batch(batch)
                    batch = self._client.create_batch(partition_id=partition_id)
                    batch.add(EventData(body))
            if len(batch):
                self._client.send_batch(batch)
        except EventHubError as exc:
            raise SendError(f"sending to partition {partition_id} failed: {type(exc).__name__}") from exc


def build_sender(env: Mapping[str, str]) -> EventHubsSender:
    """The process's producer, from the binding's connection settings and EVENT_HUB_NAME."""
    from azure.eventhub import EventHubProducerClient

    hub = env.get("EVENT_HUB_NAME", "").strip()
    if not hub:
        raise SendError("GENERATOR_SENDER=sdk needs EVENT_HUB_NAME")
    connection = env.get("EventHubConnection", "").strip()
    namespace = env.get("EventHubConnection__fullyQualifiedNamespace", "").strip()
    if connection:
        client = EventHubProducerClient.from_connection_string(connection, eventhub_name=hub)
    elif namespace:
        from azure.identity import DefaultAzureCredential

        client_id = env.get("EventHubConnection__clientId") or None
        credential = DefaultAzureCredential(managed_identity_client_id=client_id)
        client = EventHubProducerClient(namespace, hub, credential)
    else:
        raise SendError("GENERATOR_SENDER=sdk needs EventHubConnection__fullyQualifiedNamespace or EventHubConnection")
    return EventHubsSender(client)


_lock = threading.Lock()
_sender: PartitionSender | None = None


def install(sender: PartitionSender | None) -> None:
    """Use `sender` for this process (a host that plays Event Hubs); None builds the SDK client again on next use."""
    global _sender
    with _lock:
        _sender = sender


def get_sender() -> PartitionSender:
    """The process's sender: the installed one, else an `EventHubProducerClient` built once from the settings."""
    global _sender
    with _lock:
        if _sender is None:
            _sender = build_sender(os.environ)
        return _sender


def route(
    records: Sequence[Mapping[str, Any]], partition_ids: Sequence[str], records_per_event: int
) -> dict[str, list[bytes]]:
    """Event bodies per partition: each account's records on its key's partition, in order, bare or in envelopes."""
    import orjson

    return {
        partition: [
            body for body, _ in pack_encoded([orjson.dumps(r) for r in group], records_per_event, SDK_MAX_EVENT_BYTES)
        ]
        for partition, group in sorted(group_by_partition(records, partition_ids).items())
    }


def send(records: Sequence[Mapping[str, Any]], records_per_event: int) -> int:
    """Send `records` by account partition; the number of events sent."""
    sender = get_sender()
    routed = route(records, sender.partition_ids(), records_per_event)
    for partition, bodies in routed.items():
        sender.send(partition, bodies)
    return sum(map(len, routed.values()))


caches.register("event hubs sender", lambda: install(None))
