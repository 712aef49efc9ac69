"""Per-account behaviour state in a real Cosmos-protocol server, through the worker engine: exact under at-least-once.

ScoreTransactions runs in `azure-functions-runtime` with BEHAVIOUR_STATE=cosmos: it reads and
conditionally writes the `profiles` container of `@vercel/cosmosdb-server` with the Cosmos DB SDK,
as on Azure. The test plays the host's part after each invocation: it writes the scored outputs
(all of them, half of them, or none: a crash) and redelivers as Event Hubs would. The reference
for every comparison is `behaviour.replay` over the same payments in event time: the features
in-order delivery gives.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest

from devhost.cosmos_store import PROFILES, SCORED, CosmosStore
from devhost.worker import Worker
from shared.behaviour import features as behaviour
from shared.behaviour import state_codec
from shared.behaviour import store as state_store
from shared.generation.generator import TransactionGenerator
from shared.settings import get_settings
from tests.invoke import score

pytestmark = pytest.mark.integration

Documents = list[dict[str, Any]]


def _stream(n: int = 1200, accounts: int = 40, seed: int = 5) -> list[dict[str, Any]]:
    """A few dozen busy accounts, so most payments have history (in event-time order)."""
    return TransactionGenerator(seed=seed, accounts=accounts).generate(n)


def _reference(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Features by payment id as in-order delivery gives them: the training replay of the same stream."""
    from shared.contract.batch import validate_batch

    valid = validate_batch(records)
    payments = behaviour.Payments.of(
        valid.ids, valid.account_ids, behaviour.timestamps_ms(valid.timestamps), valid.numbers
    )
    rows = behaviour.replay(payments).tolist()
    return {id_: dict(zip(behaviour.FEATURES, row, strict=True)) for id_, row in zip(valid.ids, rows, strict=True)}


def _deliver(
    worker: Worker, store: CosmosStore, records: list[dict[str, Any]], first: int, write: float = 1.0
) -> Documents:
    """One delivery; the host then writes `write` (a share) of the scored output, as a crash midway would leave it."""
    bodies = [orjson.dumps(r) for r in records]
    result = worker.invoke("ScoreTransactions", *_message(bodies, first))
    scored = result.documents("scored")
    store.upsert(SCORED, scored[: round(len(scored) * write)])
    return scored


def _message(bodies: list[bytes], first: int) -> tuple[dict[str, Any], dict[str, Any]]:
    from devhost.host_messages import eventhub_input

    return eventhub_input(bodies, partition="0", first_sequence_number=first)


def _features(docs: Documents) -> dict[str, dict[str, float]]:
    """The account-behaviour features each document was scored with (its `behaviour` also holds merchant risk)."""
    return {d["id"]: {name: d["behaviour"][name] for name in behaviour.FEATURES} for d in docs}


def _scores(docs: Documents) -> dict[str, tuple[float, list[Any]]]:
    return {d["id"]: (d["fraud_probability"], d["reasons"]) for d in docs}


def _batches(records: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def test_in_order_delivery_gives_the_training_features(functions_worker: Worker, cosmos_state: CosmosStore) -> None:
    """Batch by batch through the worker and the server, every payment gets the features training computes."""
    records = _stream()
    scored: Documents = []
    for k, batch in enumerate(_batches(records, 200)):
        scored += _deliver(functions_worker, cosmos_state, batch, first=k * 200)
    assert _features(scored) == _reference(records)
    assert cosmos_state.count(PROFILES) == len({r["account_id"] for r in records})
    assert sum(d["behaviour"]["history_count"] > 0 for d in scored) > len(records) // 2


def test_replayed_batch_is_identical(functions_worker: Worker, cosmos_state: CosmosStore) -> None:
    """A batch delivered again after its outputs were written: identical features and scores, nothing counted twice."""
    records = _stream()
    batches = _batches(records, 300)
    _deliver(functions_worker, cosmos_state, batches[0], first=0)
    first = _deliver(functions_worker, cosmos_state, batches[1], first=300)
    store = state_store.get_state_store()
    assert store is not None
    accounts = sorted({r["account_id"] for r in records})
    states_before = cosmos_state.items(PROFILES)
    versions_before = store.read(accounts).versions
    again = _deliver(functions_worker, cosmos_state, batches[1], first=300)
    assert _features(again) == _features(first)
    assert _scores(again) == _scores(first)
    assert cosmos_state.items(PROFILES) == states_before
    assert store.read(accounts).versions == versions_before  # nothing written: every payment was in its state
    for doc in states_before:
        state = state_codec.decode(doc)  # the state holds each payment once
        assert len(state["id"]) == len(set(state["id"]))


@pytest.mark.parametrize("written", [0.0, 0.5])
def test_redelivery_after_a_crash_is_identical(
    functions_worker: Worker, cosmos_state: CosmosStore, written: float
) -> None:
    """A host that died with none or half of a batch's outputs written redelivers it: identical features and scores."""
    records = _stream()
    batches = _batches(records, 300)
    _deliver(functions_worker, cosmos_state, batches[0], first=0)
    first = _deliver(functions_worker, cosmos_state, batches[1], first=300, write=written)  # the crash
    again = _deliver(functions_worker, cosmos_state, batches[1], first=300)  # from the last checkpoint
    assert _features(again) == _features(first)
    assert _scores(again) == _scores(first)
    rest = _deliver(functions_worker, cosmos_state, batches[2], first=600)
    reference = _reference(records[:900])
    assert _features(rest) == {d["id"]: reference[d["id"]] for d in rest}


def test_restart_and_partition_move_lose_nothing(functions_worker: Worker, cosmos_state: CosmosStore) -> None:
    """A new process (fresh client, nothing in memory) for each batch, as after a restart or a partition move."""
    records = _stream()
    scored: Documents = []
    for k, batch in enumerate(_batches(records, 200)):
        state_store.reset()  # the next batch is scored by a process that has never seen this partition
        scored += _deliver(functions_worker, cosmos_state, batch, first=k * 200)
    assert _features(scored) == _reference(records)


def test_out_of_order_within_a_batch(functions_worker: Worker, cosmos_state: CosmosStore) -> None:
    """The same payments shuffled within each batch: the same features as in order (they are defined on event time)."""
    records = _stream()
    shuffled: Documents = []
    rng = random.Random(3)
    for k, batch in enumerate(_batches(records, 300)):
        mixed = list(batch)
        rng.shuffle(mixed)
        shuffled += _deliver(functions_worker, cosmos_state, mixed, first=k * 300)
    assert _features(shuffled) == _reference(records)


def test_late_payment_across_batches(functions_worker: Worker, cosmos_state: CosmosStore) -> None:
    """Payments held back one batch get exactly their in-order features.

    Within the documented bound: fewer than STATE_LIMIT - WINDOW newer payments of the same account
    were stored before each late one (checked below). Payments of their accounts scored before they
    arrived keep the features they were scored with: scoring is not delayed, so those could not see
    a payment that had not arrived yet.
    """
    records = _stream(1200, accounts=200)
    batches = _batches(records, 200)
    held_back = [batch[::9] for batch in batches]  # every ninth payment arrives with the next batch
    deliveries = []
    for k, batch in enumerate(batches):
        late = held_back[k - 1] if k else []
        deliveries.append([r for r in batch if r not in held_back[k]] + late)
    deliveries.append(held_back[-1])
    scored: Documents = []
    for k, delivery in enumerate(deliveries):
        scored += _deliver(functions_worker, cosmos_state, delivery, first=k * 200)
    reference = _reference(records)
    late_ids = {r["id"] for batch in held_back for r in batch}
    for batch, held in zip(batches, held_back, strict=True):
        for r in held:  # the bound: newer payments of its account stored (with its own batch) before it arrived
            newer = [x for x in batch if x["account_id"] == r["account_id"] and x["timestamp"] > r["timestamp"]]
            assert len(newer) < behaviour.STATE_LIMIT - behaviour.WINDOW
    by_id = _features(scored)
    assert {i: by_id[i] for i in late_ids} == {i: reference[i] for i in late_ids}


def test_store_down_scores_with_history_unknown_and_writes_nothing(
    functions_worker: Worker, cosmos_state: CosmosStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the profiles store unreachable, every payment is still scored (history unknown); no state is overwritten."""
    monkeypatch.setenv("CosmosDBConnection", "AccountEndpoint=https://127.0.0.1:9/;AccountKey=" + "a" * 88 + ";")
    get_settings.cache_clear()
    state_store.reset()
    records = _stream(100)
    result = functions_worker.invoke("ScoreTransactions", *_message([orjson.dumps(r) for r in records], 0))
    scored = result.documents("scored")
    assert len(scored) == 100
    assert {d["account_history"] for d in scored} == {"unavailable"}
    assert cosmos_state.count(PROFILES) == 0
    unknown = behaviour.no_history({f: np.asarray([r[f] for r in records]) for f in ("amount", "old_balance")})
    assert [[d["behaviour"][name] for name in behaviour.FEATURES] for d in scored] == unknown.tolist()


def test_score_endpoint_reads_stored_history(functions_worker: Worker, cosmos_state: CosmosStore) -> None:
    """POST /api/score uses a known account's stored state and writes nothing; an unknown one is history unknown."""
    from tests.invoke import http

    records = _stream(600)
    for k, batch in enumerate(_batches(records, 300)):
        _deliver(functions_worker, cosmos_state, batch, first=k * 300)
    states_before = cosmos_state.items(PROFILES)
    last = records[-1]
    a_minute_later = datetime.fromisoformat(last["timestamp"]) + timedelta(minutes=1)
    query = {**last, "id": "query-1", "timestamp": a_minute_later.isoformat(timespec="milliseconds")}
    stranger = {**last, "id": "query-2", "account_id": "acct-never-seen"}
    reply = http(
        functions_worker,
        "ScoreRequest",
        "POST",
        "/api/score",
        headers={"Content-Type": "application/json"},
        body=orjson.dumps({"data": [query, stranger]}),
    )
    assert reply.status_code == 200
    known_result, unknown_result = reply.json()["results"]
    assert "fraud_probability" in known_result
    assert "fraud_probability" in unknown_result
    assert cosmos_state.items(PROFILES) == states_before
    scored_known, _ = score(functions_worker, [orjson.dumps(query)])
    # The same record through the event path (which does store it) gets the same probability.
    assert scored_known[0]["fraud_probability"] == known_result["fraud_probability"]
    assert scored_known[0]["behaviour"]["history_count"] > 0
