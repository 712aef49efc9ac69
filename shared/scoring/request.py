"""The Azure ML web-service request format existing clients send, scored on the same path as events.

Clients of the design we replace POST `{"data": [ {transaction}, ... ]}` (the seed's AKS `run()`
input: the features plus an `id` and a `date` the model ignores). Each record is checked against
the transaction contract's feature fields and scored by the very code that scores Event Hubs
batches (`score_batch`), so both paths agree on every decision and reason. Identity fields are not
required here: a client's `id` is echoed back whatever its type, and `date`/`timestamp` are
ignored. A bad record gets a per-record error; only a bad request as a whole is an HTTP error.

StateStore: a record naming an `account_id` the app has seen is scored with that account's stored
behaviour (its payments before the record's `timestamp`, or before now when it has none); the
request's records of one account count as its latest payments, in order. Nothing is written: a
query adds no payment to any history. A record without `account_id`, or with an unknown one, is
scored with history unknown, as an account's first payment (features `behaviour.no_history`).

Reasons say what was unusual without the history's figures (`describe_without_figures`), unless
SCORE_API_REASON_FIGURES=on: anyone holding the function key may name any `account_id`, and the
key holder is not necessarily that account's bank, while the account's stored amounts, balance
shares, counts and gaps between payments are another party's personal data. The answer still
quotes the request's own values (a static field, the recipient category it names).

A record nested deeper than orjson writes (254 levels; it reads 1024) cannot be re-encoded for
the scorer, or its `id` echoed: it gets the per-record error `too_deep` (field `body`, or `id`
when only the echoed id is that deep), like any other bad record, and the rest are still scored.
A body nested deeper than orjson reads is the request-level 400 `invalid_json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from shared.behaviour import features as behaviour
from shared.behaviour.merchants import DEFAULT_DELAY_DAYS
from shared.behaviour.store import StateStore
from shared.contract import schema as c
from shared.scoring.batch import score_batch
from shared.scoring.documents import utc_iso
from shared.scoring.events import EventBatch
from shared.scoring.merchant_risk import MerchantReader
from shared.scoring.model import FraudModel

MAX_BODY_BYTES: Final = 1_048_576
MAX_RECORDS: Final = 1000
_IDENTITY: Final = {c.ID_FIELD, c.TIMESTAMP_FIELD, c.ACCOUNT_FIELD, c.LABEL_FIELD, "date"}
_TOO_DEEP_DETAIL: Final = "nested deeper than the 254 levels the scorer can re-encode"
_HISTORY_FREE: Final = frozenset(
    {"new_recipient_category", "new_transaction_method", "new_transaction_type", "first_foreign"}
)
"""Behavioural features whose `behaviour.describe` text holds no figure: only the record's own category."""


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


def describe_without_figures(
    field: str, features: Mapping[str, float], record: Mapping[str, Any], delay_days: int = DEFAULT_DELAY_DAYS
) -> str:
    """`behaviour.describe` without a figure from the account's stored history: what was unusual, in words.

    No amount, balance share, count or duration of earlier payments; the record's own values (a
    static field, the category it names) are the caller's and stay as `describe` words them. A
    merchant's confirmed frauds are the bank's figures about a merchant, not about the account, and
    are quoted.
    """
    if field not in behaviour.FEATURES or field in _HISTORY_FREE:
        return behaviour.describe(field, features, record, delay_days)
    if field.startswith("payments_prior_"):
        return "payments on earlier days" if (features.get(field) or 0.0) > 0 else "no payments on earlier days"
    if field.startswith("mean_amount_prior_"):
        return "the amounts of earlier days"
    value = float(features.get(field) or 0.0)
    if field == "history_count":
        return "earlier payments on record" if value > 0 else "no account history"
    if field == "seconds_since_previous":
        if value >= behaviour.HORIZON_MS / 1000:
            return behaviour.describe(field, features, record)  # "first payment in 30 days": no history figure
        return "time since the previous payment"
    if field == "payments_last_hour":
        return "several payments in the last hour" if value > 1 else "no earlier payment in the last hour"
    if field == "payments_last_day":
        return "several payments in the last 24 hours" if value > 1 else "no earlier payment in the last 24 hours"
    if field == "amount_last_hour":
        return "unusually high spending in the last hour"
    if field == "amount_last_day":
        return "unusually high spending in the last 24 hours"
    if field == "amount_to_usual":
        # The ratio and the request's own amount would give the account's usual amount away.
        ratio = value or 1.0
        if ratio >= 1.95:
            return "amount far above usual"
        if ratio > 1.0:
            return "amount above usual"
        return "amount below usual" if ratio < 1.0 else "amount as usual"
    if field == "balance_spent_last_hour":
        if value > 1.0:
            return "more than the balance spent in the last hour"
        if value >= 0.5:
            return "most of the balance spent in the last hour"
        return "part of the balance spent in the last hour"
    # A feature added later has no wording here yet: name it, quote nothing.
    return f"unusual {field.replace('_', ' ')}"


def _body(record: Any, i: int, stamp: str) -> bytes:
    """The record as `score_batch` reads it; `orjson.JSONEncodeError` if it is nested too deep to re-encode."""
    if not isinstance(record, dict):
        return orjson.dumps(record)  # score_batch rejects it as not_an_object
    features = {k: v for k, v in record.items() if k not in _IDENTITY}
    # Stand-in id: the position, so two records with the client's same id stay apart and none
    # can match a stored payment's id.
    return orjson.dumps(
        {
            **features,
            c.ID_FIELD: f"request-{i}",
            c.TIMESTAMP_FIELD: _timestamp(record, stamp),
            c.ACCOUNT_FIELD: _account(record, i),
        }
    )


def _echoable(client_id: Any) -> bool:
    """Whether the answer can carry a client's `id` back: orjson writes at most 254 levels."""
    if not isinstance(client_id, dict | list):
        return True
    try:
        orjson.dumps([[[client_id]]])  # as deep as the answer holds it: the answer, `results`, the result
    except orjson.JSONEncodeError:
        return False
    return True


def _too_deep(field: str) -> dict[str, Any]:
    return {"error": {"field": field, "reason": "too_deep", "detail": _TOO_DEEP_DETAIL}}


def score_records(
    records: Sequence[Any],
    model: FraudModel,
    now: datetime | None = None,
    store: StateStore | None = None,
    *,
    reason_figures: bool = False,
    merchant_store: MerchantReader | None = None,
) -> dict[str, Any]:
    """Score records in order: probability, decision and reasons, or a per-record error.

    `reason_figures` lets reasons quote the account's stored figures (`behaviour.describe`);
    without it they are `describe_without_figures` (the module docstring says why).
    """
    moment = now or datetime.now(UTC)
    stamp = utc_iso(moment)
    answers: list[dict[str, Any]] = [{} for _ in records]
    echoed: list[Any] = [None] * len(records)
    bodies: list[bytes] = []
    positions: list[int] = []
    for i, record in enumerate(records):
        client_id = record.get(c.ID_FIELD) if isinstance(record, dict) else None
        if not _echoable(client_id):
            answers[i] = _too_deep(c.ID_FIELD)
            continue
        echoed[i] = client_id
        try:
            bodies.append(_body(record, i, stamp))
        except orjson.JSONEncodeError:
            answers[i] = _too_deep("body")
            continue
        positions.append(i)
    # Sequence numbers are the records' positions, so the documents map back to them.
    batch = EventBatch(bodies, [None] * len(bodies), positions, partition=None)
    result = score_batch(batch, model, moment, store=store, write_state=False, merchant_store=merchant_store)

    for doc in result.scored:
        reasons = doc["reasons"]
        if not reason_figures:
            for reason in reasons:
                reason["text"] = describe_without_figures(
                    reason["field"], doc["behaviour"], doc, model.merchant_delay_days
                )
        answers[doc["sequence_number"]] = {
            "fraud_probability": doc["fraud_probability"],
            "is_fraud": doc["is_flagged"],
            "reasons": reasons,
        }
    for doc in result.rejected:
        answers[doc["sequence_number"]] = {
            "error": {"field": doc["field"], "reason": doc["reason"], "detail": doc["detail"]}
        }
    results = [{"index": i, "id": echoed[i], **answer} for i, answer in enumerate(answers)]
    return {"model_version": model.version, "threshold": model.threshold, "results": results}
