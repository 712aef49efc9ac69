"""The scorer's Cosmos DB outputs, as the worker engine hands them to the host, written to and read back from a
real Cosmos-protocol server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devhost.cosmos_store import REJECTED, SCORED, CosmosStore
from devhost.worker import Worker
from shared.generation.generator import TransactionGenerator
from tests.invoke import score

pytestmark = pytest.mark.integration


def _score(worker: Worker, bodies: list[bytes], first: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return score(worker, bodies, partition="1", first_sequence_number=first)


def test_scored_documents_round_trip(functions_worker: Worker, cosmos_sink: CosmosStore) -> None:
    """What ScoreTransactions sets on its outputs is accepted by Cosmos and reads back unchanged."""
    bodies = [json.dumps(r).encode() for r in TransactionGenerator(seed=11).generate(300)]
    bodies.append(b'{"id": "broken"}')
    scored, rejected = _score(functions_worker, bodies)
    assert cosmos_sink.upsert(SCORED, scored) == 300
    assert cosmos_sink.upsert(REJECTED, rejected) == 1
    stored = {d["id"]: d for d in cosmos_sink.items(SCORED)}
    for doc in scored:
        assert stored[doc["id"]] == doc
    (reject,) = cosmos_sink.items(REJECTED)
    assert reject["field"] == "timestamp"
    assert reject["raw_body"] == '{"id": "broken"}'


def test_replayed_batch_overwrites(functions_worker: Worker, cosmos_sink: CosmosStore) -> None:
    """Redelivering a batch (at-least-once) leaves one document per transaction and per bad event."""
    bodies = [json.dumps(r).encode() for r in TransactionGenerator(seed=12).generate(200)]
    bodies += [b"not json", b"\xff"]
    for _ in range(2):
        scored, rejected = _score(functions_worker, bodies, first=500)
        cosmos_sink.upsert(SCORED, scored)
        cosmos_sink.upsert(REJECTED, rejected)
    assert cosmos_sink.count(SCORED) == 200
    assert cosmos_sink.count(REJECTED) == 2
    assert len(set(cosmos_sink.ids(SCORED))) == 200


def test_local_runner_against_cosmos(cosmos_sink: CosmosStore) -> None:
    """The local pipeline with a Cosmos endpoint as its store: N in, N stored, replay changes no count."""
    from devhost.runner import LocalPipeline, RunOptions

    with LocalPipeline(cosmos_sink, RunOptions(events=1500, partitions=2, max_batch=300, chunk=500)) as pipeline:
        pipeline.stream.send([b"not json"])
        summary = pipeline.run()
        assert cosmos_sink.count(SCORED) + cosmos_sink.count(REJECTED) == 1501
        assert len(set(cosmos_sink.ids(SCORED))) == cosmos_sink.count(SCORED) == 1500
        assert summary.published == 1500
        pipeline.replay()
        assert cosmos_sink.count(SCORED) == 1500
        assert cosmos_sink.count(REJECTED) == 1


def test_redelivery_after_crash_halfway(functions_worker: Worker, cosmos_sink: CosmosStore) -> None:
    """A host that died after writing half a batch redelivers all of it: still one document per transaction."""
    bodies = [json.dumps(r).encode() for r in TransactionGenerator(seed=13).generate(400)]
    bodies.insert(100, b"{broken")
    scored, rejected = _score(functions_worker, bodies, first=900)
    half = scored[:200]
    cosmos_sink.upsert(SCORED, half)  # the crash: no checkpoint, the rest never written
    scored, rejected = _score(functions_worker, bodies, first=900)  # the same events, from the last checkpoint
    cosmos_sink.upsert(SCORED, scored)
    cosmos_sink.upsert(REJECTED, rejected)
    assert cosmos_sink.count(SCORED) == 400
    assert cosmos_sink.count(REJECTED) == 1
    assert sorted(cosmos_sink.ids(SCORED)) == sorted(json.loads(b)["id"] for b in bodies if b != b"{broken")
