"""The local Cosmos DB server and the sink that stands in for the Cosmos DB output binding."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey
from azure.cosmos.exceptions import CosmosHttpResponseError

from devhost.cosmos_store import REJECTED, SCORED, CosmosStore
from tests.integration import cosmos_server
from tests.integration.cosmos_server import CosmosServer

pytestmark = pytest.mark.integration


def scored_docs(n: int, *, amount: float = 10.0) -> list[dict[str, Any]]:
    return [
        {"id": f"tx-{i:04d}", "account_id": f"acct-{i % 7}", "amount": amount, "is_flagged": i % 10 == 0}
        for i in range(n)
    ]


def test_upsert_of_100_documents_stores_100(cosmos_sink: CosmosStore) -> None:
    """A fresh database starts empty; 100 distinct documents become 100 items."""
    assert cosmos_sink.count(SCORED) == 0

    assert cosmos_sink.upsert(SCORED, scored_docs(100)) == 100

    assert cosmos_sink.count(SCORED) == 100
    assert cosmos_sink.ids(SCORED) == [f"tx-{i:04d}" for i in range(100)]


def test_replayed_batch_overwrites_instead_of_duplicating(cosmos_sink: CosmosStore) -> None:
    """Upserting the same ids again (a redelivered batch) updates the items in place."""
    cosmos_sink.upsert(SCORED, scored_docs(100, amount=10.0))

    cosmos_sink.upsert(SCORED, scored_docs(100, amount=99.5))

    assert cosmos_sink.count(SCORED) == 100
    assert {item["amount"] for item in cosmos_sink.items(SCORED)} == {99.5}


def test_same_id_under_two_partition_key_values_is_two_items(cosmos_sink: CosmosStore) -> None:
    """Cosmos DB keys an item by (partition key value, id): ids are unique only within one partition."""
    cosmos_sink.upsert(SCORED, [{"id": "tx-1", "account_id": "A", "n": 1}, {"id": "tx-1", "account_id": "B", "n": 2}])
    cosmos_sink.upsert(SCORED, [{"id": "tx-1", "account_id": "A", "n": 3}])

    assert cosmos_sink.count(SCORED) == 2
    assert cosmos_sink.ids(SCORED) == ["tx-1", "tx-1"]
    assert cosmos_sink.get(SCORED, "tx-1", "A") == {"id": "tx-1", "account_id": "A", "n": 3}
    assert cosmos_sink.get(SCORED, "tx-1", "B") == {"id": "tx-1", "account_id": "B", "n": 2}
    assert cosmos_sink.get(SCORED, "tx-1", "C") is None


def test_items_read_back_as_written(cosmos_sink: CosmosStore) -> None:
    """Every JSON type survives the round trip; only the system properties are added (and removed again)."""
    doc = {
        "id": "tx-ü-1",
        "account_id": "acct-1",
        "amount": 1234.5678,
        "children": 2,
        "is_fraud": None,
        "is_flagged": True,
        "reasons": ["amount", "foreign"],
        "nested": {"a": [1, 2.5, "x"], "b": {"c": False}},
        "text": "naïve café 🚀",
    }

    cosmos_sink.upsert(SCORED, [doc])

    assert cosmos_sink.items(SCORED) == [doc]
    assert cosmos_sink.get(SCORED, "tx-ü-1", "acct-1") == doc


def test_function_output_is_accepted(cosmos_sink: CosmosStore) -> None:
    """What a function sets on its output, a `func.DocumentList`, goes in unchanged."""
    docs = func.DocumentList(func.Document.from_dict(d) for d in scored_docs(3))

    assert cosmos_sink.upsert(SCORED, docs) == 3
    assert cosmos_sink.items(SCORED) == sorted(scored_docs(3), key=lambda d: d["id"])


def test_rejected_container_takes_documents_without_account_id(cosmos_sink: CosmosStore) -> None:
    """`rejected` is partitioned on /id, so a reject with a null or absent account_id is stored and replayable."""
    rejects: list[dict[str, Any]] = [
        {"id": "rejected-1", "reason": "invalid_json", "raw_body": "{"},
        {"id": "rejected-2", "reason": "missing", "account_id": None},
    ]

    cosmos_sink.upsert(REJECTED, rejects)
    cosmos_sink.upsert(REJECTED, rejects)

    assert cosmos_sink.ids(REJECTED) == ["rejected-1", "rejected-2"]
    assert cosmos_sink.get(REJECTED, "rejected-2", "rejected-2") == rejects[1]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"account_id": "A"}, "document id None"),
        ({"id": "", "account_id": "A"}, "document id ''"),
        ({"id": "a/b", "account_id": "A"}, "document id 'a/b'"),
        ({"id": "x", "account_id": "A", "p": float("nan")}, "not valid JSON"),
        ({"id": "x", "account_id": "A", "at": datetime(2024, 1, 1, tzinfo=UTC)}, "not valid JSON"),
        ({"id": "x"}, "partition key /account_id = None"),
        ({"id": "x", "account_id": None}, "partition key /account_id = None"),
        ({"id": "x", "account_id": ""}, "partition key /account_id = ''"),
        ({"id": "x", "account_id": {"k": 1}}, "partition key /account_id = {'k': 1}"),
    ],
)
def test_invalid_document_fails_the_whole_batch(cosmos_sink: CosmosStore, bad: dict[str, Any], message: str) -> None:
    """One unwritable document fails the call before anything is written, as the worker's serialisation would."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("{", r"\{")):
        cosmos_sink.upsert(SCORED, [*scored_docs(2), bad])

    assert cosmos_sink.count(SCORED) == 0


def test_misuse_is_refused(cosmos_sink: CosmosStore) -> None:
    """A single document instead of a list, or an unknown container, is an error rather than a silent no-op."""
    with pytest.raises(TypeError, match="list of documents"):
        cosmos_sink.upsert(SCORED, func.Document.from_dict(scored_docs(1)[0]))
    with pytest.raises(ValueError, match="unknown container 'scores'"):
        cosmos_sink.upsert("scores", scored_docs(1))


def test_sink_creation_is_idempotent(cosmos_client: CosmosClient, cosmos_sink: CosmosStore) -> None:
    """A second sink over the same database reuses its containers and sees their items."""
    cosmos_sink.upsert(SCORED, scored_docs(5))

    again = CosmosStore(cosmos_client, cosmos_sink.database_name)

    assert again.count(SCORED) == 5


@pytest.fixture
def raw_container(cosmos_client: CosmosClient, cosmos_sink: CosmosStore) -> ContainerProxy:
    """The sink's `scored` container through the bare SDK, holding two accounts' items."""
    cosmos_sink.upsert(SCORED, scored_docs(4))
    return cosmos_client.get_database_client(cosmos_sink.database_name).get_container_client(SCORED)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT VALUE COUNT(1) FROM c", [4]),
        ("SELECT TOP 2 VALUE c.id FROM c ORDER BY c.id DESC", ["tx-0003", "tx-0002"]),
        ("SELECT VALUE c.id FROM c WHERE c.amount = @amount AND c.account_id = 'acct-1'", ["tx-0001"]),
    ],
)
def test_server_supports_cross_partition_queries(
    raw_container: ContainerProxy, query: str, expected: list[Any]
) -> None:
    """COUNT, TOP, ORDER BY and parameters work with enable_cross_partition_query."""
    params = [{"name": "@amount", "value": 10.0}]
    found = list(raw_container.query_items(query, parameters=params, enable_cross_partition_query=True))
    assert found == expected


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM c OFFSET 0 LIMIT 1",
        "SELECT DISTINCT VALUE c.account_id FROM c",
        "SELECT c.account_id, COUNT(1) AS n FROM c GROUP BY c.account_id",
    ],
)
def test_server_lacks_offset_limit_distinct_group_by(raw_container: ContainerProxy, query: str) -> None:
    """The server's SQL parser rejects OFFSET/LIMIT, DISTINCT and GROUP BY with a 400."""
    with pytest.raises(CosmosHttpResponseError) as error:
        list(raw_container.query_items(query, enable_cross_partition_query=True))
    assert error.value.status_code == 400


def test_server_quirks(raw_container: ContainerProxy) -> None:
    """Where the server differs from Cosmos DB; the sink works around each of these."""
    # query_items(partition_key=...) is refused unless the query text itself filters on the key.
    with pytest.raises(CosmosHttpResponseError, match="missing partition keys"):
        list(raw_container.query_items("SELECT * FROM c", partition_key="acct-1"))
    # A point read of an absent id is a 500, not a 404 (CosmosResourceNotFoundError).
    with pytest.raises(CosmosHttpResponseError) as error:
        raw_container.read_item("no-such-id", partition_key="acct-1")
    assert error.value.status_code == 500
    # Transactional batches and throughput (offers) are not implemented.
    with pytest.raises(CosmosHttpResponseError):
        raw_container.execute_item_batch([("upsert", ({"id": "b", "account_id": "acct-1"},))], partition_key="acct-1")
    with pytest.raises(CosmosHttpResponseError, match="no route"):
        raw_container.get_throughput()


def test_server_conflates_null_and_missing_partition_keys(cosmos_client: CosmosClient) -> None:
    """Cosmos DB stores these two as distinct items; the server files both under the id and fails the second (500).

    This is why the sink refuses null and missing partition key values.
    """
    name = f"test-{uuid.uuid4().hex}"
    database = cosmos_client.create_database(name)
    try:
        container = database.create_container("c", partition_key=PartitionKey(path="/account_id"))
        container.upsert_item({"id": "x", "account_id": None, "v": 1})
        with pytest.raises(CosmosHttpResponseError, match="replacing partition key") as error:
            container.upsert_item({"id": "x", "v": 2})
        assert error.value.status_code == 500
        assert [item["v"] for item in container.read_all_items()] == [1]
    finally:
        cosmos_client.delete_database(name)


def test_server_stops_and_leaves_no_process(tmp_path: Path) -> None:
    """Leaving the `with` block ends the node process; a second stop is harmless."""
    with CosmosServer(log_dir=tmp_path) as server:
        pid = server.pid
        assert pid is not None
        assert server.endpoint.startswith("https://127.0.0.1:")
        assert server.startup_seconds is not None
        assert server.startup_seconds < 10
    server.stop()

    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.endpoint


def test_server_exits_when_its_parent_goes_away(tmp_path: Path) -> None:
    """The launcher exits on EOF from its stdin, so a killed pytest leaves no orphaned server."""
    with CosmosServer(log_dir=tmp_path) as server:
        process = server._process
        assert process is not None
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=5) == 0


@pytest.mark.parametrize("required", ["1", ""])
def test_missing_install_skips_or_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, required: str) -> None:
    """Without node_modules a run skips with the fix named, unless REQUIRE_SERVICES=1 makes it an error."""
    monkeypatch.setattr(cosmos_server, "PACKAGE_DIR", cosmos_server.REPO_ROOT / "no-such-dir")
    monkeypatch.setenv("REQUIRE_SERVICES", required)
    expected = RuntimeError if required == "1" else pytest.skip.Exception

    with pytest.raises(expected, match=r"cosmosdb-server is unavailable: .* Run `make test`"):
        CosmosServer(log_dir=tmp_path).start()


def test_server_that_dies_at_start_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A launcher that exits early fails fast with its log in the message."""
    monkeypatch.setattr(cosmos_server, "LAUNCHER", "console.error('boom'); process.exit(3);")

    with pytest.raises(RuntimeError, match=r"exited with code 3(.|\n)*boom"):
        CosmosServer(log_dir=tmp_path).start()
