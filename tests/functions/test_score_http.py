"""ScoreRequest (POST /api/score) through the worker engine, in the Azure ML request format the seeds use."""

from __future__ import annotations

import json
from typing import Any

import pytest

import functions.score as score_module
from devhost.worker import Worker
from shared.generator import TransactionGenerator
from shared.model import LazyModel, ModelIntegrityError
from shared.score_request import MAX_BODY_BYTES, MAX_RECORDS
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
    """A record scores exactly as the same transaction does through ScoreTransactions."""
    records = TransactionGenerator(seed=8).generate(300)
    answer = json.loads(_post(functions_worker, {"data": records}).body)
    scored, _ = score(functions_worker, [json.dumps(r).encode() for r in records])
    by_id = {d["id"]: d for d in scored}
    for record, result in zip(records, answer["results"], strict=True):
        doc = by_id[record["id"]]
        assert result["fraud_probability"] == doc["fraud_probability"]
        assert result["is_fraud"] == doc["is_flagged"]
        assert result["reasons"] == doc["reasons"]


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

    monkeypatch.setattr(score_module, "bundled_model", LazyModel(refuse))
    response = _post(functions_worker, {"data": [SEED_RECORD]})
    assert response.status_code == 503
    assert json.loads(response.body)["error"]["code"] == "model_unavailable"
