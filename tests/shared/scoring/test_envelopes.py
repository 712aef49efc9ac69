"""score_batch on envelopes: each record scored or rejected on its own; envelope faults one document each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.contract import schema as c
from shared.contract.envelopes import envelope_body
from shared.generation.generator import TransactionGenerator
from shared.scoring.batch import reject_all, score_batch
from shared.scoring.events import EventBatch, Limits
from shared.scoring.model import FraudModel, load_model

pytestmark = pytest.mark.unit

MODEL_DIR = Path(__file__).resolve().parents[3] / "model"
NOW = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
_BASE = TransactionGenerator(seed=777).generate(600, now=NOW)
PER_EVENT_FIELDS = ("sequence_number", "enqueued_time")


@pytest.fixture(scope="module")
def model() -> FraudModel:
    return load_model(MODEL_DIR)


def batch_of(bodies: list[bytes], partition: str = "5") -> EventBatch:
    start = datetime(2026, 11, 21, 9, 59, tzinfo=UTC)
    times = [start + timedelta(milliseconds=i) for i in range(len(bodies))]
    return EventBatch(bodies, times, list(range(1000, 1000 + len(bodies))), partition)


def envelope(records: list[Any]) -> bytes:
    return envelope_body([orjson.dumps(r) for r in records])


def without(doc: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in fields}


def test_envelopes_score_exactly_as_bare_events(model: FraudModel) -> None:
    """The same transactions, bare or 50 to an envelope, give the same documents but for the event fields."""
    bare = score_batch(batch_of([orjson.dumps(r) for r in _BASE]), model, now=NOW)
    packed_bodies = [envelope(_BASE[i : i + 50]) for i in range(0, len(_BASE), 50)]
    packed = score_batch(batch_of(packed_bodies), model, now=NOW)
    assert packed.rejected == []
    assert packed.flagged == bare.flagged
    assert [without(d, PER_EVENT_FIELDS) for d in packed.scored] == [without(d, PER_EVENT_FIELDS) for d in bare.scored]
    # Each record carries its envelope's sequence number and enqueued time.
    assert [d["sequence_number"] for d in packed.scored] == [1000 + i // 50 for i in range(len(_BASE))]
    assert packed.scored[50]["enqueued_time"] == "2026-11-21T09:59:00.001Z"
    assert {d["partition"] for d in packed.scored} == {"5"}


def test_both_forms_and_every_fault_in_one_batch(model: FraudModel) -> None:
    """Bare events, envelopes, bad records inside envelopes and bad envelopes: one document per record or fault."""
    bad_record = {**_BASE[11], "amount": -5.0}
    limits = Limits(envelope=c.EnvelopeLimits(max_event_bytes=200_000, max_records=100))
    bodies = [
        orjson.dumps(_BASE[0]),  # 0: bare transaction
        envelope([_BASE[1], bad_record, 7, _BASE[2]]),  # 1: two good, two bad records
        b'{"records": {"id": "x"}}',  # 2: records not a list
        b'{"records": []}',  # 3: empty envelope
        envelope(_BASE[20:121]),  # 4: 101 records, over the limit
        b'{"records": [',  # 5: not JSON
        b'{"records": [' + b" " * 200_000 + b"]}",  # 6: over MAX_EVENT_BYTES
        orjson.dumps({**_BASE[3], "note": "x" * 70_000}),  # 7: a bare transaction over 64 KiB
        envelope([{**_BASE[4], "note": "x" * 70_000}]),  # 8: the same record in an envelope is fine
        envelope([_BASE[0]]),  # 9: a duplicate of event 0's id
    ]
    result = score_batch(batch_of(bodies), model, now=NOW, limits=limits)
    assert sorted(d["id"] for d in result.scored) == sorted(r["id"] for r in (_BASE[0], _BASE[1], _BASE[2], _BASE[4]))
    reasons = [(d["sequence_number"], d["record_index"], d["field"], d["reason"]) for d in result.rejected]
    assert reasons == [
        (1001, 1, "amount", "out_of_range"),
        (1001, 2, "body", "not_an_object"),
        (1002, None, "body", "records_not_a_list"),
        (1003, None, "body", "empty_envelope"),
        (1004, None, "body", "too_many_records"),
        (1005, None, "body", "invalid_json"),
        (1006, None, "body", "too_large"),
        (1007, None, "body", "too_large"),
        (1009, 0, "id", "duplicate_id"),
    ]
    details = {d["sequence_number"]: d["detail"] for d in result.rejected if d["record_index"] is None}
    assert details[1004] == "an envelope may hold at most 100 records"
    assert details[1006] == "event body exceeds 200000 bytes"
    assert details[1007] == f"event body exceeds {c.MAX_TRANSACTION_BYTES} bytes"
    # A rejected record keeps its own JSON, not the whole envelope's.
    assert orjson.loads(result.rejected[0]["raw_body"]) == bad_record
    assert result.rejected[1]["raw_body"] == "7"
    for doc in result.rejected:
        assert doc["partition"] == "5"
        assert doc["enqueued_time"].startswith("2026-11-21T09:59:00.")
    assert len({d["id"] for d in result.rejected}) == len(result.rejected)


def test_rejected_record_ids_are_deterministic(model: FraudModel) -> None:
    """A replayed envelope rejects each record under the same id: (partition, sequence number, index)."""
    body = envelope([{"id": "a"}, {"id": "b"}])
    first = score_batch(batch_of([body]), model, now=NOW).rejected
    again = score_batch(batch_of([body]), model, now=NOW + timedelta(hours=1)).rejected
    other_partition = score_batch(batch_of([body], partition="6"), model, now=NOW).rejected
    assert [d["id"] for d in first] == [d["id"] for d in again]
    assert len({d["id"] for d in first}) == 2
    assert {d["id"] for d in first}.isdisjoint(d["id"] for d in other_partition)
    local = EventBatch.of_bodies([body])
    ids = [d["id"] for d in score_batch(local, model).rejected]
    assert ids == [d["id"] for d in score_batch(local, model).rejected]


def test_an_object_holding_records_is_an_envelope_and_nothing_else(model: FraudModel) -> None:
    """`records` plus any other key is one `invalid_envelope` rejection, its whole body kept for re-driving.

    Before, it was judged as one transaction (rejected for a missing field at best), so a producer's
    mistaken envelope lost every record but the first 16 KiB of its body.
    """
    records = _BASE[5:305]
    body = orjson.dumps({"records": records, "source": "batch-7"})
    assert len(body) > 16 * 1024
    result = score_batch(batch_of([body]), model, now=NOW)
    assert result.scored == []
    (doc,) = result.rejected
    assert (doc["field"], doc["reason"], doc["record_index"]) == ("body", "invalid_envelope", None)
    assert doc["raw_body"].encode() == body
    assert not doc["raw_body_truncated"]
    # A transaction that carries `records` as context is therefore refused whole too: the name is reserved.
    lone = score_batch(batch_of([orjson.dumps({**_BASE[5], "records": [1, 2]})]), model, now=NOW)
    assert [d["reason"] for d in lone.rejected] == ["invalid_envelope"]


def test_reject_all_keeps_every_record(model: FraudModel) -> None:
    """With the model unusable, each record of an envelope gets its own rejection (its raw JSON kept)."""
    unavailable = c.Rejection("model", "model_unavailable", "the model artifact failed its check")
    bodies = [orjson.dumps(_BASE[0]), envelope(_BASE[1:4]), b"{"]
    docs = reject_all(batch_of(bodies), unavailable, now=NOW).rejected
    assert [(d["sequence_number"], d["record_index"], d["reason"]) for d in docs] == [
        (1000, None, "model_unavailable"),
        (1001, 0, "model_unavailable"),
        (1001, 1, "model_unavailable"),
        (1001, 2, "model_unavailable"),
        (1002, None, "invalid_json"),
    ]
    assert orjson.loads(docs[2]["raw_body"]) == _BASE[2]


def test_a_record_too_deep_for_orjson_keeps_json_for_re_driving(model: FraudModel) -> None:
    """A rejected record nested past orjson's 254 writable levels is still kept as JSON, not as a Python repr."""
    deep: object = {}
    for _ in range(300):
        deep = [deep]
    record = {**_BASE[6], "amount": -1.0, "context": deep}  # rejected (amount), and too deep for orjson
    body = b'{"records": [' + orjson.dumps(_BASE[7]) + b"," + _deep_record_bytes(record) + b"]}"
    result = score_batch(batch_of([body]), model, now=NOW)
    (doc,) = result.rejected
    assert doc["record_index"] == 1
    assert orjson.loads(doc["raw_body"]) == record


def test_a_record_holding_records_is_refused_as_it_would_be_bare(model: FraudModel) -> None:
    """Inside an envelope as alone: an object holding `records` is `invalid_envelope`, never scored."""
    inner = {**_BASE[8], "records": []}
    result = score_batch(batch_of([envelope([_BASE[9], inner])]), model, now=NOW)
    assert [d["id"] for d in result.scored] == [_BASE[9]["id"]]
    assert [(d["record_index"], d["reason"]) for d in result.rejected] == [(1, "invalid_envelope")]


def _deep_record_bytes(record: dict[str, object]) -> bytes:
    from shared.scoring.documents import _deep_json

    return _deep_json(record)
