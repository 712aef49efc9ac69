"""The Azure ML web-service request format existing clients send, scored on the same path as events.

Clients of the design we replace POST `{"data": [ {transaction}, ... ]}` (the seed's AKS `run()`
input: the features plus an `id` and a `date` the model ignores). Each record is checked against
the transaction contract's feature fields and scored by the very code that scores Event Hubs
batches (`score_batch`), so both paths agree on every decision and reason. Identity fields are not
required here: a client's `id` is echoed back whatever its type, and `date`/`timestamp` are
ignored. A bad record gets a per-record error; only a bad request as a whole is an HTTP error.

History: a record naming an `account_id` the app has seen is scored with that account's stored
behaviour (its payments before the record's `timestamp`, or before now when it has none); the
request's records of one account count as its latest payments, in order. Nothing is written: a
query adds no payment to any history. A record without `account_id`, or with an unknown one, is
scored with history unknown, as an account's first payment (features `behaviour.no_history`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from shared import contract as c
from shared.history import History
from shared.model import FraudModel
from shared.scoring import EventBatch, score_batch, utc_iso

MAX_BODY_BYTES: Final = 1_048_576
MAX_RECORDS: Final = 1000
_IDENTITY: Final = {c.ID_FIELD, c.TIMESTAMP_FIELD, c.ACCOUNT_FIELD, c.LABEL_FIELD, "date"}


@dataclass(frozen=True)
class RequestError(ValueError):
    """The request as a whole is unusable: an HTTP status, a stable code and a message for the caller."""

    status: int
    code: str
    message: str


def parse(body: bytes, content_type: str | None) -> list[Any]:
    """The request's records, or a `RequestError` saying what is wrong with the request itself."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise RequestError(415, "unsupported_media_type", "send Content-Type: application/json")
    if len(body) > MAX_BODY_BYTES:
        raise RequestError(413, "payload_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes")
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError(400, "invalid_json", "the body is not a UTF-8 JSON document") from None
    if not isinstance(request, dict) or not isinstance(request.get("data"), list):
        raise RequestError(400, "invalid_request", 'expected {"data": [ {transaction}, ... ]}')
    records: list[Any] = request["data"]
    if not records:
        raise RequestError(400, "invalid_request", "data must hold at least one record")
    if len(records) > MAX_RECORDS:
        raise RequestError(413, "too_many_records", f"data may hold at most {MAX_RECORDS} records")
    return records


def _account(record: dict[str, Any], i: int) -> str:
    account = record.get(c.ACCOUNT_FIELD)
    # A record without an account gets one of its own that no history holds: history unknown.
    return account if isinstance(account, str) and account else f"request-{i}"


def _timestamp(record: dict[str, Any], stamp: str) -> str:
    """The record's own event time when it is a valid contract timestamp, else now (the seed sent none)."""
    value = record.get(c.TIMESTAMP_FIELD)
    try:
        return c.check_timestamp(value)
    except c.InvalidTransactionError:
        return stamp


def score_records(
    records: Sequence[Any], model: FraudModel, now: datetime | None = None, history: History | None = None
) -> dict[str, Any]:
    """Score records in order: probability, decision and reasons, or a per-record error."""
    moment = now or datetime.now(UTC)
    stamp = utc_iso(moment)
    bodies = []
    for i, record in enumerate(records):
        if isinstance(record, dict):
            features = {k: v for k, v in record.items() if k not in _IDENTITY}
            # Stand-in id: the position, so two records with the client's same id stay apart and none
            # can match a stored payment's id.
            record = {
                **features,
                c.ID_FIELD: f"request-{i}",
                c.TIMESTAMP_FIELD: _timestamp(record, stamp),
                c.ACCOUNT_FIELD: _account(record, i),
            }
        bodies.append(orjson.dumps(record))
    batch = EventBatch(bodies, [None] * len(bodies), list(range(len(bodies))), partition=None)
    result = score_batch(batch, model, moment, history=history, write_state=False)

    answers: list[dict[str, Any]] = [{} for _ in records]
    for doc in result.scored:
        answers[doc["sequence_number"]] = {
            "fraud_probability": doc["fraud_probability"],
            "is_fraud": doc["is_flagged"],
            "reasons": doc["reasons"],
        }
    for doc in result.rejected:
        answers[doc["sequence_number"]] = {
            "error": {"field": doc["field"], "reason": doc["reason"], "detail": doc["detail"]}
        }
    for i, record in enumerate(records):
        answers[i] = {"index": i, "id": record.get(c.ID_FIELD) if isinstance(record, dict) else None, **answers[i]}
    return {"model_version": model.version, "threshold": model.threshold, "results": answers}
