"""tools.redrive against a real Cosmos-protocol server: the chosen rejected documents are read page by page,
re-sent byte for byte to the fake Event Hubs producer (tests/tools/test_redrive.py), and deleted."""

from __future__ import annotations

import io
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.cosmos import CosmosClient, PartitionKey

from devhost.cosmos_store import SYSTEM_PROPERTIES
from shared.scoring.documents import RAW_BODY_LIMIT
from tests.integration.cosmos_server import CosmosServer
from tests.tools.test_redrive import ContractProducer, payment, rejected
from tools.redrive import Options, RedriveStats, main, run
from tools.redrive_plan import decode_body, partition_key_for
from tools.send_events import SendError

pytestmark = pytest.mark.integration

SINCE = "2026-11-21T00:00:00.000Z"


def _clock() -> datetime:
    return datetime(2026, 11, 22, 8, 30, tzinfo=UTC)


@dataclass
class Rejected:
    """A fresh database holding a `rejected` container (partition key /id), as the app provisions it."""

    database: str
    container: Any

    def ids(self) -> set[str]:
        return {
            str(i) for i in self.container.query_items("SELECT VALUE c.id FROM c", enable_cross_partition_query=True)
        }

    def insert(self, docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            self.container.create_item(doc)


@pytest.fixture
def store(cosmos_client: CosmosClient) -> Iterator[Rejected]:
    """The `rejected` container in a database of its own, dropped afterwards."""
    name = f"test-{uuid.uuid4().hex}"
    database = cosmos_client.create_database(name)
    yield Rejected(name, database.create_container("rejected", partition_key=PartitionKey(path="/id")))
    cosmos_client.delete_database(name)


def _docs() -> dict[str, dict[str, Any]]:
    return {
        "text-1": rejected(payment("acct-1", 1), reason="invalid_value", sequence=1),
        "text-2": rejected(payment("acct-2", 2), reason="invalid_value", sequence=2),
        "base64": rejected(b"\xff\xfe\x00 not utf-8 \x80", reason="internal_error", field="body", sequence=3),
        "record": rejected(payment("acct-1", 3), reason="internal_error", field="body", sequence=4, record_index=2),
        "truncated": rejected(b"a" * (RAW_BODY_LIMIT + 1), reason="invalid_value", field="body", sequence=5),
        "other-reason": rejected(b"not json", reason="invalid_json", field="body", sequence=6),
        "too-old": rejected(payment("acct-3"), reason="invalid_value", sequence=7, now="2026-11-01T00:00:00.000Z"),
        "after-start": rejected(payment("acct-4"), reason="invalid_value", sequence=8, now="2026-11-23T00:00:00.000Z"),
    }


CHOSEN = Options(reasons=("invalid_value", "internal_error"), since=SINCE, delete_sent=True, page_size=2)


def test_redrive_sends_the_chosen_bodies_exactly_and_deletes_them(store: Rejected) -> None:
    """Reasons, --since and the run's start choose the documents; their bodies go out byte for byte and are
    deleted (pages of two, so deletes happen between the server's continuation pages); the truncated one stays."""
    docs = _docs()
    store.insert(list(docs.values()))
    producer = ContractProducer()
    stats = run(store.container, producer, CHOSEN, now=_clock)

    sent = ["text-1", "text-2", "base64", "record"]
    assert Counter(producer.bodies()) == Counter(decode_body(docs[name]) for name in sent)
    assert producer.bodies().count(b"\xff\xfe\x00 not utf-8 \x80") == 1
    for batch in producer.sent:
        assert {partition_key_for(body) for body in batch.bodies} == {batch.partition_key}
    assert store.ids() == {docs[name]["id"] for name in ("truncated", "other-reason", "too-old", "after-start")}
    assert (stats.read, stats.sent, stats.truncated, stats.deleted) == (5, 4, 1, 4)
    assert stats.sent_by_reason == Counter({"invalid_value": 2, "internal_error": 2})

    again = run(store.container, producer, CHOSEN, now=_clock)
    assert (again.read, again.sent, again.truncated, again.deleted) == (1, 0, 1, 0)
    assert len(producer.bodies()) == 4


def test_stored_documents_decode_to_the_bodies_that_arrived(store: Rejected) -> None:
    """What the server hands back (system properties added) decodes to the original bytes."""
    docs = _docs()
    store.insert([docs["text-1"], docs["base64"]])
    stored = {d["id"]: d for d in store.container.read_all_items()}
    for name in ("text-1", "base64"):
        doc = stored[docs[name]["id"]]
        assert SYSTEM_PROPERTIES & doc.keys()
        assert decode_body(doc) == decode_body(docs[name])


def test_dry_run_and_no_delete_leave_every_document(store: Rejected) -> None:
    """A dry run sends nothing; a run without --delete-sent sends but deletes nothing, so it can be repeated."""
    docs = _docs()
    store.insert(list(docs.values()))
    before = store.ids()
    producer = ContractProducer()
    dry = run(store.container, None, Options(reasons=("invalid_value",), dry_run=True, delete_sent=True), now=_clock)
    assert dry.sent == 3  # text-1, text-2, too-old: no --since here
    assert producer.sent == []
    keep = Options(reasons=("invalid_value",), since=SINCE)
    for _ in range(2):
        run(store.container, producer, keep, now=_clock)
    assert Counter(producer.bodies()) == Counter({payment("acct-1", 1): 2, payment("acct-2", 2): 2})
    assert store.ids() == before


def test_a_failed_send_deletes_nothing_of_that_batch(store: Rejected) -> None:
    """The second batch fails: only the first batch's documents are gone from the server."""
    docs = [rejected(payment(f"acct-{i}"), sequence=i) for i in range(5)]
    store.insert(docs)
    producer = ContractProducer(fail_on=2)
    stats = RedriveStats()
    with pytest.raises(SendError):
        run(store.container, producer, Options(delete_sent=True), stats=stats, now=_clock)
    (first,) = producer.sent
    (failed,) = producer.failed
    by_body = {decode_body(d): str(d["id"]) for d in docs}
    deleted = {by_body[body] for body in first.bodies}
    assert store.ids() == {str(d["id"]) for d in docs} - deleted
    assert {by_body[body] for body in failed.bodies} <= store.ids()
    assert stats.deleted == len(deleted) == 1


def test_cli_reads_the_local_server_from_its_connection_string(
    store: Rejected, cosmos_server: CosmosServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`CosmosDBConnection` to a loopback server: the real client is built (certificate checks off for loopback
    only, or the server's expired certificate would fail), and the chosen bodies are re-sent and deleted."""
    docs = _docs()
    store.insert(list(docs.values()))
    connection = f"AccountEndpoint={cosmos_server.endpoint};AccountKey={cosmos_server.key};"
    monkeypatch.setenv("CosmosDBConnection", connection)
    monkeypatch.setenv("EVENT_HUB_CONNECTION_STRING", "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=x=")
    monkeypatch.delenv("COSMOS_REJECTED_CONTAINER", raising=False)
    producer = ContractProducer()
    out = io.StringIO()
    argv = ["--database", store.database, "--reason", "invalid_json", "--field", "body", "--delete-sent"]
    code = main(argv, producer_factory=lambda args: (producer, bytes), out=out)
    assert code == 0
    assert producer.bodies() == [b"not json"]
    assert docs["other-reason"]["id"] not in store.ids()
    assert out.getvalue().startswith("read 1, sent 1 in 1 batches, skipped 0 (truncated), deleted 1;")
    assert cosmos_server.key not in out.getvalue()
