"""The generators' SDK sender against a stand-in `EventHubProducerClient` that enforces the documented batch contract.

Event Hubs cannot run here: the stand-in is a fake that refuses what the service and the SDK
refuse (a batch over its size limit raises `ValueError` on `add`, as `EventDataBatch` does; a batch
holds one partition; sending an empty batch is an error) and records what each partition received.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.eventhub.exceptions import EventHubError

from shared.contract.partitions import partition_for_key
from shared.generation import sender as event_sender
from shared.generation.generator import TransactionGenerator

pytestmark = pytest.mark.unit


class FakeBatch:
    def __init__(self, partition_id: str | None, max_bytes: int) -> None:
        self.partition_id = partition_id
        self.max_bytes = max_bytes
        self.bodies: list[bytes] = []

    def add(self, event: Any) -> None:
        body = b"".join(event.body)
        if sum(map(len, self.bodies)) + len(body) > self.max_bytes:
            raise ValueError("EventDataBatch has reached its size limit")
        self.bodies.append(body)

    def __len__(self) -> int:
        return len(self.bodies)


class FakeProducer:
    def __init__(self, partitions: int = 4, max_bytes: int = 1_048_576, fail: bool = False) -> None:
        self.received: dict[str, list[list[bytes]]] = {str(i): [] for i in range(partitions)}
        self.max_bytes = max_bytes
        self.fail = fail

    def get_partition_ids(self) -> list[str]:
        return list(self.received)

    def create_batch(self, *, partition_id: str | None = None) -> FakeBatch:
        assert partition_id in self.received, "a partition the hub has"
        return FakeBatch(partition_id, self.max_bytes)

    def send_batch(self, batch: FakeBatch) -> None:
        if self.fail:
            raise EventHubError("connection lost")
        assert batch.bodies, "an empty batch"
        assert batch.partition_id is not None
        self.received[batch.partition_id].append(batch.bodies)


def test_records_go_to_their_account_partition_in_order() -> None:
    """Every body on the partition its account's key gives; each account's records in generation order."""
    producer = FakeProducer()
    event_sender.install(event_sender.EventHubsSender(producer))
    try:
        records = TransactionGenerator(seed=3).generate(2000)
        events = event_sender.send(records, records_per_event=1)
    finally:
        event_sender.install(None)
    assert events == 2000
    import orjson

    order: dict[str, list[str]] = {}
    for partition, batches in producer.received.items():
        for body in (b for batch in batches for b in batch):
            record = orjson.loads(body)
            assert partition == partition_for_key(record["account_id"], list(producer.received))
            order.setdefault(record["account_id"], []).append(record["id"])
    expected: dict[str, list[str]] = {}
    for r in records:
        expected.setdefault(r["account_id"], []).append(r["id"])
    assert order == expected


def test_a_full_batch_is_sent_and_a_new_one_started() -> None:
    """The SDK judges the size: small batches force several sends per partition, nothing dropped."""
    producer = FakeProducer(partitions=1, max_bytes=5000)
    sender = event_sender.EventHubsSender(producer)
    bodies = [b"x" * 900 for _ in range(20)]
    sender.send("0", bodies)
    assert [b for batch in producer.received["0"] for b in batch] == bodies
    assert len(producer.received["0"]) == 4


def test_a_failed_send_is_a_send_error_without_detail() -> None:
    """After the SDK's retries, a failure surfaces as SendError naming the partition and the error type."""
    sender = event_sender.EventHubsSender(FakeProducer(fail=True))
    with pytest.raises(event_sender.SendError, match=r"partition 0 failed: EventHubError"):
        sender.send("0", [b"{}"])


def test_settings_are_needed_to_build_the_real_client() -> None:
    """Without a hub name or a connection, building the producer says which setting is missing."""
    with pytest.raises(event_sender.SendError, match="EVENT_HUB_NAME"):
        event_sender.build_sender({})
    with pytest.raises(event_sender.SendError, match="EventHubConnection__fullyQualifiedNamespace"):
        event_sender.build_sender({"EVENT_HUB_NAME": "transactions"})
    sender = event_sender.build_sender(
        {"EVENT_HUB_NAME": "transactions", "EventHubConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net"}
    )
    assert isinstance(sender, event_sender.EventHubsSender)
