"""Merchant risk in ScoreTransactions, through the worker engine, with labels and states in cosmosdb-server.

Labels are posted to RecordLabels day after day (the clock moved as the days pass), aggregated by
AggregateLabels, then payments at those merchants are scored by ScoreTransactions with
BEHAVIOUR_STATE, LABEL_STORE and MERCHANT_STATE all `cosmos`, as on Azure. The reference for every
payment is `merchants.replay` over the labels the container holds (the training definition), so
serving and training agree; a redelivered batch, a batch scored after a restart on another
partition, and one scored again after labels arrived late all give the very same features and
scores. An aggregation that fails partway, its process restarted, is finished by the next run: the
states end as an uninterrupted run leaves them, and scoring still equals the replay.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey

import functions.labels as labels_function
from devhost.cosmos_store import PROFILES, CosmosStore
from devhost.host_messages import eventhub_input
from devhost.worker import Worker, WorkerError
from shared import caches
from shared.behaviour import merchant_store, merchants
from shared.contract import timestamps
from shared.generation.generator import TransactionGenerator
from shared.labels import store as label_store
from tests.integration.cosmos_server import CosmosServer
from tests.invoke import http, timer

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
MERCHANTS = ("m-risky", "m-mixed", "m-clean")


@pytest.fixture
def on_cosmos(
    cosmos_server: CosmosServer, cosmos_client: CosmosClient, cosmos_sink: CosmosStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ContainerProxy]:
    """Every store in the server: profiles, labels and merchants; yields the labels container."""
    database = cosmos_client.get_database_client(cosmos_sink.database_name)
    cosmos_sink.upsert(PROFILES, [])
    labels = database.create_container_if_not_exists("labels", partition_key=PartitionKey(label_store.PARTITION_KEY))
    database.create_container_if_not_exists("merchants", partition_key=PartitionKey(merchant_store.PARTITION_KEY))
    for name in ("BEHAVIOUR_STATE", "LABEL_STORE", "MERCHANT_STATE"):
        monkeypatch.setenv(name, "cosmos")
    monkeypatch.setenv("COSMOS_DATABASE", cosmos_sink.database_name)
    monkeypatch.setenv(
        "CosmosDBConnection", f"AccountEndpoint={cosmos_server.endpoint};AccountKey={cosmos_server.key};"
    )
    caches.reset_all()
    yield labels
    caches.reset_all()


def _post_labels(worker: Worker, monkeypatch: pytest.MonkeyPatch, day: datetime, records: list[dict[str, Any]]) -> None:
    monkeypatch.setattr(labels_function, "utc_now", lambda: day)
    reply = http(
        worker, "RecordLabels", "POST", "/api/labels",
        headers={"Content-Type": "application/json"}, body=orjson.dumps({"records": records}),
    )  # fmt: skip
    assert reply.status_code == 200, reply.body
    assert reply.json()["stored"] == len(records)


def _labels_for(day: datetime, index: int) -> list[dict[str, Any]]:
    """A day's confirmed outcomes: m-risky mostly fraud, m-mixed some, m-clean none."""
    share = {"m-risky": 0.8, "m-mixed": 0.3, "m-clean": 0.0}
    rng = np.random.default_rng(index)
    return [
        {
            "transaction_id": f"old-{index}-{merchant}-{i}",
            "fraud": bool(rng.random() < share[merchant]),
            "known_at": timestamps.format_ms(int(day.timestamp() * 1000) - 3_600_000),
            "merchant_id": merchant,
            "source": "chargeback",
        }
        for merchant in MERCHANTS
        for i in range(10)
    ]


def _payments(n: int = 300) -> list[dict[str, Any]]:
    """Payments over the last 12 days at the three merchants, an unlabelled one and none."""
    records = TransactionGenerator(seed=21, accounts=30, start=TODAY - timedelta(days=12)).generate(n)
    rng = np.random.default_rng(2)
    choices = [*MERCHANTS, "m-unknown", None]
    for record in records:
        merchant = choices[int(rng.integers(0, len(choices)))]
        if merchant is None:
            record.pop("merchant_id", None)
        else:
            record["merchant_id"] = merchant
    return [r for r in records if timestamps.parse_ms(r["timestamp"]) < int(TODAY.timestamp() * 1000)]


def _score(worker: Worker, records: list[dict[str, Any]], partition: str = "0") -> dict[str, dict[str, Any]]:
    bodies = [orjson.dumps(r) for r in records]
    enqueued = [TODAY] * len(bodies)
    result = worker.invoke("ScoreTransactions", *eventhub_input(bodies, partition=partition, enqueued=enqueued))
    assert result.documents("rejected") == []
    return {d["id"]: d for d in result.documents("scored")}


def _reference(labels: ContainerProxy, records: list[dict[str, Any]]) -> np.ndarray:
    stored = [d for d in labels.read_all_items() if d.get("merchant_id")]
    known = [max(timestamps.parse_ms(d["known_at"]), timestamps.parse_ms(d["recorded_at"])) for d in stored]
    return merchants.replay(
        [r.get("merchant_id") for r in records],
        np.asarray([timestamps.parse_ms(r["timestamp"]) for r in records]),
        [d["merchant_id"] for d in stored],
        np.asarray(known),
        np.asarray([int(d["fraud"]) for d in stored]),
        merchants.DEFAULT_DELAY_DAYS,
    )


def _documents(container: ContainerProxy) -> dict[str, dict[str, Any]]:
    """A container's documents by id, without the system fields Cosmos DB adds (`_etag`, `_ts`, `_rid`...)."""
    return {d["id"]: {k: v for k, v in d.items() if not k.startswith("_")} for d in container.read_all_items()}


def _count_writes(monkeypatch: pytest.MonkeyPatch, fail_after: int | None = None) -> list[str]:
    """The merchants whose states the store writes from now on, in order; with `fail_after`, that many
    writes go through and every later one fails as the store does when the SDK gives up (an outage mid-run)."""
    real = merchant_store.CosmosMerchantStore.write
    written: list[str] = []
    lock = threading.Lock()

    def write(
        store: merchant_store.CosmosMerchantStore, merchant_id: str, state: Mapping[str, Any], version: Any, now: str
    ) -> bool:
        with lock:  # the aggregation writes a day's merchants on several threads
            if fail_after is not None and len(written) >= fail_after:
                raise merchant_store.MerchantStateWriteError(f"writing {merchant_id!r} failed: ServiceResponseError")
            written.append(merchant_id)
        return real(store, merchant_id, state, version, now)

    monkeypatch.setattr(merchant_store.CosmosMerchantStore, "write", write)
    return written


def _risk(docs: dict[str, dict[str, Any]], records: list[dict[str, Any]]) -> np.ndarray:
    return np.asarray([[docs[r["id"]]["behaviour"][f] for f in merchants.FEATURES] for r in records])


def test_merchant_risk_is_the_training_definition_and_exact_under_replay(
    functions_worker: Worker, on_cosmos: ContainerProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels known 30 to 20 days ago count for payments 12 to 1 days ago exactly as training computes them;
    a redelivery, a restart on another partition and labels that arrive late change nothing."""
    for index, back in enumerate(range(30, 19, -2)):
        _post_labels(
            functions_worker,
            monkeypatch,
            TODAY - timedelta(days=back),
            _labels_for(TODAY - timedelta(days=back), index),
        )
    monkeypatch.setattr(labels_function, "utc_now", lambda: TODAY)
    timer(functions_worker, "AggregateLabels")

    records = _payments()
    first = _score(functions_worker, records)
    expected = _reference(on_cosmos, records)
    np.testing.assert_array_equal(_risk(first, records), expected)
    assert {d["merchant_history"] for d in first.values()} == {"read"}
    risky = [r for r in records if r.get("merchant_id") == "m-risky"]
    rate = first[risky[0]["id"]]["behaviour"]["merchant_fraud_rate_30d"]
    assert rate > 0.5
    assert all(
        first[r["id"]]["behaviour"]["merchant_labelled_30d"] == 0
        for r in records
        if r.get("merchant_id") in (None, "m-unknown")
    )

    again = _score(functions_worker, records)  # Event Hubs redelivers from the checkpoint
    assert {i: (d["behaviour"], d["fraud_probability"]) for i, d in again.items()} == {
        i: (d["behaviour"], d["fraud_probability"]) for i, d in first.items()
    }

    # Late labels: outcomes of the same merchants known "20 days ago" but recorded today count from today.
    late = [{**label, "transaction_id": "late-" + label["transaction_id"]} for label in _labels_for(TODAY, 99)]
    for label in late:
        label["known_at"] = timestamps.format_ms(int((TODAY - timedelta(days=20)).timestamp() * 1000))
    _post_labels(functions_worker, monkeypatch, TODAY, late)
    timer(functions_worker, "AggregateLabels")
    caches.reset("merchant store", "state store")  # a restart: the partition moves to a fresh process
    moved = _score(functions_worker, records, partition="1")
    np.testing.assert_array_equal(_risk(moved, records), expected)
    assert {i: d["fraud_probability"] for i, d in moved.items()} == {
        i: d["fraud_probability"] for i, d in first.items()
    }


def test_flagged_payments_at_a_risky_merchant_say_so_in_words(
    functions_worker: Worker, on_cosmos: ContainerProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merchant reason names confirmed frauds and the window; no reason is ever a personal attribute."""
    for index, back in enumerate(range(30, 9, -1)):
        day = TODAY - timedelta(days=back)
        labels = [{**label, "fraud": label["merchant_id"] != "m-clean"} for label in _labels_for(day, index)]
        _post_labels(functions_worker, monkeypatch, day, labels)
    monkeypatch.setattr(labels_function, "utc_now", lambda: TODAY)
    timer(functions_worker, "AggregateLabels")
    docs = _score(functions_worker, _payments(600))
    reasons = [r for d in docs.values() for r in d["reasons"]]
    assert reasons
    assert not {r["field"] for r in reasons} & {"income", "credit", "marital_status", "children"}
    merchant_texts = [r["text"] for r in reasons if r["field"].startswith("merchant_")]
    assert any("confirmed fraud" in text and "days up to 7 days ago" in text for text in merchant_texts)


@pytest.mark.parametrize("budget", [pytest.param(1, id="first-write"), pytest.param(8, id="mid-day")])
def test_an_aggregation_that_fails_partway_is_finished_by_the_next_run_after_a_restart(
    functions_worker: Worker,
    on_cosmos: ContainerProxy,
    cosmos_client: CosmosClient,
    cosmos_sink: CosmosStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    budget: int,
) -> None:
    """A run whose writes fail after `budget` merchant states fails its invocation and leaves whole days
    behind its progress and a part of the next; after a restart the next run ends exactly where an
    uninterrupted one does, and payments score as the training replay."""
    for index, back in enumerate(range(30, 19, -2)):
        day = TODAY - timedelta(days=back)
        _post_labels(functions_worker, monkeypatch, day, _labels_for(day, index))
    monkeypatch.setattr(labels_function, "utc_now", lambda: TODAY)
    database = cosmos_client.get_database_client(cosmos_sink.database_name)
    uninterrupted = database.create_container_if_not_exists(
        "merchants-uninterrupted", partition_key=PartitionKey(merchant_store.PARTITION_KEY)
    )
    with monkeypatch.context() as elsewhere:
        elsewhere.setenv("COSMOS_MERCHANTS_CONTAINER", uninterrupted.id)
        caches.reset("settings", "merchant store")
        timer(functions_worker, "AggregateLabels")
    caches.reset("settings", "merchant store")
    reference = _documents(uninterrupted)
    full = {i: d["state"] for i, d in reference.items() if i != merchant_store.PROGRESS_ID}
    assert sorted(full) == sorted(merchant_store.document_id(m) for m in MERCHANTS)
    total = sum(len(s["day"]) for s in full.values())  # a run writes a merchant's state per known day
    assert budget < total

    merchants_container = database.get_container_client("merchants")
    with monkeypatch.context() as outage:
        written = _count_writes(outage, fail_after=budget)
        with pytest.raises(WorkerError, match="MerchantStateWriteError"):
            timer(functions_worker, "AggregateLabels")
    assert len(written) == budget
    partial = _documents(merchants_container)
    through = partial[merchant_store.PROGRESS_ID]["through"]
    assert through < reference[merchant_store.PROGRESS_ID]["through"]
    states = {i: d["state"] for i, d in partial.items() if i != merchant_store.PROGRESS_ID}
    assert sum(len(s["day"]) for s in states.values()) == budget  # one known day set per write that went through
    for doc_id, state in full.items():
        kept = len(states[doc_id]["day"]) if doc_id in states else 0
        assert kept >= sum(1 for d in state["day"] if d <= through)  # every day up to the progress is applied
        assert all(d <= through + 1 for d in state["day"][:kept])  # nothing past the day that failed
        if kept:
            prefix = {"day": state["day"][:kept], "n": state["n"][:kept], "fraud": state["fraud"][:kept]}
            assert states[doc_id] == {**state, **prefix, "through": prefix["day"][-1]}

    caches.reset_all()  # a restart: the next run is a fresh process, its writes working again
    caplog.clear()
    with monkeypatch.context() as counted, caplog.at_level(logging.INFO, logger="shared.labels.aggregate"):
        resumed = _count_writes(counted)
        timer(functions_worker, "AggregateLabels")
    applied = [r.getMessage() for r in caplog.records if r.getMessage().startswith("applied known day")]
    assert applied
    assert applied[0].startswith(f"applied known day {through + 1}:")  # on from the progress, not from scratch
    assert len(resumed) == total - budget  # the states set before the failure are read and left as they are
    assert _documents(merchants_container) == reference

    records = _payments()
    scored = _score(functions_worker, records)
    assert {d["merchant_history"] for d in scored.values()} == {"read"}
    np.testing.assert_array_equal(_risk(scored, records), _reference(on_cosmos, records))
