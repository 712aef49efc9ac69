"""Scoring one Event Hubs batch: decode, validate, encode, predict, explain, and shape documents.

Every event that enters leaves as exactly one document: a scored one (id = transaction id, so a
replayed batch overwrites in Cosmos DB instead of duplicating) or a rejected one that names the
field, a stable reason code and keeps the raw body for re-driving. Nothing here raises for bad
input: the Functions host moves the checkpoint past a batch even when the function throws, so an
exception would silently skip the rest of the batch.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from shared import contract as c
from shared.features import encode, transactions_to_columns
from shared.model import FraudModel

logger = logging.getLogger(__name__)

RAW_BODY_LIMIT = 16 * 1024
"""Raw bodies longer than this are truncated in rejected documents (Cosmos items max out at 2 MB)."""


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """What the scorer needs from one Event Hubs event, free of any `azure.functions` type."""

    body: bytes
    enqueued_time: datetime | None = None
    partition: str | None = None
    sequence_number: int | None = None


@dataclass
class BatchResult:
    """Documents to write: one per input event, split by destination container."""

    scored: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def flagged(self) -> int:
        return sum(1 for d in self.scored if d["is_flagged"])


def utc_iso(moment: datetime) -> str:
    """UTC ISO 8601 with millisecond precision and a `Z`, the contract's timestamp form."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rejected_id(event: IncomingEvent, position: int) -> str:
    # Deterministic, so a redelivered bad event overwrites its earlier rejection. Event Hubs
    # sequence numbers are unique per partition; without one (local callers), the body and its
    # position in the batch stand in.
    if event.sequence_number is not None:
        key = f"{event.partition}|{event.sequence_number}".encode()
    else:
        key = b"%d|" % position + event.body
    return "rejected-" + hashlib.sha256(key).hexdigest()[:40]


def rejected_document(
    event: IncomingEvent, position: int, rejection: c.Rejection, now: str, model_version: str | None = None
) -> dict[str, Any]:
    """The rejected-container document for one event: reason, where it came from, and its raw body."""
    raw = event.body[:RAW_BODY_LIMIT]
    try:
        body_text: str | None = raw.decode("utf-8")
        body_b64 = None
    except UnicodeDecodeError:
        body_text, body_b64 = None, base64.b64encode(raw).decode("ascii")
    return {
        "id": _rejected_id(event, position),
        "field": rejection.field,
        "reason": rejection.reason,
        "detail": rejection.detail,
        "raw_body": body_text,
        "raw_body_base64": body_b64,
        "raw_body_bytes": len(event.body),
        "raw_body_truncated": len(event.body) > RAW_BODY_LIMIT,
        "enqueued_time": utc_iso(event.enqueued_time) if event.enqueued_time else None,
        "partition": event.partition,
        "sequence_number": event.sequence_number,
        "rejected_at": now,
        "model_version": model_version,
    }


def _decode(event: IncomingEvent) -> c.Transaction:
    if len(event.body) > c.MAX_EVENT_BYTES:
        raise c.InvalidTransactionError(
            c.Rejection("body", "too_large", f"event body exceeds {c.MAX_EVENT_BYTES} bytes")
        )
    try:
        record = orjson.loads(event.body)
    except orjson.JSONDecodeError:
        raise c.InvalidTransactionError(c.Rejection("body", "invalid_json", "not a UTF-8 JSON document")) from None
    return c.validate(record)


def _scored_document(
    tx: c.Transaction, event: IncomingEvent, probability: float, model: FraudModel, now: str
) -> dict[str, Any]:
    flagged = probability >= model.threshold
    return {
        "id": tx.id,
        "timestamp": tx.timestamp,
        "account_id": tx.account_id,
        "amount": tx.amount,
        "old_balance": tx.old_balance,
        "income": tx.income,
        "credit": tx.credit,
        "marital_status": tx.marital_status,
        "children": tx.children,
        "month": c.category_value("month", tx.month),
        "day_of_week": c.category_value("day_of_week", tx.day_of_week),
        "category_recipient": c.category_value("category_recipient", tx.category_recipient),
        "transaction_type": c.category_value("transaction_type", tx.transaction_type),
        "transaction_method": c.category_value("transaction_method", tx.transaction_method),
        "foreign_transaction": tx.foreign_transaction,
        "is_fraud": None if tx.is_fraud is None else int(tx.is_fraud),
        "fraud_probability": probability,
        "is_flagged": flagged,
        "threshold": model.threshold,
        "model_version": model.version,
        "scored_at": now,
        "enqueued_time": utc_iso(event.enqueued_time) if event.enqueued_time else None,
        "partition": event.partition,
        "sequence_number": event.sequence_number,
        "reasons": [],
    }


def score_batch(events: Sequence[IncomingEvent], model: FraudModel, now: datetime | None = None) -> BatchResult:
    """Score a whole batch in one matrix; set aside every event that breaks the contract."""
    stamp = utc_iso(now or datetime.now(UTC))
    result = BatchResult()
    valid: list[c.Transaction] = []
    valid_events: list[IncomingEvent] = []
    seen: set[str] = set()
    for position, event in enumerate(events):
        try:
            tx = _decode(event)
        except c.InvalidTransactionError as exc:
            result.rejected.append(rejected_document(event, position, exc.rejection, stamp, model.version))
            continue
        if tx.id in seen:
            # Two events with one id would collapse into one Cosmos item and break the count.
            dup = c.Rejection(c.ID_FIELD, "duplicate_id", "id already seen earlier in this batch")
            result.rejected.append(rejected_document(event, position, dup, stamp, model.version))
            continue
        seen.add(tx.id)
        valid.append(tx)
        valid_events.append(event)

    if valid:
        x = encode(transactions_to_columns(valid), model.spec)
        probabilities = model.predict_proba(x).tolist()
        docs = [
            _scored_document(tx, ev, p, model, stamp)
            for tx, ev, p in zip(valid, valid_events, probabilities, strict=True)
        ]
        flagged_rows = [i for i, d in enumerate(docs) if d["is_flagged"]]
        if flagged_rows:
            explained = model.reasons(x[flagged_rows])
            for i, reasons in zip(flagged_rows, explained, strict=True):
                docs[i]["reasons"] = [{"field": r.field, "contribution": round(r.contribution, 4)} for r in reasons]
        result.scored = docs
    return result


def reject_all(events: Sequence[IncomingEvent], rejection: c.Rejection, now: datetime | None = None) -> BatchResult:
    """Record a whole batch as rejected (the model is unusable), so the events are kept for re-driving."""
    stamp = utc_iso(now or datetime.now(UTC))
    return BatchResult(rejected=[rejected_document(ev, i, rejection, stamp) for i, ev in enumerate(events)])
