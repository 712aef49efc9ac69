"""tools.redrive: decoding, queries, planning, sending and the CLI, against a fake Event Hubs producer.

Event Hubs cannot run here, so `ContractProducer` is a fake that enforces its documented contract
instead: a batch holds at most 1,048,576 bytes and one partition key (fixed when the batch is
created), an empty batch is never sent, and `send_batch` may raise, after which nothing of that
batch may be deleted (the fake container checks every delete against what was really sent).
"""

from __future__ import annotations

import argparse
import io
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from shared.contract.schema import Rejection
from shared.scoring.documents import RAW_BODY_LIMIT, rejected_document, rejected_record_document
from shared.scoring.events import EventBatch
from tools.batch_plan import MAX_BATCH_BYTES
from tools.redrive import Options, RedriveStats, main, run
from tools.redrive_clients import cosmos_target
from tools.redrive_plan import decode_body, iso_utc, partition_key_for, plan, select_query
from tools.redrive_types import ClosableContainer, ContainerLike, ProducerLike, StoreError, UnreadableDocumentError
from tools.send_events import SendError

pytestmark = pytest.mark.unit

EVENT_HUBS_MAX_BATCH_BYTES = 1_048_576
"""Event Hubs' documented batch ceiling (Standard and Premium); the fake refuses anything larger."""
NOW = "2026-11-21T12:00:00.000Z"
ENQUEUED = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


# ---- documents as the scorer writes them --------------------------------------------------------------


def rejected(
    body: bytes,
    *,
    reason: str = "invalid_value",
    field: str = "timestamp",
    partition: str = "0",
    sequence: int = 0,
    enqueued: datetime | None = ENQUEUED,
    now: str = NOW,
    record_index: int | None = None,
) -> dict[str, Any]:
    """The rejected document ScoreTransactions writes for `body` (built by the scorer's own functions)."""
    batch = EventBatch([body], [enqueued], [sequence], partition)
    rejection = Rejection(field, reason, "made by a test")
    if record_index is None:
        return rejected_document(batch, 0, rejection, now)
    return rejected_record_document(batch, 0, record_index, orjson.loads(body), rejection, now)


def payment(account: str, n: int = 0, pad: int = 0) -> bytes:
    """A transaction-shaped body for `account` (the fields the tool looks at, and padding to size it)."""
    return orjson.dumps({"id": f"tx-{account}-{n}", "account_id": account, "amount": 12.5, "note": "x" * pad})


# ---- the fakes ----------------------------------------------------------------------------------------


class ContractBatch:
    """Stands in for `EventDataBatch`: refuses an event that would take it past its byte limit.

    Its accounting is deliberately its own (body + 16 bytes of framing + the partition key and 32 bytes
    of annotation on every event, as the real batch stamps the key on each), not the SDK's, so the tests
    do not grade the tool against the numbers it was written with.
    """

    def __init__(self, limit: int, partition_key: str | None) -> None:
        self.limit = limit
        self.partition_key = partition_key
        self.bodies: list[bytes] = []
        self.size_in_bytes = 0

    def add(self, event_data: Any) -> None:
        body = bytes(event_data)
        cost = len(body) + 16 + (len(self.partition_key.encode()) + 32 if self.partition_key is not None else 0)
        if self.size_in_bytes + cost > self.limit:
            raise ValueError(f"EventDataBatch has reached its size limit: {self.limit}")
        self.bodies.append(body)
        self.size_in_bytes += cost

    def __len__(self) -> int:
        return len(self.bodies)


class ContractProducer:
    """A fake `EventHubProducerClient` enforcing Event Hubs' documented contract (see the module docstring).

    `fail_on` makes the n-th send (1-based) raise `SendError`, as the real wrapper does once the SDK gives up.
    """

    def __init__(self, fail_on: int = 0) -> None:
        self.fail_on = fail_on
        self.sent: list[ContractBatch] = []
        self.failed: list[ContractBatch] = []
        self.created = 0
        self.closed = False

    def create_batch(self, *, partition_key: str | None = None, max_size_in_bytes: int | None = None) -> ContractBatch:
        assert max_size_in_bytes is None or max_size_in_bytes <= EVENT_HUBS_MAX_BATCH_BYTES, "Event Hubs refuses > 1 MB"
        self.created += 1
        return ContractBatch(max_size_in_bytes or EVENT_HUBS_MAX_BATCH_BYTES, partition_key)

    def send_batch(self, event_data_batch: Any) -> None:
        assert isinstance(event_data_batch, ContractBatch)
        assert len(event_data_batch) > 0, "never send an empty batch"
        assert event_data_batch.size_in_bytes <= EVENT_HUBS_MAX_BATCH_BYTES
        assert all(b is not event_data_batch for b in self.sent), "a batch is sent once"
        if self.fail_on and len(self.sent) + len(self.failed) + 1 == self.fail_on:
            self.failed.append(event_data_batch)
            raise SendError("send failed after retries: ServerBusyError")
        self.sent.append(event_data_batch)

    def close(self) -> None:
        self.closed = True

    def bodies(self) -> list[bytes]:
        return [b for batch in self.sent for b in batch.bodies]


class FakeContainer:
    """The rejected container: hands out its documents in pages and records queries and deletes.

    Filtering is the server's job (the integration tests run it); this one returns every document.
    With a producer, each delete must be of a document whose body that producer really sent.
    """

    def __init__(self, docs: Iterable[Mapping[str, Any]], producer: ContractProducer | None = None) -> None:
        self.docs = {str(d["id"]): dict(d) for d in docs}
        self.producer = producer
        self.queries: list[tuple[str, list[dict[str, Any]], int]] = []
        self.deleted: list[str] = []
        self.closed = False

    def query_items(
        self,
        query: str,
        *,
        parameters: list[dict[str, Any]],
        enable_cross_partition_query: bool,
        max_item_count: int,
    ) -> Iterable[Mapping[str, Any]]:
        assert enable_cross_partition_query, "rejected is partitioned on /id: every query crosses partitions"
        self.queries.append((query, parameters, max_item_count))
        return iter(list(self.docs.values()))

    def delete_item(self, item: str, partition_key: str) -> None:
        assert partition_key == item, "the partition key of rejected is /id"
        doc = self.docs.pop(item)
        if self.producer is not None:
            body = decode_body(doc)
            assert body in self.producer.bodies(), f"{item} deleted but its body was never sent"
            assert all(body not in b.bodies for b in self.producer.failed), f"{item} deleted after a failed send"
        self.deleted.append(item)

    def close(self) -> None:
        self.closed = True


def _typed(container: FakeContainer, producer: ContractProducer) -> tuple[ContainerLike, ProducerLike]:
    return container, producer  # mypy: the fakes satisfy the protocols the tool is written against


def _clock() -> datetime:
    return datetime(2026, 11, 22, 8, 30, tzinfo=UTC)


# ---- decoding -----------------------------------------------------------------------------------------


def test_decode_text_body_is_its_utf8_bytes() -> None:
    """`raw_body` comes back as the exact UTF-8 bytes that arrived, non-ASCII included."""
    body = '{"id": "tx-1", "merchant": "Café Zürich — 東京"}'.encode()
    doc = rejected(body)
    assert doc["raw_body"] is not None
    assert decode_body(doc) == body


def test_decode_base64_body_when_it_was_not_utf8() -> None:
    """A body that is not UTF-8 is stored as base64 and comes back byte for byte."""
    body = b"\xff\xfe\x00{not utf-8}\x80"
    doc = rejected(body, reason="invalid_utf8", field="body")
    assert doc["raw_body"] is None
    assert decode_body(doc) == body


def test_decode_empty_body() -> None:
    """An empty body is a body (b""), not a missing one."""
    assert decode_body(rejected(b"")) == b""


def test_decode_text_stored_as_base64() -> None:
    """UTF-8 text that would escape past the item limit (control characters) is stored as base64: same bytes."""
    body = b"\x01" * 300_000
    doc = rejected(body, reason="invalid_json", field="body")
    assert doc["raw_body"] is None
    assert decode_body(doc) == body


@pytest.mark.parametrize("byte", [b"a", b"\xff"], ids=["text", "base64"])
def test_decode_truncated_body_is_none(byte: bytes) -> None:
    """A body cut when rejected cannot be re-driven whole, whichever way it was stored."""
    body = byte * (RAW_BODY_LIMIT + 1)
    doc = rejected(body, reason="too_large", field="body")
    assert doc["raw_body_truncated"] is True
    assert decode_body(doc) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"raw_body": None, "raw_body_base64": None}, "neither"),
        ({"raw_body": None, "raw_body_base64": "not base64!"}, "not valid base64"),
        ({"raw_body_bytes": 999}, "raw_body_bytes says 999"),
        ({"raw_body": "\ud800"}, "not encodable"),
    ],
    ids=["no-body", "bad-base64", "length-mismatch", "lone-surrogate"],
)
def test_decode_refuses_a_body_it_cannot_recover_exactly(changes: dict[str, Any], message: str) -> None:
    """A document without a body, or with one that does not match its recorded length, is unreadable."""
    doc = rejected(b'{"id": "tx-1"}') | changes
    with pytest.raises(UnreadableDocumentError, match=message):
        decode_body(doc)


def test_decode_without_a_recorded_length_still_works() -> None:
    """`raw_body_bytes` is a check when present, not a requirement."""
    doc = rejected(b"abc")
    del doc["raw_body_bytes"]
    assert decode_body(doc) == b"abc"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"account_id": "acct-000042", "id": "tx"}', "acct-000042"),
        (b'{"account_id": 42}', None),
        (b'{"account_id": ""}', None),
        (orjson.dumps({"account_id": "a" * 129}), None),
        (orjson.dumps({"account_id": "a" * 128}), "a" * 128),
        (b'{"records": [{"account_id": "acct-1"}]}', None),
        (b'["acct-1"]', None),
        (b"not json", None),
        (b"\xff", None),
    ],
    ids=["string", "number", "empty", "too-long", "longest", "envelope", "array", "not-json", "not-utf8"],
)
def test_partition_key_is_a_string_account_id_of_an_object(body: bytes, key: str | None) -> None:
    """Only a JSON object's string `account_id` (of id length) becomes the partition key."""
    assert partition_key_for(body) == key


# ---- queries ------------------------------------------------------------------------------------------


def test_query_without_filters_reads_everything() -> None:
    """No options: every document, no parameters."""
    assert select_query() == ("SELECT * FROM c", [])


def test_query_with_every_filter_is_parameterised() -> None:
    """Reasons (deduplicated) and fields become IN lists, times range conditions; values only as parameters."""
    query, parameters = select_query(
        ["invalid_value", "internal_error", "invalid_value"], ["timestamp"], "2026-11-21T00:00:00.000Z", NOW
    )
    assert query == (
        "SELECT * FROM c WHERE c.reason IN (@reason0, @reason1) AND c.field IN (@field0)"
        " AND c.rejected_at >= @since AND c.rejected_at < @until"
    )
    assert parameters == [
        {"name": "@reason0", "value": "invalid_value"},
        {"name": "@reason1", "value": "internal_error"},
        {"name": "@field0", "value": "timestamp"},
        {"name": "@since", "value": "2026-11-21T00:00:00.000Z"},
        {"name": "@until", "value": NOW},
    ]


def test_query_never_carries_a_value_in_its_text() -> None:
    """A hostile reason stays a parameter value."""
    query, parameters = select_query(["x') OR 1=1 --"])
    assert "OR 1=1" not in query
    assert parameters == [{"name": "@reason0", "value": "x') OR 1=1 --"}]


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("2026-11-21", "2026-11-21T00:00:00.000Z"),
        ("2026-11-21T10:00:00", "2026-11-21T10:00:00.000Z"),
        ("2026-11-21T10:00:00.5Z", "2026-11-21T10:00:00.500Z"),
        ("2026-11-21T11:00:00+01:00", "2026-11-21T10:00:00.000Z"),
    ],
)
def test_since_is_normalised_to_the_stored_form(text: str, stored: str) -> None:
    """`--since` compares as a string, so it is put in rejected_at's own form (UTC, ms, Z)."""
    assert iso_utc(text) == stored


# ---- planning -----------------------------------------------------------------------------------------


def test_plan_groups_by_partition_key_in_first_enqueued_order() -> None:
    """One planned batch per key; within it, bodies in enqueued order; unkeyed bodies together."""
    later = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)
    docs = [
        rejected(payment("acct-1", 2), sequence=9, enqueued=later),
        rejected(payment("acct-2", 1), sequence=3),
        rejected(b"not json", reason="invalid_json", field="body", sequence=4),
        rejected(payment("acct-1", 1), sequence=2),
        rejected(b'{"account_id": 7}', sequence=5),
    ]
    planned = plan(docs)
    assert [b.partition_key for b in planned.batches] == ["acct-1", "acct-2", None]
    acct1 = planned.batches[0]
    assert [item.body for item in acct1.items] == [payment("acct-1", 1), payment("acct-1", 2)]
    assert {item.body for item in planned.batches[2].items} == {b"not json", b'{"account_id": 7}'}
    assert all(item.partition_key == batch.partition_key for batch in planned.batches for item in batch.items)
    assert planned.truncated == ()
    assert planned.unreadable == ()


def test_plan_keeps_envelope_records_in_index_order() -> None:
    """Records of one envelope share its enqueued time and sequence number: `record_index` orders them."""
    docs = [rejected(payment("acct-1", i), record_index=i, sequence=7) for i in (3, 0, 2)]
    (batch,) = plan(docs).batches
    assert [item.body for item in batch.items] == [payment("acct-1", i) for i in (0, 2, 3)]


def test_plan_sets_aside_truncated_and_unreadable() -> None:
    """Truncated and unreadable documents are named, not planned."""
    truncated = rejected(b"a" * (RAW_BODY_LIMIT + 1), reason="too_large", field="body", sequence=1)
    unreadable = rejected(b"abc", sequence=2) | {"raw_body": None}
    good = rejected(payment("acct-1"), sequence=3)
    planned = plan([truncated, unreadable, good])
    assert planned.truncated == (truncated["id"],)
    assert planned.unreadable == ((unreadable["id"], "neither raw_body nor raw_body_base64 holds a body"),)
    assert [item.doc_id for item in planned.items] == [good["id"]]


# ---- running ------------------------------------------------------------------------------------------


def _mixed_docs() -> list[dict[str, Any]]:
    docs = [rejected(payment(f"acct-{i % 3}", i), sequence=i) for i in range(9)]
    docs.append(rejected(b"\xff\xfe binary", reason="invalid_utf8", field="body", sequence=20))
    docs.append(rejected(b"a" * (RAW_BODY_LIMIT + 1), reason="too_large", field="body", sequence=21))
    docs.append(rejected(payment("acct-1", 99), reason="internal_error", field="body", sequence=22, record_index=4))
    return docs


def test_run_sends_every_body_unchanged_one_key_per_batch() -> None:
    """Each readable body is sent once, byte for byte; a batch carries only bodies of its own key."""
    docs = _mixed_docs()
    producer = ContractProducer()
    container, typed_producer = _typed(FakeContainer(docs, producer), producer)
    stats = run(container, typed_producer, Options(), now=_clock)
    expected = [decode_body(d) for d in docs if not d["raw_body_truncated"]]
    assert Counter(producer.bodies()) == Counter(expected)
    for batch in producer.sent:
        assert {partition_key_for(body) for body in batch.bodies} == {batch.partition_key}
    assert {b.partition_key for b in producer.sent} == {"acct-0", "acct-1", "acct-2", None}
    assert (stats.read, stats.sent, stats.truncated, stats.deleted) == (12, 11, 1, 0)
    assert stats.sent_by_reason == Counter({"invalid_value": 9, "invalid_utf8": 1, "internal_error": 1})


def test_run_reads_only_documents_rejected_before_it_started() -> None:
    """The query is bounded by the run's start, so bodies rejected again meanwhile are not re-sent in a loop."""
    container = FakeContainer([])
    run(container, ContractProducer(), Options(reasons=("invalid_value",), page_size=250), now=_clock)
    ((query, parameters, page_size),) = container.queries
    assert "c.rejected_at < @until" in query
    assert {"name": "@until", "value": "2026-11-22T08:30:00.000Z"} in parameters
    assert page_size == 250


def test_a_full_batch_is_sent_and_a_new_one_started() -> None:
    """3 MB of one account's bodies go out in several batches under 1 MiB, all with its key, in order."""
    docs = [rejected(payment("acct-7", i, pad=15_000), sequence=i) for i in range(200)]
    producer = ContractProducer()
    stats = run(FakeContainer(docs, producer), producer, Options(delete_sent=True), now=_clock)
    assert len(producer.sent) >= 3
    assert all(b.partition_key == "acct-7" for b in producer.sent)
    assert all(b.size_in_bytes <= EVENT_HUBS_MAX_BATCH_BYTES for b in producer.sent)
    assert producer.bodies() == [payment("acct-7", i, pad=15_000) for i in range(200)]
    assert stats.batches == len(producer.sent)
    assert stats.deleted == 200


def test_the_real_sdk_batch_is_the_judge_of_size() -> None:
    """With azure-eventhub's own EventDataBatch (offline), every batch sent fits and none is empty."""
    eventhub = pytest.importorskip("azure.eventhub")

    class RealBatches:
        def __init__(self) -> None:
            self.sent: list[Any] = []

        def create_batch(self, *, partition_key: str | None = None, max_size_in_bytes: int | None = None) -> Any:
            return eventhub.EventDataBatch(max_size_in_bytes=max_size_in_bytes, partition_key=partition_key)

        def send_batch(self, event_data_batch: Any) -> None:
            assert len(event_data_batch) > 0
            assert event_data_batch.size_in_bytes <= MAX_BATCH_BYTES
            self.sent.append(event_data_batch)

        def close(self) -> None:
            return None

    docs = [rejected(payment("acct-7", i, pad=15_000), sequence=i) for i in range(200)]
    producer = RealBatches()
    stats = run(FakeContainer(docs), producer, Options(max_batch_bytes=MAX_BATCH_BYTES), make_event=eventhub.EventData)
    assert stats.sent == sum(len(b) for b in producer.sent) == 200
    assert len(producer.sent) >= 3


def test_a_failed_send_deletes_nothing_of_that_batch() -> None:
    """The second batch fails: the first batch's documents are deleted, the failed and unsent ones stay."""
    docs = [rejected(payment(f"acct-{i}"), sequence=i) for i in range(5)]
    producer = ContractProducer(fail_on=2)
    container = FakeContainer(docs, producer)
    stats = RedriveStats()
    with pytest.raises(SendError):
        run(container, producer, Options(delete_sent=True), stats=stats, now=_clock)
    (first,) = producer.sent
    (failed,) = producer.failed
    assert container.deleted == [docs[0]["id"]]
    assert first.bodies == [payment("acct-0")]
    assert failed.bodies == [payment("acct-1")]
    assert set(container.docs) == {d["id"] for d in docs[1:]}
    assert (stats.sent, stats.deleted) == (1, 1)


def test_without_delete_sent_nothing_is_deleted_and_a_rerun_resends() -> None:
    """Documents stay, so a second run sends the same bodies again (harmless: scored documents are upserts)."""
    docs = [rejected(payment("acct-1", i), sequence=i) for i in range(3)]
    producer = ContractProducer()
    container = FakeContainer(docs, producer)
    run(container, producer, Options(), now=_clock)
    run(container, producer, Options(), now=_clock)
    assert container.deleted == []
    assert len(container.docs) == 3
    assert Counter(producer.bodies()) == Counter({payment("acct-1", i): 2 for i in range(3)})


def test_with_delete_sent_a_rerun_sends_nothing_more() -> None:
    """Sent documents are gone, so the second run reads only what was left: the truncated one."""
    docs = _mixed_docs()
    producer = ContractProducer()
    container = FakeContainer(docs, producer)
    run(container, producer, Options(delete_sent=True), now=_clock)
    sent = len(producer.bodies())
    again = run(container, producer, Options(delete_sent=True), now=_clock)
    assert len(producer.bodies()) == sent == 11
    assert (again.read, again.sent, again.truncated) == (1, 0, 1)
    (left,) = container.docs.values()
    assert left["raw_body_truncated"] is True


def test_dry_run_sends_and_deletes_nothing_and_counts_by_reason() -> None:
    """A dry run needs no producer, leaves every document, and says what would go."""
    container = FakeContainer(_mixed_docs())
    stats = run(container, None, Options(dry_run=True, delete_sent=True), now=_clock)
    assert container.deleted == []
    assert stats.sent == 11
    assert stats.partition_keys == {"acct-0", "acct-1", "acct-2", None}
    summary = stats.summary()
    assert summary.startswith("dry run: read 12, would send 11 (")
    assert "skipped 1 (truncated)" in summary
    assert "deleted 0" in summary
    assert "internal_error 1 of 1, invalid_utf8 1 of 1, invalid_value 9 of 9, too_large 0 of 1" in summary
    assert "cannot be re-driven whole" in summary


def test_run_needs_a_producer_unless_dry() -> None:
    """Forgetting the producer is a programming error, caught before anything is read."""
    container = FakeContainer(_mixed_docs())
    with pytest.raises(ValueError, match="producer"):
        run(container, None, Options())
    assert container.queries == []


def test_a_body_larger_than_any_batch_is_counted_and_kept() -> None:
    """Under a small ceiling a body that fits no batch is skipped, left in place, and the rest still go."""
    big = rejected(payment("acct-1", 1, pad=3000), sequence=1)
    small = rejected(payment("acct-1", 2), sequence=2)
    producer = ContractProducer()
    container = FakeContainer([big, small], producer)
    stats = run(container, producer, Options(delete_sent=True, max_batch_bytes=2000), now=_clock)
    assert producer.bodies() == [payment("acct-1", 2)]
    assert stats.oversized == 1
    assert set(container.docs) == {big["id"]}
    assert "too large for a batch 1" in stats.summary()


def test_pages_are_planned_one_at_a_time() -> None:
    """2,500 documents in pages of 1,000: all read and sent, never more than a page planned at once."""
    docs = [rejected(payment(f"acct-{i % 50}", i), sequence=i) for i in range(2500)]
    producer = ContractProducer()
    stats = run(FakeContainer(docs), producer, Options(page_size=1000), now=_clock)
    assert stats.read == stats.sent == 2500
    assert len(producer.bodies()) == 2500
    assert len(producer.sent) == 3 * 50  # each page: one batch per account


def test_summary_names_every_count() -> None:
    """The closing line: read, sent, skipped (truncated), deleted, by reason."""
    producer = ContractProducer()
    stats = run(FakeContainer(_mixed_docs(), producer), producer, Options(delete_sent=True), now=_clock)
    first = stats.summary().splitlines()[0]
    assert first.startswith("read 12, sent 11 in ")
    assert ", skipped 1 (truncated), deleted 11; by reason (sent of read): " in first


# ---- where from: loopback and the Cosmos target -------------------------------------------------------


def test_cosmos_target_prefers_the_endpoint_and_verifies_remote_certificates() -> None:
    """`--endpoint` wins over the connection string; TLS is verified unless the host is loopback."""
    env = {"CosmosDBConnection": "AccountEndpoint=https://127.0.0.1:8081/;AccountKey=a2V5;"}
    remote = cosmos_target("https://acct.documents.azure.com:443/", env)
    assert (remote.endpoint, remote.connection_string, remote.verify_tls) == (
        "https://acct.documents.azure.com:443/",
        None,
        True,
    )
    local = cosmos_target(None, env)
    assert (local.endpoint, local.connection_string, local.verify_tls) == (
        "https://127.0.0.1:8081/",
        env["CosmosDBConnection"],
        False,
    )
    sneaky = {"CosmosDBConnection": "AccountEndpoint=https://acct.documents.azure.com/;AccountKey=://localhost;"}
    assert cosmos_target(None, sneaky).verify_tls is True
    assert cosmos_target("https://localhost.example.com/", {}).verify_tls is True
    assert cosmos_target("https://[::1]:8081/", {}).verify_tls is False
    with pytest.raises(ValueError, match="CosmosDBConnection"):
        cosmos_target(None, {})


# ---- the command line ---------------------------------------------------------------------------------

# Built at run time: a key-shaped literal in the tree would (rightly) fail tests/test_secrets.py.
COSMOS_SECRET = "AccountEndpoint=https://acct.documents.azure.com:443/;AccountKey=" + "c2VjcmV0" + "LWtleQ==;"
EVENT_HUB_SECRET = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc="


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No destination settings from the developer's shell."""
    for name in (
        "CosmosDBConnection",
        "EVENT_HUB_CONNECTION_STRING",
        "EventHubConnection__fullyQualifiedNamespace",
        "COSMOS_DATABASE",
        "COSMOS_REJECTED_CONTAINER",
        "EVENT_HUB_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


class _Factories:
    """Record what the CLI would have built real clients from, and hand out fakes."""

    def __init__(self, docs: list[dict[str, Any]], fail_on: int = 0) -> None:
        self.producer = ContractProducer(fail_on=fail_on)
        self.container = FakeContainer(docs, self.producer)
        self.container_args: argparse.Namespace | None = None
        self.producer_args: argparse.Namespace | None = None

    def make_container(self, args: argparse.Namespace) -> ClosableContainer:
        self.container_args = args
        return self.container

    def make_producer(self, args: argparse.Namespace) -> tuple[ProducerLike, Callable[[bytes], Any]]:
        self.producer_args = args
        return self.producer, bytes

    def main(self, argv: list[str], out: io.StringIO) -> int:
        return main(argv, container_factory=self.make_container, producer_factory=self.make_producer, out=out)


def test_cli_sends_deletes_and_prints_a_summary(cli_env: pytest.MonkeyPatch) -> None:
    """Filters reach the query, bodies go out, documents are deleted, clients are closed, secrets never printed."""
    cli_env.setenv("CosmosDBConnection", COSMOS_SECRET)
    cli_env.setenv("EVENT_HUB_CONNECTION_STRING", EVENT_HUB_SECRET)
    factories = _Factories(_mixed_docs())
    out = io.StringIO()
    argv = ["--reason", "invalid_value", "--reason", "internal_error", "--field", "body", "--since", "2026-11-21"]
    code = factories.main([*argv, "--delete-sent", "--event-hub", "hub-2"], out)
    assert code == 0
    assert factories.container_args is not None
    assert (factories.container_args.database, factories.container_args.container) == ("fraud", "rejected")
    assert factories.producer_args is not None
    assert factories.producer_args.event_hub == "hub-2"
    ((query, parameters, _),) = factories.container.queries
    assert "c.reason IN (@reason0, @reason1) AND c.field IN (@field0) AND c.rejected_at >= @since" in query
    assert {"name": "@since", "value": "2026-11-21T00:00:00.000Z"} in parameters
    assert len(factories.producer.bodies()) == 11
    assert len(factories.container.deleted) == 11
    assert factories.producer.closed
    assert factories.container.closed
    text = out.getvalue()
    assert "read 12, sent 11" in text
    assert COSMOS_SECRET not in text
    assert "SharedAccessKey" not in text


def test_cli_dry_run_needs_no_event_hub(cli_env: pytest.MonkeyPatch) -> None:
    """--dry-run builds no producer, so it needs no event hub settings."""
    cli_env.setenv("CosmosDBConnection", COSMOS_SECRET)
    factories = _Factories(_mixed_docs())
    out = io.StringIO()
    assert factories.main(["--dry-run", "--delete-sent"], out) == 0
    assert factories.producer_args is None
    assert factories.container.deleted == []
    assert out.getvalue().startswith("dry run: read 12, would send 11")


def test_cli_database_and_container_default_from_the_app_settings(cli_env: pytest.MonkeyPatch) -> None:
    """COSMOS_DATABASE and COSMOS_REJECTED_CONTAINER are the defaults when set."""
    cli_env.setenv("COSMOS_DATABASE", "fraud-dev")
    cli_env.setenv("COSMOS_REJECTED_CONTAINER", "rejected-dev")
    factories = _Factories([])
    assert factories.main(["--endpoint", "https://acct.documents.azure.com:443/", "--dry-run"], io.StringIO()) == 0
    assert factories.container_args is not None
    assert (factories.container_args.database, factories.container_args.container) == ("fraud-dev", "rejected-dev")


@pytest.mark.parametrize(
    ("env", "argv"),
    [
        ({}, ["--dry-run"]),
        ({"CosmosDBConnection": COSMOS_SECRET}, []),
        ({"CosmosDBConnection": COSMOS_SECRET}, ["--dry-run", "--since", "yesterday"]),
        ({"CosmosDBConnection": COSMOS_SECRET}, ["--dry-run", "--page-size", "0"]),
    ],
    ids=["no-cosmos", "no-event-hub", "bad-since", "bad-page-size"],
)
def test_cli_usage_errors_exit_2_before_any_client(
    cli_env: pytest.MonkeyPatch, env: dict[str, str], argv: list[str]
) -> None:
    """Missing destinations and bad values are argparse errors; no client is built."""
    for name, value in env.items():
        cli_env.setenv(name, value)
    factories = _Factories([])
    with pytest.raises(SystemExit) as exc:
        factories.main(argv, io.StringIO())
    assert exc.value.code == 2
    assert factories.container_args is None


def test_cli_failed_send_exits_1_with_a_truthful_summary(cli_env: pytest.MonkeyPatch) -> None:
    """A send that fails after retries stops the run with status 1; what was sent and deleted is reported."""
    cli_env.setenv("CosmosDBConnection", COSMOS_SECRET)
    factories = _Factories([rejected(payment(f"acct-{i}"), sequence=i) for i in range(4)], fail_on=3)
    out = io.StringIO()
    assert factories.main(["--namespace", "ns.servicebus.windows.net", "--delete-sent"], out) == 1
    assert "read 4, sent 2 in 2 batches, skipped 0 (truncated), deleted 2" in out.getvalue()
    assert len(factories.container.docs) == 2
    assert factories.producer.closed
    assert factories.container.closed


def test_cli_store_failure_exits_1(cli_env: pytest.MonkeyPatch) -> None:
    """A delete that fails past the SDK's retries stops the run with status 1, clients closed."""
    cli_env.setenv("CosmosDBConnection", COSMOS_SECRET)
    cli_env.setenv("EVENT_HUB_CONNECTION_STRING", EVENT_HUB_SECRET)
    factories = _Factories([rejected(payment("acct-1"))])

    def refuse(item: str, partition_key: str) -> None:
        raise StoreError(f"deleting {item} failed: CosmosHttpResponseError: (Forbidden)")

    factories.container.delete_item = refuse  # type: ignore[method-assign]
    out = io.StringIO()
    assert factories.main(["--delete-sent"], out) == 1
    assert "sent 1 in 1 batches" in out.getvalue()
    assert "deleted 0" in out.getvalue()
    assert factories.container.closed


@pytest.mark.parametrize("argv", [[], ["--namespace", "example.servicebus.windows.net"]], ids=["cs", "credential"])
def test_real_producer_is_built_lazily_and_offline(argv: list[str], cli_env: pytest.MonkeyPatch) -> None:
    """The Event Hubs client and credential are constructed (no network until a send) and closed cleanly."""
    eventhub = pytest.importorskip("azure.eventhub")
    pytest.importorskip("azure.identity")
    cli_env.setenv("EVENT_HUB_CONNECTION_STRING", EVENT_HUB_SECRET)
    from tools.redrive import parser
    from tools.redrive_clients import sdk_producer

    producer, make_event = sdk_producer(parser().parse_args(argv))
    assert make_event is eventhub.EventData
    producer.close()


def test_rejected_labels_are_left_for_the_labels_endpoint() -> None:
    """A rejected label (`kind: label`) is never sent to the transactions' hub, nor deleted; the summary counts it."""
    label = {**rejected(payment("acct-1", 7), sequence=7), "kind": "label"}
    kept = rejected(payment("acct-1", 8), sequence=8)
    producer = ContractProducer()
    container = FakeContainer([label, kept], producer)
    stats = run(container, producer, Options(delete_sent=True), now=_clock)
    assert producer.bodies() == [payment("acct-1", 8)]
    assert stats.labels == 1
    assert set(container.docs) == {label["id"]}
    assert "labels left for POST /api/labels 1" in stats.summary()
