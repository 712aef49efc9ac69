"""ScoreRequest (POST /api/score) through the worker engine, in the Azure ML request format the seeds use."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from devhost.worker import Worker
from shared.behaviour import features as behaviour
from shared.generation.generator import TransactionGenerator
from shared.scoring import bundled
from shared.scoring.documents import utc_iso
from shared.scoring.model import LazyModel, ModelIntegrityError
from shared.scoring.request import MAX_BODY_BYTES, MAX_RECORDS, describe_without_figures
from shared.settings import get_settings
from tests.invoke import HttpReply, http, score

pytestmark = pytest.mark.unit

# The seed's own example record: an integer id and a `date` the model never used.
SEED_RECORD = {
    "id": 4,
    "date": "yo",
    "amount": 95.55648880442871,
    "old_balance": 142590.44432050743,
    "income": 2979.7136940079527,
    "credit": 0,
    "marital_status": 1,
    "children": 2,
    "month": 10,
    "day_of_week": "monday",
    "category_recipient": "food_store",
    "transaction_type": "onsite",
    "transaction_method": "other",
    "foreign_transaction": 1,
}


def _post(worker: Worker, body: Any, content_type: str = "application/json") -> HttpReply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http(worker, "ScoreRequest", "POST", "/api/score", headers={"Content-Type": content_type}, body=raw)


def test_seed_request_is_scored(functions_worker: Worker) -> None:
    """The seed's request format gets one result per record, in order, with the client's own ids."""
    response = _post(functions_worker, {"data": [SEED_RECORD, {**SEED_RECORD, "id": 5}]})
    assert response.status_code == 200
    answer = json.loads(response.body)
    assert [r["index"] for r in answer["results"]] == [0, 1]
    assert [r["id"] for r in answer["results"]] == [4, 5]
    for result in answer["results"]:
        assert 0.0 <= result["fraud_probability"] <= 1.0
        assert result["is_fraud"] == (result["fraud_probability"] >= answer["threshold"])
        assert isinstance(result["reasons"], list)
    assert answer["model_version"].startswith("xgb-")


def test_same_scores_as_the_event_path(functions_worker: Worker) -> None:
    """A record scores exactly as the same transaction does through ScoreTransactions; reasons are worded
    without the history's figures."""
    records = TransactionGenerator(seed=8).generate(300)
    answer = json.loads(_post(functions_worker, {"data": records}).body)
    scored, _ = score(functions_worker, [json.dumps(r).encode() for r in records])
    by_id = {d["id"]: d for d in scored}
    for record, result in zip(records, answer["results"], strict=True):
        doc = by_id[record["id"]]
        assert result["fraud_probability"] == doc["fraud_probability"]
        assert result["is_fraud"] == doc["is_flagged"]
        worded = [{**r, "text": describe_without_figures(r["field"], doc["behaviour"], doc)} for r in doc["reasons"]]
        assert result["reasons"] == worded


def test_bad_records_get_per_record_errors(functions_worker: Worker) -> None:
    """Bad records are answered with a field and reason; the good ones around them are still scored."""
    data = [SEED_RECORD, {**SEED_RECORD, "amount": "lots"}, "not an object", {**SEED_RECORD, "month": 13}]
    response = _post(functions_worker, {"data": data})
    assert response.status_code == 200
    results = json.loads(response.body)["results"]
    assert "fraud_probability" in results[0]
    assert results[1]["error"]["field"] == "amount"
    assert results[1]["error"]["reason"] == "wrong_type"
    assert results[2]["error"]["reason"] == "not_an_object"
    assert results[3]["error"] == {
        "field": "month",
        "reason": "unknown_category",
        "detail": results[3]["error"]["detail"],
    }


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ({"data": [SEED_RECORD]}, "text/plain", 415, "unsupported_media_type"),
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        ({"records": [SEED_RECORD]}, "application/json", 400, "invalid_request"),
        ({"data": SEED_RECORD}, "application/json", 400, "invalid_request"),
        ({"data": []}, "application/json", 400, "invalid_request"),
        ([SEED_RECORD], "application/json", 400, "invalid_request"),
        ({"data": [SEED_RECORD] * (MAX_RECORDS + 1)}, "application/json", 413, "too_many_records"),
        (b'{"data": ["' + b"x" * MAX_BODY_BYTES + b'"]}', "application/json", 413, "payload_too_large"),
    ],
)
def test_bad_requests_get_stable_codes(
    functions_worker: Worker, body: Any, content_type: str, status: int, code: str
) -> None:
    """Request-level faults are 4xx with a stable code and no traceback."""
    response = _post(functions_worker, body, content_type)
    assert response.status_code == status
    text = response.body.decode()
    assert json.loads(text)["error"]["code"] == code
    assert "Traceback" not in text


def test_charset_in_content_type_is_fine(functions_worker: Worker) -> None:
    """`application/json; charset=utf-8` is JSON too."""
    response = _post(functions_worker, {"data": [SEED_RECORD]}, "application/json; charset=utf-8")
    assert response.status_code == 200


def test_wrong_method(functions_worker: Worker) -> None:
    """GET is 405 with a code and an Allow header."""
    response = http(functions_worker, "ScoreRequest", "GET", "/api/score")
    assert response.status_code == 405
    assert response.header("Allow") == "POST"
    assert json.loads(response.body)["error"]["code"] == "method_not_allowed"


def test_broken_model_is_503(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that failed its integrity check answers 503 with a code, not a 500 with a traceback."""

    def refuse() -> Any:
        raise ModelIntegrityError("tampered")

    monkeypatch.setattr(bundled, "bundled_model", LazyModel(refuse))
    response = _post(functions_worker, {"data": [SEED_RECORD]})
    assert response.status_code == 503
    assert json.loads(response.body)["error"]["code"] == "model_unavailable"


# --- reasons name what was unusual, not the account's stored figures -----------------------------

_PAYMENT = {k: v for k, v in SEED_RECORD.items() if k not in ("id", "date")}
_WINDOWS = ("30 days", "24 hours")  # the features' fixed windows, not figures of the account


def _quotes_a_figure(text: str) -> bool:
    for window in _WINDOWS:
        text = text.replace(window, "")
    return any(ch.isdigit() for ch in text)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _seed_history(worker: Worker, now: datetime) -> list[dict[str, Any]]:
    """Bursts of two accounts through ScoreTransactions (8 and 3 payments in the last hour); the records."""
    bursts = [
        {
            **_PAYMENT,
            "id": f"{account}-{i}",
            "account_id": account,
            "timestamp": utc_iso(now - timedelta(minutes=50 - 5 * i)),
            "amount": 613.27 + 10 * i,
            "old_balance": 9876.54 - 700 * i,
        }
        for account, n in (("acct-burst-a", 8), ("acct-burst-b", 3))
        for i in range(n)
    ]
    scored, rejected = score(worker, [json.dumps(r).encode() for r in bursts])
    assert (len(scored), rejected) == (len(bursts), [])
    return bursts


def _probe(worker: Worker, now: datetime) -> list[dict[str, Any]]:
    """One query naming both accounts: probes are flagged and explained by their accounts' bursts."""
    stamp = utc_iso(now - timedelta(minutes=5))
    probes = [
        {**_PAYMENT, "id": "probe-a", "account_id": "acct-burst-a", "timestamp": stamp, "amount": 900.0,
         "old_balance": 3000.0, "category_recipient": "electronics"},
        {**_PAYMENT, "id": "probe-b", "account_id": "acct-burst-b", "timestamp": stamp, "amount": 2000.0,
         "old_balance": 7000.0},
    ]  # fmt: skip
    response = _post(worker, {"data": probes})
    assert response.status_code == 200
    results: list[dict[str, Any]] = response.json()["results"]
    assert all(r["is_fraud"] for r in results), "the probes must be flagged for reasons to be given"
    return results


def _history_reasons(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [reason for r in results for reason in r["reasons"] if reason["field"] in behaviour.FEATURES]


def _stored_figures(bursts: list[dict[str, Any]]) -> set[str]:
    """The burst's amounts and balances as a reason could print them."""
    values = [r[f] for r in bursts for f in ("amount", "old_balance")]
    return {text for v in values for text in (f"{v:,.2f}", f"{v:.2f}", f"{v:g}")}


def test_reasons_leave_out_the_accounts_stored_figures(functions_worker: Worker) -> None:
    """By default a probe naming an account learns what was unusual, not that account's amounts or counts."""
    now = datetime.now(UTC)
    bursts = _seed_history(functions_worker, now)
    results = _probe(functions_worker, now)
    history_reasons = _history_reasons(results)
    assert all(any(r["field"] in behaviour.FEATURES for r in result["reasons"]) for result in results)
    for reason in history_reasons:
        assert not _quotes_a_figure(reason["text"]), reason
    texts = " | ".join(reason["text"] for result in results for reason in result["reasons"])
    assert not any(figure in texts for figure in _stored_figures(bursts)), texts


def test_reason_figures_on_quotes_them(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """SCORE_API_REASON_FIGURES=on: the same reasons, worded with the figures, as on the scored documents."""
    now = datetime.now(UTC)
    _seed_history(functions_worker, now)
    plain = _probe(functions_worker, now)
    monkeypatch.setenv("SCORE_API_REASON_FIGURES", "on")
    get_settings.cache_clear()
    quoted = _probe(functions_worker, now)
    key = [[(r["field"], r["contribution"]) for r in result["reasons"]] for result in plain]
    assert [[(r["field"], r["contribution"]) for r in result["reasons"]] for result in quoted] == key
    with_figures = [r["text"] for r in _history_reasons(quoted) if _quotes_a_figure(r["text"])]
    assert with_figures, "with figures on, the burst's amounts or counts are quoted"
    plain_texts = {r["text"] for r in _history_reasons(plain)}
    assert plain_texts.isdisjoint(with_figures)


@pytest.mark.parametrize("field", behaviour.FEATURES)
def test_figure_free_wording_holds_no_figure(field: str) -> None:
    """Whatever a behavioural feature's value, its figure-free reason prints no number but its fixed window."""
    for value in (0.0, 0.2, 0.5, 0.99, 1.0, 1.5, 2.0, 3.0, 7.0, 42.5, 3600.0, 4440.76, 2_592_000.0):
        text = describe_without_figures(field, {field: value}, SEED_RECORD)
        assert not _quotes_a_figure(text), (value, text)


# --- no input answers 500 --------------------------------------------------------------------------


def test_record_too_deep_to_re_encode_is_a_record_error(functions_worker: Worker) -> None:
    """Nesting orjson reads but cannot write (255+ levels) is the record's fault, not a 500; the rest are scored."""
    deep_field = '{"amount": ' + _nested(300) + "}"
    body = '{"data": [' + ",".join([json.dumps(SEED_RECORD), deep_field, _nested(300), '{"id": ' + _nested(252) + "}"])
    response = _post(functions_worker, (body + "]}").encode())
    assert response.status_code == 200
    results = response.json()["results"]
    assert "fraud_probability" in results[0]
    assert [r["error"]["reason"] for r in results[1:]] == ["too_deep"] * 3
    assert [r["error"]["field"] for r in results[1:]] == ["body", "body", "id"]
    assert [r["id"] for r in results] == [4, None, None, None]


def test_deepest_record_orjson_writes_is_scored_as_usual(functions_worker: Worker) -> None:
    """Just under the limit, a nested field is an ordinary wrong-type error, and a nested id is echoed back."""
    body = '{"data": [{"amount": ' + _nested(253) + "}, " + json.dumps(SEED_RECORD)[:-1] + ', "id": '
    response = _post(functions_worker, (body + _nested(251) + "}]}").encode())
    assert response.status_code == 200
    first, second = response.json()["results"]
    assert first["error"]["reason"] == "wrong_type"
    assert "fraud_probability" in second
    assert json.dumps(second["id"]) == _nested(251).replace("][", "], [")


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"amount": ' + b"[" * 1100 + b"]" * 1100 + b"}]}",  # deeper than orjson reads
        b'{"data": [{"amount": 1e400}]}',
        b'{"data": [{"amount": -1e400}]}',
        b'{"data": [{"amount": NaN}]}',
        b'{"data": [{"amount": Infinity}]}',
        b'{"data": [{"category_recipient": "\\ud800"}]}',
        b'{"data": [{"category_recipient": "\xed\xa0\x80"}]}',  # a surrogate in UTF-8: not UTF-8
    ],
)
def test_json_orjson_refuses_is_invalid_json(functions_worker: Worker, body: bytes) -> None:
    """Too deep to read, numbers beyond a double, NaN and lone surrogates: the 400 `invalid_json`."""
    response = _post(functions_worker, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        ({**SEED_RECORD, "category_recipient": "food\u0000store"}, "category_recipient", "unknown_category"),
        ({**SEED_RECORD, "account_id": "acct\u0000x"}, "account_id", "invalid_value"),
        ({**SEED_RECORD, "amount": 10**30}, "amount", "out_of_range"),
        ({**SEED_RECORD, "amount": 18446744073709551615}, "amount", "out_of_range"),
        ({**SEED_RECORD, "old_balance": 1.7976931348623157e308}, "old_balance", "out_of_range"),
        (None, "body", "not_an_object"),
        ([SEED_RECORD], "body", "not_an_object"),
        ("text", "body", "not_an_object"),
        (1.5, "body", "not_an_object"),
    ],
)
def test_odd_records_get_record_errors(functions_worker: Worker, record: Any, field: str, reason: str) -> None:
    """NUL characters, integers past 64 bits, the largest double and non-objects are per-record errors."""
    raw = json.dumps({"data": [record, SEED_RECORD]}).replace("\\\\u0000", "\\u0000").encode()
    response = _post(functions_worker, raw)
    assert response.status_code == 200
    bad, good = response.json()["results"]
    assert (bad["error"]["field"], bad["error"]["reason"]) == (field, reason)
    assert "fraud_probability" in good


def test_most_records_allowed_are_scored(functions_worker: Worker) -> None:
    """`data` holding MAX_RECORDS records, of few accounts, is one answer of that many results."""
    records = TransactionGenerator(seed=12, accounts=7).generate(MAX_RECORDS)
    response = _post(functions_worker, {"data": records})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == [r["id"] for r in records]
    assert all("fraud_probability" in r for r in results)


def test_a_failure_inside_scoring_is_a_500_that_names_no_internals(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever raises in our scoring code, the caller gets a stable code, never the exception's text."""
    import functions.score_http as score_http

    def broken(*args: object, **kwargs: object) -> object:
        raise KeyError("secret internal detail")

    monkeypatch.setattr(score_http, "score_records", broken)
    record = {k: v for k, v in TransactionGenerator(seed=1).generate(1)[0].items() if k != "is_fraud"}
    reply = http(
        functions_worker,
        "ScoreRequest",
        "POST",
        "/api/score",
        headers={"Content-Type": "application/json"},
        body=orjson.dumps({"data": [record]}),
    )
    assert reply.status_code == 500
    assert reply.json()["error"]["code"] == "internal_error"
    assert b"secret" not in reply.body
    assert b"KeyError" not in reply.body
