"""Envelopes through the worker engine: both event forms in one batch, nothing lost, every rejection says why.

The property test mirrors tests/functions/test_score_robustness.py one level down: malformed
records inside envelopes (and malformed envelopes) mixed with bare events, each batch invoked
through `azure-functions-runtime` with host-shaped messages. The enqueued-time override is
checked to change nothing in the documents, and the generators to pack with account affinity.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.host_messages import eventhub_input, http_input, timer_input
from devhost.worker import Worker, worker
from shared.contract import schema as c
from shared.contract.envelopes import envelope_body
from shared.contract.partitions import partition_for_key
from shared.generation.generator import TransactionGenerator
from shared.settings import get_settings
from tests import invoke

pytestmark = pytest.mark.unit

FIELDS = [c.ID_FIELD, c.TIMESTAMP_FIELD, c.ACCOUNT_FIELD, *c.FEATURE_FIELDS, c.LABEL_FIELD]
_BASE = TransactionGenerator(seed=1111).generate(3000)
_seen = {"records": 0}

Documents = list[dict[str, Any]]


def score(bodies: list[bytes]) -> tuple[Documents, Documents]:
    return invoke.score(worker(), bodies, partition="2")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


@st.composite
def record(draw: st.DrawFn) -> Any:
    """One record for an envelope: fine, or bad in one of many ways."""
    base = dict(_BASE[draw(st.integers(0, len(_BASE) - 1))])
    kind = draw(st.sampled_from(["good", "good", "drop", "retype", "extra", "category", "negative", "value"]))
    if kind == "drop":
        del base[draw(st.sampled_from(FIELDS))]
    elif kind == "retype":
        base[draw(st.sampled_from(FIELDS))] = draw(json_values)
    elif kind == "extra":
        base.update(draw(st.dictionaries(st.text(min_size=1, max_size=10), json_values, min_size=1, max_size=3)))
    elif kind == "category":
        base[draw(st.sampled_from([*c.ONE_HOT_FIELDS, c.LABEL_ENCODED_FIELD]))] = draw(st.text(max_size=8))
    elif kind == "negative":
        base[draw(st.sampled_from(c.CONTINUOUS_FIELDS))] = -draw(st.floats(min_value=0.0, max_value=1e9))
    elif kind == "value":
        return draw(json_values)
    return base


def enc(value: Any) -> bytes:
    # json, not orjson: integers beyond 64 bits must reach the scorer as producers could send them.
    return json.dumps(value).encode()


@st.composite
def event(draw: st.DrawFn) -> tuple[bytes, int]:
    """(body, documents it must yield): an envelope of records, a bad envelope, or a bare event."""
    kind = draw(st.sampled_from(["envelope", "envelope", "envelope", "bare", "not_list", "empty", "broken"]))
    if kind == "envelope":
        records = draw(st.lists(record(), min_size=5, max_size=60))
        return envelope_body([enc(r) for r in records]), len(records)
    if kind == "bare":
        body = enc(draw(record()))
        # A bare body that happens to be {"records": [...]} is an envelope: count what it holds.
        value = json.loads(body)
        if c.is_envelope(value) and isinstance(value["records"], list) and value["records"]:
            return body, len(value["records"])
        return body, 1
    if kind == "not_list":
        return enc({"records": draw(st.none() | st.integers() | st.text(max_size=5))}), 1
    if kind == "empty":
        return b'{"records": []}', 1
    return b'{"records": [' + draw(st.binary(max_size=30)), 1


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(event(), min_size=20, max_size=50))
def test_every_record_is_scored_or_rejected_with_a_reason(events: list[tuple[bytes, int]]) -> None:
    """No exception escapes; one document per record (or per faulty envelope); every rejection says why."""
    bodies = [body for body, _ in events]
    expected = sum(n for _, n in events)
    _seen["records"] += expected
    scored, rejected = score(bodies)
    assert len(scored) + len(rejected) == expected
    for doc in rejected:
        assert doc["field"] in {*FIELDS, "body"}
        assert doc["reason"]
        assert doc["detail"]
        assert (doc["raw_body"] is None) != (doc["raw_body_base64"] is None)
        assert doc["partition"] == "2"
        assert doc["enqueued_time"].endswith("Z")
    assert len({d["id"] for d in scored}) == len(scored)
    assert len({d["id"] for d in rejected}) == len(rejected)
    for doc in scored:
        assert 0.0 <= doc["fraud_probability"] <= 1.0
        c.validate({k: doc[k] for k in FIELDS if k in doc})


def test_property_run_covered_ten_thousand_records() -> None:
    """The property test above really fed at least 10,000 records (runs after it, in file order)."""
    assert _seen["records"] >= 10_000


def test_both_forms_in_one_batch(functions_worker: Worker) -> None:
    """Bare events and envelopes side by side: every transaction scored once, with its event's sequence number."""
    bodies = [orjson.dumps(_BASE[0]), envelope_body([orjson.dumps(r) for r in _BASE[1:101]]), orjson.dumps(_BASE[101])]
    result = functions_worker.invoke("ScoreTransactions", *eventhub_input(bodies, first_sequence_number=40))
    scored = result.documents("scored")
    assert result.documents("rejected") == []
    assert [d["id"] for d in scored] == [r["id"] for r in _BASE[:102]]
    assert [d["sequence_number"] for d in scored] == [40] + [41] * 100 + [42]


def test_limits_come_from_settings(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_RECORDS_PER_ENVELOPE and MAX_EVENT_BYTES reach the function, with their reason codes."""
    monkeypatch.setenv("MAX_RECORDS_PER_ENVELOPE", "10")
    monkeypatch.setenv("MAX_EVENT_BYTES", "8192")
    get_settings.cache_clear()
    bodies = [envelope_body([orjson.dumps(r) for r in _BASE[:11]]), envelope_body([orjson.dumps(_BASE[0])] * 1)]
    bodies.append(envelope_body([orjson.dumps({**_BASE[20], "pad": "x" * 9000})]))
    result = functions_worker.invoke("ScoreTransactions", *eventhub_input(bodies))
    assert [d["id"] for d in result.documents("scored")] == [_BASE[0]["id"]]
    assert [(d["reason"], d["detail"]) for d in result.documents("rejected")] == [
        ("too_many_records", "an envelope may hold at most 10 records"),
        ("too_large", "event body exceeds 8192 bytes"),
    ]


@pytest.mark.parametrize("records_per_event", [1, 50])
def test_parser_override_on_or_off_gives_the_same_documents(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch, records_per_event: int
) -> None:
    """ENQUEUED_TIME_PARSER=fast and =library store identical documents (scored_at aside)."""
    records = _BASE[:200]
    if records_per_event == 1:
        bodies = [orjson.dumps(r) for r in records] + [b"{", b'{"records": 1}']
    else:
        chunks = range(0, len(records), records_per_event)
        bodies = [envelope_body([orjson.dumps(r) for r in records[i : i + records_per_event]]) for i in chunks]
        bodies.append(envelope_body([b"{}", b"3"]))
    documents = {}
    start = datetime(2026, 11, 29, 23, 59, 59, 999000, tzinfo=UTC)
    enqueued = [start + timedelta(microseconds=137 * i) for i in range(len(bodies))]  # fractions of all lengths
    for parser in ("fast", "library"):
        monkeypatch.setenv("ENQUEUED_TIME_PARSER", parser)
        get_settings.cache_clear()
        result = functions_worker.invoke("ScoreTransactions", *eventhub_input(bodies, enqueued=enqueued))
        documents[parser] = [
            {k: v for k, v in d.items() if k not in ("scored_at", "rejected_at")}
            for d in result.documents("scored") + result.documents("rejected")
        ]
    assert documents["fast"] == documents["library"]
    assert len(documents["fast"]) == 202


def _sent_events() -> list[Any]:
    """The events the generator sent: through the SDK sender to the conftest's fake hub."""
    from shared.generation import sender as event_sender
    from tests.fakes.event_hubs import FakeEventHub

    hub = event_sender.get_sender()
    assert isinstance(hub, FakeEventHub)
    return [json.loads(body) for body in hub.sent()]


def test_http_generator_packs_envelopes_by_account_partition(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GENERATOR_RECORDS_PER_EVENT=50: envelopes of one account partition each; the reply counts both."""
    monkeypatch.setenv("GENERATOR_RECORDS_PER_EVENT", "50")
    monkeypatch.setenv("EVENT_HUB_PARTITION_COUNT", "4")
    monkeypatch.setenv("GENERATE_MAX_COUNT", "5000")
    get_settings.cache_clear()
    result = functions_worker.invoke("GenerateTransactions", *http_input(params={"count": "1000"}))
    reply = orjson.loads(result.returned["body"])
    events = _sent_events()
    assert reply["sent"] == reply["transactions"] == 1000
    assert reply["events"] == len(events)
    partitions = [str(i) for i in range(4)]
    total = 0
    for envelope in events:
        assert c.is_envelope(envelope)
        records = envelope["records"]
        assert 1 <= len(records) <= 50
        assert len({partition_for_key(r["account_id"], partitions) for r in records}) == 1
        total += len(records)
    assert total == 1000
    # Packing 1,000 transactions over 4 partitions needs at most one part-filled envelope per partition.
    assert len(events) <= math.ceil(1000 / 50) + 4


def test_timer_generator_sends_envelopes(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """The timer packs the same way; each account's transactions stay in order."""
    monkeypatch.setenv("GENERATOR_TIMER_COUNT", "300")
    monkeypatch.setenv("GENERATOR_RECORDS_PER_EVENT", "100")
    get_settings.cache_clear()
    functions_worker.invoke("GenerateTransactionsOnTimer", *timer_input())
    events = _sent_events()
    records = [r for e in events for r in e["records"]]
    assert len(records) == 300
    by_account: dict[str, list[str]] = defaultdict(list)
    for r in records:
        by_account[r["account_id"]].append(r["timestamp"])
    assert all(times == sorted(times) for times in by_account.values())


def test_one_record_per_event_keeps_bare_transactions(functions_worker: Worker) -> None:
    """The default sends what producers always sent: one transaction per event."""
    result = functions_worker.invoke("GenerateTransactions", *http_input(params={"count": "20"}))
    events = _sent_events()
    assert len(events) == 20
    assert orjson.loads(result.returned["body"])["events"] == 20
    assert not any(c.is_envelope(e) for e in events)
