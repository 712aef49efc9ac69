"""The labels path against cosmosdb-server: the Cosmos DB stores, and labels posted through the worker to states."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey

import functions.labels as labels_function
from devhost.cosmos_store import REJECTED, CosmosStore
from devhost.worker import Worker
from shared import caches
from shared.behaviour import days, merchant_store, merchants
from shared.behaviour.merchant_store import CosmosMerchantStore, MerchantStateUnavailableError, get_merchant_store
from shared.contract import timestamps
from shared.labels import store as label_store
from shared.labels.store import CosmosLabelStore, LabelStoreUnavailableError, Outcome, get_label_store
from tests.integration.cosmos_server import CosmosServer
from tests.integration.test_outage import BlockingProxy
from tests.invoke import HttpReply, http, timer

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LABELS, MERCHANTS = "labels", "merchants"


@pytest.fixture
def containers(
    cosmos_server: CosmosServer, cosmos_client: CosmosClient, cosmos_sink: CosmosStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CosmosStore, ContainerProxy, ContainerProxy]]:
    """The app configured as on Azure: labels and merchant states in the server's containers, the clock at NOW."""
    database = cosmos_client.get_database_client(cosmos_sink.database_name)
    labels = database.create_container_if_not_exists(LABELS, partition_key=PartitionKey(label_store.PARTITION_KEY))
    states = database.create_container_if_not_exists(
        MERCHANTS, partition_key=PartitionKey(merchant_store.PARTITION_KEY)
    )
    monkeypatch.setenv("LABEL_STORE", "cosmos")
    monkeypatch.setenv("MERCHANT_STATE", "cosmos")
    monkeypatch.setenv("COSMOS_DATABASE", cosmos_sink.database_name)
    monkeypatch.setenv(
        "CosmosDBConnection", f"AccountEndpoint={cosmos_server.endpoint};AccountKey={cosmos_server.key};"
    )
    monkeypatch.setattr(labels_function, "utc_now", lambda: NOW)
    caches.reset_all()
    yield cosmos_sink, labels, states
    caches.reset_all()


def post(worker: Worker, body: Any) -> HttpReply:
    return http(
        worker,
        "RecordLabels",
        "POST",
        "/api/labels",
        headers={"Content-Type": "application/json"},
        body=orjson.dumps(body),
    )


def doc(tid: str, fraud: bool, day: int, merchant: str | None = "m-1") -> dict[str, Any]:
    return {"id": tid, "transaction_id": tid, "fraud": fraud, "known_day": day, "merchant_id": merchant}


def test_label_store_creates_once_and_reads_a_day(
    containers: tuple[CosmosStore, ContainerProxy, ContainerProxy],
) -> None:
    """create_item then read back: stored, duplicate, conflict; `known_on` is the server's query on known_day."""
    store = get_label_store()
    assert isinstance(store, CosmosLabelStore)
    first = store.create([doc("a", True, 10), doc("b", False, 10), doc("c", True, 10, None), doc("d", True, 11)])
    assert [w.outcome for w in first] == [Outcome.STORED] * 4
    again = store.create([doc("a", True, 12), doc("b", True, 10)])
    assert [(w.outcome, w.stored_fraud) for w in again] == [(Outcome.DUPLICATE, True), (Outcome.CONFLICT, False)]
    assert sorted(store.known_on(10)) == [("m-1", False), ("m-1", True)]
    assert store.known_on(11) == [("m-1", True)]
    assert store.known_on(12) == []
    _, labels, _ = containers
    assert labels.read_item("a", partition_key="a")["known_day"] == 10  # never replaced


def test_many_labels_in_one_request(containers: tuple[CosmosStore, ContainerProxy, ContainerProxy]) -> None:
    """Several hundred creates go out concurrently and each is accounted for once."""
    store = get_label_store()
    assert store is not None
    docs = [doc(f"t-{i}", i % 3 == 0, 20, f"m-{i % 7}") for i in range(300)]
    assert all(w.outcome is Outcome.STORED for w in store.create(docs))
    assert all(w.outcome is Outcome.DUPLICATE for w in store.create(docs[::-1]))
    assert len(store.known_on(20)) == 300


def test_merchant_store_reads_usable_states_and_writes_conditionally(
    containers: tuple[CosmosStore, ContainerProxy, ContainerProxy],
) -> None:
    """Bulk reads past one chunk, If-Match replaces, create-if-absent, the progress apart from any merchant."""
    store = get_merchant_store()
    assert isinstance(store, CosmosMerchantStore)
    now = "2026-12-01T00:05:00.000Z"
    ids = [f"m-{i}" for i in range(merchant_store.READ_CHUNK + 120)] + [merchant_store.PROGRESS_ID]
    for i, merchant in enumerate(ids):
        assert store.write(merchant, merchants.merged_state(None, 100 + i % 5, 2, 1), None, now)
    read = store.read(ids)
    assert set(read) == set(ids)
    assert read["m-3"] == merchants.merged_state(None, 103, 2, 1)
    versioned = store.read_versioned(["m-1", "never"])
    assert versioned["never"] == merchant_store.Versioned(None)
    assert not store.write("m-1", merchants.merged_state(None, 1, 1, 1), None, now)  # exists: create loses
    newer = merchants.merged_state(versioned["m-1"].state, 200, 4, 0)
    assert store.write("m-1", newer, versioned["m-1"].version, now)
    assert not store.write("m-1", merchants.merged_state(None, 300, 1, 1), versioned["m-1"].version, now)  # stale
    assert store.read(["m-1"]) == {"m-1": newer}
    assert store.read_progress() == merchant_store.Progress(None)
    assert store.write_progress(7, None, now)
    progress = store.read_progress()
    assert progress.through == 7
    assert not store.write_progress(8, None, now)
    assert store.write_progress(8, progress.version, now)
    assert store.read([merchant_store.PROGRESS_ID]) == {merchant_store.PROGRESS_ID: read[merchant_store.PROGRESS_ID]}
    _, _, states = containers
    states.upsert_item({"id": "merchant:m-bad", "merchant_id": "m-bad", "state": {"v": 1, "day": [5, 4]}})
    assert store.read(["m-bad"]) == {}


def _known_ms(stored: dict[str, Any]) -> int:
    return max(timestamps.parse_ms(stored["known_at"]), timestamps.parse_ms(stored["recorded_at"]))


def test_posted_labels_become_the_merchant_states_label_totals_gives(
    functions_worker: Worker,
    containers: tuple[CosmosStore, ContainerProxy, ContainerProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Labels posted over four days through the worker (with bad ones and repeats), the timer run each day and
    twice at the end: the states read back hold exactly `merchants.label_totals` of the stored labels, and
    the rejected documents are storable in the rejected container."""
    sink, labels, _ = containers
    rng = np.random.default_rng(11)
    for day in range(4):
        moment = NOW + timedelta(days=day, hours=int(rng.integers(0, 11)))
        monkeypatch.setattr(labels_function, "utc_now", lambda moment=moment: moment)
        records: list[Any] = [
            {
                "transaction_id": f"tx-{day}-{i}",
                "fraud": bool(rng.random() < 0.25),
                "known_at": timestamps.format_ms(
                    int(moment.timestamp() * 1000) + int(rng.integers(-5, 30)) * 3_600_000
                ),
                "merchant_id": f"m-{rng.integers(0, 9)}",
                "source": "chargeback",
            }
            for i in range(60)
        ]
        records += [{"transaction_id": f"tx-{day}-x", "fraud": "yes", "known_at": "2026-11-20T00:00:00Z"}, 7]
        reply = post(functions_worker, {"records": records})
        assert reply.status_code == 200
        assert (reply.json()["stored"], len(reply.json()["rejected"])) == (60, 2)
        assert post(functions_worker, {"records": records[:5]}).json()["duplicates"] == 5
        assert sink.upsert(REJECTED, reply.invocation.documents("rejected")) == 2
        timer(functions_worker, "AggregateLabels")
    monkeypatch.setattr(labels_function, "utc_now", lambda: NOW + timedelta(days=6))
    timer(functions_worker, "AggregateLabels")
    timer(functions_worker, "AggregateLabels")

    stored = list(labels.read_all_items())
    assert len(stored) == 240
    codes, order = merchants.merchant_codes([d["merchant_id"] for d in stored])
    known_ms = np.asarray([_known_ms(d) for d in stored])
    # Each stored known day is the definition's: the UTC day of the later of known_at and recorded_at.
    assert [d["known_day"] for d in stored] == days.day_number(known_ms).tolist()
    totals = merchants.label_totals(codes, known_ms, np.asarray([d["fraud"] for d in stored]))
    today = int(days.day_number(np.asarray(int((NOW + timedelta(days=6)).timestamp() * 1000))))
    complete = totals.day() < today
    assert complete.all()  # every label's day is over by then (known_at at most 30 h ahead)
    store = get_merchant_store()
    assert store is not None
    states = store.read(order)
    assert set(states) == set(order)
    for code, merchant in enumerate(order):
        mask = (totals.code() == code) & complete
        assert states[merchant]["day"] == totals.day()[mask].tolist(), merchant
        assert states[merchant]["n"] == totals.a[mask].tolist(), merchant
        assert states[merchant]["fraud"] == totals.b[mask].tolist(), merchant
    assert sum(sum(s["n"]) for s in states.values()) == len(stored)
    rejected = sink.items(REJECTED)
    assert {r["kind"] for r in rejected} == {"label"}
    assert {r["reason"] for r in rejected} == {"wrong_type", "not_an_object"}


@pytest.fixture
def proxied(
    cosmos_server: CosmosServer, cosmos_client: CosmosClient
) -> Iterator[tuple[CosmosLabelStore, CosmosMerchantStore, BlockingProxy]]:
    """Label and merchant stores whose requests go through a proxy that can cut them off, with few SDK retries."""
    proxy = BlockingProxy(int(cosmos_server.endpoint.rsplit(":", 1)[1].rstrip("/")))
    client = CosmosClient(
        f"https://127.0.0.1:{proxy.port}/",
        cosmos_server.key,
        connection_verify=False,
        enable_endpoint_discovery=False,
        retry_total=1,
        retry_connect=1,
        retry_read=1,
        retry_backoff_max=1,
        connection_timeout=2,
    )
    name = f"test-{uuid.uuid4().hex}"
    database = client.create_database_if_not_exists(name)
    labels = database.create_container_if_not_exists(LABELS, partition_key=PartitionKey(label_store.PARTITION_KEY))
    states = database.create_container_if_not_exists(
        MERCHANTS, partition_key=PartitionKey(merchant_store.PARTITION_KEY)
    )
    yield CosmosLabelStore(labels), CosmosMerchantStore(states), proxy
    proxy.close()
    cosmos_client.delete_database(name)


def test_an_outage_is_a_503_naming_every_label_and_a_retry_stores_them(
    functions_worker: Worker,
    proxied: tuple[CosmosLabelStore, CosmosMerchantStore, BlockingProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With Cosmos DB unreachable nothing is claimed stored: 503, Retry-After, every valid label unconfirmed, the
    invalid one still rejected; the same request once it is back stores them all, once."""
    labels, merchant_states, proxy = proxied
    monkeypatch.setattr(labels_function, "get_label_store", lambda: labels)
    records = [{"transaction_id": f"tx-{i}", "fraud": False, "known_at": "2026-11-20T00:00:00Z"} for i in range(4)]
    records.insert(2, {"transaction_id": "tx-bad"})
    proxy.block()
    reply = post(functions_worker, {"records": records})
    assert reply.status_code == 503
    assert reply.header("Retry-After") == "30"
    assert reply.json()["unconfirmed"] == [0, 1, 3, 4]
    assert reply.json()["stored"] == 0
    assert [r["index"] for r in reply.json()["rejected"]] == [2]
    with pytest.raises(LabelStoreUnavailableError):
        labels.known_on(10)
    with pytest.raises(MerchantStateUnavailableError):
        merchant_states.read(["m-1"])
    proxy.unblock()
    again = post(functions_worker, {"records": records})
    assert again.status_code == 200
    assert (again.json()["stored"], again.json()["duplicates"]) == (4, 0)
