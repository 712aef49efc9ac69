"""RecordLabels (POST /api/labels) and AggregateLabels through the worker engine, with the memory stores."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest

import functions.labels as labels_function
from devhost.worker import Worker
from shared import caches
from shared.behaviour import days, merchants
from shared.behaviour.merchant_store import MemoryMerchantStore, get_merchant_store
from shared.contract import timestamps
from shared.labels import contract, intake
from shared.labels.store import MemoryLabelStore, Outcome, Written, get_label_store
from tests.invoke import HttpReply, http, timer

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, 0, 0, 123000, tzinfo=UTC)
LABEL: dict[str, Any] = {
    "transaction_id": "tx-1",
    "fraud": True,
    "known_at": "2026-11-20T09:30:00Z",
    "merchant_id": "merch-1",
    "account_id": "acct-1",
    "source": "chargeback",
}
MY_SETTINGS = (
    "LABEL_STORE",
    "MERCHANT_STATE",
    "MERCHANT_RISK_DELAY_DAYS",
    "COSMOS_LABELS_CONTAINER",
    "COSMOS_MERCHANTS_CONTAINER",
)


@pytest.fixture(autouse=True)
def memory_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Labels and merchant states in memory (they follow BEHAVIOUR_STATE=memory), the clock fixed at NOW."""
    for name in MY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    set_clock(monkeypatch, NOW)
    caches.reset_all()
    yield
    caches.reset_all()


def set_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(labels_function, "utc_now", lambda: moment)


def post(worker: Worker, body: Any, content_type: str = "application/json") -> HttpReply:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return http(worker, "RecordLabels", "POST", "/api/labels", headers={"Content-Type": content_type}, body=raw)


def label_store() -> MemoryLabelStore:
    store = get_label_store()
    assert isinstance(store, MemoryLabelStore)
    return store


def merchant_store() -> MemoryMerchantStore:
    store = get_merchant_store()
    assert isinstance(store, MemoryMerchantStore)
    return store


def test_bindings_as_the_host_gets_them(functions_worker: Worker) -> None:
    """Function-key HTTP route `labels` with every method routed to us, the rejected container out, and the
    timer on %LABEL_AGGREGATION_SCHEDULE% with no schedule monitor and no run on startup."""
    bindings = {b["name"]: b for b in functions_worker.bindings("RecordLabels")}
    assert bindings["req"]["type"] == "httpTrigger"
    assert bindings["req"]["route"] == "labels"
    assert bindings["req"]["authLevel"] == "FUNCTION"
    assert not bindings["req"].get("methods")
    assert bindings["rejected"]["type"] == "cosmosDB"
    assert bindings["rejected"]["containerName"] == "%COSMOS_REJECTED_CONTAINER%"
    assert bindings["rejected"]["connection"] == "CosmosDBConnection"
    (trigger,) = functions_worker.bindings("AggregateLabels")
    assert trigger["type"] == "timerTrigger"
    assert trigger["schedule"] == "%LABEL_AGGREGATION_SCHEDULE%"
    assert trigger["useMonitor"] is False
    assert trigger["runOnStartup"] is False


def test_one_label_is_stored_with_its_known_day(functions_worker: Worker) -> None:
    """A bare label is stored whole; its known time is the later of known_at and the recording."""
    reply = post(functions_worker, LABEL)
    assert reply.status_code == 200
    assert reply.json() == {"stored": 1, "duplicates": 0, "rejected": []}
    assert reply.invocation.documents("rejected") == []
    stored = label_store().get("tx-1")
    assert stored == {
        "id": "tx-1",
        "transaction_id": "tx-1",
        "fraud": True,
        "known_at": "2026-11-20T09:30:00Z",
        "recorded_at": "2026-11-20T12:00:00.123Z",
        "known_day": int(days.day_number(np.asarray(timestamps.parse_ms("2026-11-20T12:00:00.123Z")))),
        "merchant_id": "merch-1",
        "account_id": "acct-1",
        "source": "chargeback",
    }


@pytest.mark.parametrize(
    ("known_at", "known_day_of"),
    [
        ("2020-01-01T00:00:00Z", "2026-11-20T12:00:00.123Z"),  # known long ago, sent now: usable from now on
        ("2026-11-22T23:59:59.999Z", "2026-11-22T23:59:59.999Z"),  # known later than sent: from then on
    ],
)
def test_known_day_is_the_later_of_known_at_and_recording(
    functions_worker: Worker, known_at: str, known_day_of: str
) -> None:
    """A late label never reaches back into days already scored; a label dated ahead waits for its day."""
    assert post(functions_worker, {**LABEL, "known_at": known_at}).status_code == 200
    stored = label_store().get("tx-1")
    assert stored is not None
    assert stored["known_day"] == int(days.day_number(np.asarray(timestamps.parse_ms(known_day_of))))
    assert stored["known_at"] == known_at


def test_optional_fields_may_be_absent_or_null(functions_worker: Worker) -> None:
    """transaction_id, fraud and known_at alone make a label; null optional fields are absent ones."""
    bare = {"transaction_id": "tx-2", "fraud": False, "known_at": "2026-11-20T00:00:00+00:00"}
    nulls = {**bare, "transaction_id": "tx-3", "merchant_id": None, "account_id": None, "source": None}
    reply = post(functions_worker, {"records": [bare, nulls]})
    assert reply.json() == {"stored": 2, "duplicates": 0, "rejected": []}
    for tid in ("tx-2", "tx-3"):
        stored = label_store().get(tid)
        assert stored is not None
        assert (stored["merchant_id"], stored["account_id"], stored["source"], stored["fraud"]) == (
            None,
            None,
            None,
            False,
        )


FUTURE = (NOW + timedelta(hours=8784, seconds=1)).isoformat().replace("+00:00", "Z")
BAD_LABELS: list[tuple[dict[str, Any], str, str]] = [
    # transaction_id
    ({k: v for k, v in LABEL.items() if k != "transaction_id"}, "transaction_id", "missing"),
    ({**LABEL, "transaction_id": None}, "transaction_id", "missing"),
    ({**LABEL, "transaction_id": 17}, "transaction_id", "wrong_type"),
    ({**LABEL, "transaction_id": True}, "transaction_id", "wrong_type"),
    ({**LABEL, "transaction_id": ["tx-1"]}, "transaction_id", "wrong_type"),
    ({**LABEL, "transaction_id": ""}, "transaction_id", "out_of_range"),
    ({**LABEL, "transaction_id": "x" * 129}, "transaction_id", "out_of_range"),
    ({**LABEL, "transaction_id": "tx/1"}, "transaction_id", "invalid_value"),
    ({**LABEL, "transaction_id": "tx#1"}, "transaction_id", "invalid_value"),
    ({**LABEL, "transaction_id": "tx\n1"}, "transaction_id", "invalid_value"),
    ({**LABEL, "transaction_id": " tx-1"}, "transaction_id", "invalid_value"),
    ({**LABEL, "transaction_id": ".."}, "transaction_id", "invalid_value"),
    # fraud: JSON booleans only
    ({k: v for k, v in LABEL.items() if k != "fraud"}, "fraud", "missing"),
    ({**LABEL, "fraud": None}, "fraud", "missing"),
    ({**LABEL, "fraud": 1}, "fraud", "wrong_type"),
    ({**LABEL, "fraud": 0}, "fraud", "wrong_type"),
    ({**LABEL, "fraud": 1.0}, "fraud", "wrong_type"),
    ({**LABEL, "fraud": "true"}, "fraud", "wrong_type"),
    ({**LABEL, "fraud": {}}, "fraud", "wrong_type"),
    # known_at: the contract's timestamp form, not too far ahead
    ({k: v for k, v in LABEL.items() if k != "known_at"}, "known_at", "missing"),
    ({**LABEL, "known_at": None}, "known_at", "missing"),
    ({**LABEL, "known_at": 1_763_630_000_000}, "known_at", "wrong_type"),
    ({**LABEL, "known_at": ["2026-11-20T09:30:00Z"]}, "known_at", "wrong_type"),
    ({**LABEL, "known_at": "2026-11-20"}, "known_at", "invalid_value"),
    ({**LABEL, "known_at": "2026-11-20T09:30:00"}, "known_at", "invalid_value"),
    ({**LABEL, "known_at": "2026-11-20T09:30:00+01:00"}, "known_at", "invalid_value"),
    ({**LABEL, "known_at": "2026-02-30T09:30:00Z"}, "known_at", "invalid_value"),
    ({**LABEL, "known_at": "2026-11-20 09:30:00Z"}, "known_at", "invalid_value"),
    ({**LABEL, "known_at": FUTURE}, "known_at", "too_early"),
    # merchant_id and account_id: optional ids
    ({**LABEL, "merchant_id": 5}, "merchant_id", "wrong_type"),
    ({**LABEL, "merchant_id": False}, "merchant_id", "wrong_type"),
    ({**LABEL, "merchant_id": ""}, "merchant_id", "out_of_range"),
    ({**LABEL, "merchant_id": "m?1"}, "merchant_id", "invalid_value"),
    ({**LABEL, "merchant_id": "."}, "merchant_id", "invalid_value"),
    ({**LABEL, "account_id": {"id": 1}}, "account_id", "wrong_type"),
    ({**LABEL, "account_id": "a" * 129}, "account_id", "out_of_range"),
    ({**LABEL, "account_id": "acct\\1"}, "account_id", "invalid_value"),
    ({**LABEL, "account_id": "acct-1 "}, "account_id", "invalid_value"),
    # source: one of four
    ({**LABEL, "source": 1}, "source", "wrong_type"),
    ({**LABEL, "source": True}, "source", "wrong_type"),
    ({**LABEL, "source": "bank"}, "source", "unknown_category"),
    ({**LABEL, "source": "Chargeback"}, "source", "unknown_category"),
    ({**LABEL, "source": ""}, "source", "unknown_category"),
    # unknown keys, and records that are not labels
    ({**LABEL, "is_fraud": True}, "is_fraud", "unknown_field"),
    ({**LABEL, "timestamp": "2026-11-20T09:30:00Z"}, "timestamp", "unknown_field"),
    ({**LABEL, "knownAt": "2026-11-20T09:30:00Z"}, "knownAt", "unknown_field"),
    ({**LABEL, "records": []}, "body", "invalid_envelope"),
]
NOT_OBJECTS: list[Any] = ["tx-1", 5, True, None, [LABEL]]


@pytest.mark.parametrize(("record", "field", "reason"), BAD_LABELS)
def test_a_bad_label_is_rejected_with_its_field_and_reason(
    functions_worker: Worker, record: dict[str, Any], field: str, reason: str
) -> None:
    """In an envelope beside a good label: the bad one is named, kept in the rejected output, the good one stored."""
    good = {**LABEL, "transaction_id": "tx-good"}
    reply = post(functions_worker, {"records": [good, record]})
    assert reply.status_code == 200
    answer = reply.json()
    assert (answer["stored"], answer["duplicates"]) == (1, 0)
    ((rejection,),) = [answer["rejected"]]
    assert (rejection["index"], rejection["field"], rejection["reason"]) == (1, field, reason)
    assert rejection["detail"]
    (doc,) = reply.invocation.documents("rejected")
    assert (doc["kind"], doc["field"], doc["reason"], doc["record_index"]) == ("label", field, reason, 1)
    assert orjson.loads(doc["raw_body"]) == record
    assert doc["id"].startswith("rejected-")
    assert label_store().get("tx-good") is not None


@pytest.mark.parametrize(("record", "field", "reason"), BAD_LABELS[::6])
def test_a_bad_bare_label_keeps_the_whole_body(
    functions_worker: Worker, record: dict[str, Any], field: str, reason: str
) -> None:
    """Sent alone, the rejected document holds the request's body exactly as it came."""
    raw = orjson.dumps(record)
    reply = post(functions_worker, raw)
    assert reply.status_code == 200
    assert reply.json()["rejected"] == [
        {"index": 0, "field": field, "reason": reason, "detail": reply.json()["rejected"][0]["detail"]}
    ]
    (doc,) = reply.invocation.documents("rejected")
    assert doc["raw_body"] == raw.decode()
    assert doc["record_index"] is None


def test_a_long_unknown_key_is_named_shortened(functions_worker: Worker) -> None:
    """The rejection names an unknown key in at most 64 characters and an ellipsis; the raw record keeps it all."""
    key = "k" * 5000
    reply = post(functions_worker, {"records": [{**LABEL, key: 1}]})
    (rejection,) = reply.json()["rejected"]
    assert rejection["field"] == "k" * 64 + "…"
    assert rejection["reason"] == "unknown_field"
    (doc,) = reply.invocation.documents("rejected")
    assert key in orjson.loads(doc["raw_body"])


@pytest.mark.parametrize("record", NOT_OBJECTS)
def test_a_record_that_is_not_an_object_is_rejected(functions_worker: Worker, record: Any) -> None:
    """An envelope record that is no JSON object is `body: not_an_object`, kept as JSON."""
    reply = post(functions_worker, {"records": [LABEL, record]})
    assert reply.json()["rejected"][0]["reason"] == "not_an_object"
    (doc,) = reply.invocation.documents("rejected")
    assert orjson.loads(doc["raw_body"]) == record


BAD_REQUESTS: list[tuple[bytes, str, int, str]] = [
    (b"{not json", "application/json", 400, "invalid_json"),
    (b"\xff\xfe{}", "application/json", 400, "invalid_json"),
    (b"", "application/json", 400, "invalid_json"),
    (b"[" * 2000 + b"]" * 2000, "application/json", 400, "invalid_json"),
    (orjson.dumps([LABEL]), "application/json", 400, "not_an_object"),
    (b'"tx-1"', "application/json", 400, "not_an_object"),
    (b"null", "application/json", 400, "not_an_object"),
    (orjson.dumps({"records": LABEL}), "application/json", 400, "records_not_a_list"),
    (orjson.dumps({"records": None}), "application/json", 400, "records_not_a_list"),
    (orjson.dumps({"records": []}), "application/json", 400, "empty_envelope"),
    (orjson.dumps({"records": [LABEL], "source": "analyst"}), "application/json", 400, "invalid_envelope"),
    (orjson.dumps(LABEL), "text/plain", 415, "unsupported_media_type"),
    (orjson.dumps(LABEL), "", 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "code"), BAD_REQUESTS)
def test_a_bad_request_is_refused_whole(
    functions_worker: Worker, body: bytes, content_type: str, status: int, code: str
) -> None:
    """Request-level faults: a stable code, nothing stored, nothing in the rejected output (the caller holds it)."""
    reply = post(functions_worker, body, content_type)
    assert reply.status_code == status
    text = reply.body.decode()
    assert orjson.loads(text)["error"]["code"] == code
    assert "Traceback" not in text
    assert reply.invocation.documents("rejected") == []
    assert label_store().known_on(0) == []


def test_too_many_records_and_too_large_bodies(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_RECORDS_PER_ENVELOPE and MAX_EVENT_BYTES bound a request as they bound an event: 413, nothing stored."""
    monkeypatch.setenv("MAX_RECORDS_PER_ENVELOPE", "3")
    monkeypatch.setenv("MAX_EVENT_BYTES", "2048")
    caches.reset("settings")
    records = [{**LABEL, "transaction_id": f"tx-{i}"} for i in range(4)]
    too_many = post(functions_worker, {"records": records})
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (413, "too_many_records")
    assert post(functions_worker, {"records": records[:3]}).json()["stored"] == 3
    large = orjson.dumps({**LABEL, "transaction_id": "tx-9", "source": "x" * 2048})
    too_large = post(functions_worker, large)
    assert (too_large.status_code, too_large.json()["error"]["code"]) == (413, "payload_too_large")
    assert too_large.invocation.documents("rejected") == []
    assert label_store().get("tx-9") is None


def test_wrong_method(functions_worker: Worker) -> None:
    """GET is 405 with a code and an Allow header."""
    reply = http(functions_worker, "RecordLabels", "GET", "/api/labels")
    assert reply.status_code == 405
    assert reply.header("Allow") == "POST"
    assert reply.json()["error"]["code"] == "method_not_allowed"


def test_a_label_sent_again_is_a_duplicate(functions_worker: Worker) -> None:
    """The same outcome again (a client's retry), alone or repeated in one request, is counted, never stored twice."""
    assert post(functions_worker, LABEL).json() == {"stored": 1, "duplicates": 0, "rejected": []}
    again = post(functions_worker, {**LABEL, "known_at": "2026-11-20T10:00:00Z", "source": "analyst"})
    assert again.json() == {"stored": 0, "duplicates": 1, "rejected": []}
    twice = {**LABEL, "transaction_id": "tx-2"}
    assert post(functions_worker, {"records": [twice, twice, LABEL]}).json() == {
        "stored": 1,
        "duplicates": 2,
        "rejected": [],
    }
    stored = label_store().get("tx-1")
    assert stored is not None
    assert (stored["known_at"], stored["source"]) == ("2026-11-20T09:30:00Z", "chargeback")


def test_a_label_is_final(functions_worker: Worker) -> None:
    """Another outcome for a labelled transaction is `fraud: label_conflict`, kept in rejected; the first stays."""
    post(functions_worker, LABEL)
    other = {**LABEL, "fraud": False}
    reply = post(functions_worker, other)
    assert reply.status_code == 200
    assert reply.json()["rejected"] == [
        {
            "index": 0,
            "field": "fraud",
            "reason": "label_conflict",
            "detail": "this transaction's stored label says fraud=true; a label is final",
        }
    ]
    (doc,) = reply.invocation.documents("rejected")
    assert (doc["kind"], doc["reason"], orjson.loads(doc["raw_body"])) == ("label", "label_conflict", other)
    stored = label_store().get("tx-1")
    assert stored is not None
    assert stored["fraud"] is True


def test_conflicts_within_one_request_follow_the_first_label(functions_worker: Worker) -> None:
    """The first valid label of a transaction decides; later ones in the request are duplicates or conflicts
    of what the store then holds, whatever order the writes took."""
    first = {**LABEL, "transaction_id": "tx-new", "fraud": False}
    invalid_first = {**first, "fraud": "no"}
    reply = post(functions_worker, {"records": [invalid_first, first, {**first, "fraud": True}, first]})
    answer = reply.json()
    assert (answer["stored"], answer["duplicates"]) == (1, 1)
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [(0, "wrong_type"), (2, "label_conflict")]
    post(functions_worker, LABEL)  # tx-1 says fraud
    reply = post(functions_worker, {"records": [{**LABEL, "fraud": False}, {**LABEL, "fraud": False}, LABEL]})
    answer = reply.json()
    assert (answer["stored"], answer["duplicates"]) == (0, 1)
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [(0, "label_conflict"), (1, "label_conflict")]
    assert len(reply.invocation.documents("rejected")) == 2


def test_label_store_off_answers_503(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """LABEL_STORE=off: a clear code, nothing written anywhere."""
    monkeypatch.setenv("LABEL_STORE", "off")
    caches.reset("settings")
    reply = post(functions_worker, LABEL)
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "label_store_off"
    assert reply.invocation.documents("rejected") == []


def test_store_outage_names_what_was_not_confirmed(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the store confirms only some labels: 503 with Retry-After, the counts of what it did confirm and
    the indexes to send again; rejected labels still land in the rejected output."""
    real = MemoryLabelStore.create

    def confirms_two(self: MemoryLabelStore, documents: Sequence[dict[str, Any]]) -> list[Written]:
        return real(self, documents[:2]) + [Written(Outcome.UNCONFIRMED) for _ in documents[2:]]

    monkeypatch.setattr(MemoryLabelStore, "create", confirms_two)
    records = [{**LABEL, "transaction_id": f"tx-{i}"} for i in range(5)]
    records.insert(3, {**LABEL, "fraud": 1})
    reply = post(functions_worker, {"records": records})
    assert reply.status_code == 503
    assert reply.header("Retry-After") == "30"
    answer = reply.json()
    assert answer["error"]["code"] == "label_store_unavailable"
    assert (answer["stored"], answer["duplicates"], answer["unconfirmed"]) == (2, 0, [2, 4, 5])
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [(3, "wrong_type")]
    assert len(reply.invocation.documents("rejected")) == 1
    monkeypatch.setattr(MemoryLabelStore, "create", real)
    retry = post(functions_worker, {"records": [records[i] for i in answer["unconfirmed"]] + records[:2]})
    assert retry.json() == {"stored": 3, "duplicates": 2, "rejected": []}


def test_an_unconfigured_cosmos_store_confirms_nothing(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LABEL_STORE=cosmos without a connection setting: every label unconfirmed (503), none claimed stored."""
    monkeypatch.setenv("LABEL_STORE", "cosmos")
    caches.reset("settings", "label store")
    reply = post(functions_worker, {"records": [LABEL, {**LABEL, "transaction_id": "tx-2"}]})
    assert reply.status_code == 503
    assert reply.json()["unconfirmed"] == [0, 1]
    assert reply.json()["stored"] == 0


def test_internal_errors_are_a_500_with_a_code(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug of ours is `internal_error`, nothing of the exception in the answer."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(intake, "record", broken)
    reply = post(functions_worker, LABEL)
    assert reply.status_code == 500
    assert reply.json()["error"]["code"] == "internal_error"
    assert "secret detail" not in reply.body.decode()


def _known_ms(transaction_id: str) -> int:
    """A stored label's known time by definition: the later of known_at and recorded_at."""
    stored = label_store().get(transaction_id)
    assert stored is not None
    return max(timestamps.parse_ms(stored["known_at"]), timestamps.parse_ms(stored["recorded_at"]))


def _day(moment: datetime) -> int:
    return int(days.day_number(np.asarray(int(moment.timestamp() * 1000))))


def test_posted_labels_become_merchant_states_once_their_day_is_over(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels recorded over three days, the timer run during and after them: each complete day is applied
    once, and the states give the features the training replay gives from the same labels."""
    rng = np.random.default_rng(7)
    sent: list[dict[str, Any]] = []
    for day in range(3):
        set_clock(monkeypatch, NOW + timedelta(days=day))
        batch = [
            {
                "transaction_id": f"tx-{day}-{i}",
                "fraud": bool(rng.random() < 0.3),
                "known_at": "2026-11-01T00:00:00Z",
                "merchant_id": f"m-{rng.integers(0, 6)}",
            }
            for i in range(40)
        ]
        batch.append({"transaction_id": f"tx-{day}-none", "fraud": True, "known_at": "2026-11-01T00:00:00Z"})
        assert post(functions_worker, {"records": batch}).json()["stored"] == 41
        sent += batch[:-1]
        timer(functions_worker, "AggregateLabels")
        through = merchant_store().read_progress().through
        assert through == _day(NOW + timedelta(days=day)) - 1  # today's labels wait for the day to end
    set_clock(monkeypatch, NOW + timedelta(days=3))
    timer(functions_worker, "AggregateLabels")
    timer(functions_worker, "AggregateLabels")  # again: nothing changes
    assert merchant_store().read_progress().through == _day(NOW + timedelta(days=2))

    ids = [f"m-{i}" for i in range(6)]
    states = merchant_store().read(ids)
    known_ms = [_known_ms(r["transaction_id"]) for r in sent]
    codes, order = merchants.merchant_codes([r["merchant_id"] for r in sent])
    totals = merchants.label_totals(codes, np.asarray(known_ms), np.asarray([r["fraud"] for r in sent]))
    for code, merchant in enumerate(order):
        mask = totals.code() == code
        state = states[merchant]
        assert state["day"] == totals.day()[mask].tolist()
        assert state["n"] == totals.a[mask].tolist()
        assert state["fraud"] == totals.b[mask].tolist()
    payments = [m for m in ids for _ in range(3)]
    t_ms = np.asarray([timestamps.parse_ms("2026-11-30T10:00:00Z")] * len(payments))
    served = merchants.features_from_states(payments, t_ms, states, 7)
    replayed = merchants.replay(
        payments,
        t_ms,
        [r["merchant_id"] for r in sent],
        np.asarray(known_ms),
        np.asarray([r["fraud"] for r in sent]),
        7,
    )
    assert np.array_equal(served, replayed)
    assert served[:, 0].sum() > 0  # the windows do reach the labels


def test_aggregation_is_idle_when_a_store_is_off(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """MERCHANT_STATE=off: the timer runs, reads nothing and writes nothing."""
    post(functions_worker, LABEL)
    monkeypatch.setenv("MERCHANT_STATE", "off")
    caches.reset("settings")
    set_clock(monkeypatch, NOW + timedelta(days=2))
    timer(functions_worker, "AggregateLabels")
    monkeypatch.delenv("MERCHANT_STATE")
    caches.reset("settings")
    assert merchant_store().read_progress().through is None


def test_a_failed_aggregation_fails_the_invocation(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreadable label store fails the run (visible in monitoring) and leaves the progress where it was."""
    from devhost.worker import WorkerError

    monkeypatch.setenv("LABEL_STORE", "cosmos")
    caches.reset("settings", "label store")
    set_clock(monkeypatch, NOW + timedelta(days=2))
    with pytest.raises(WorkerError):
        timer(functions_worker, "AggregateLabels")
    assert merchant_store().read_progress().through is None
    assert contract.KIND == "label"
