"""Scoring one Event Hubs batch: decode, validate, encode, predict, explain, and shape documents.

Every event that enters leaves as exactly one document: a scored one (id = transaction id, so a
replayed batch overwrites in Cosmos DB instead of duplicating) or a rejected one that names the
field, a stable reason code and keeps the raw body for re-driving. Nothing here raises for bad
input: the Functions host moves the checkpoint past a batch even when the function throws, so an
exception would silently skip the rest of the batch.

The batch moves as columns, so per-event Python stays at what cannot be shared: one JSON decode per
event, then `shared.columnar` checks each field for the whole batch (with `contract.validate`'s
decisions), `features.encode` fills one float32 matrix, the booster predicts it in one call, and
SHAP tables explain only the flagged rows. When every event carries exactly the contract's fields
(the usual case), an event's own decoded object becomes its document, so no field is copied.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import orjson

from shared import contract as c
from shared.columnar import ValidBatch, validate_batch
from shared.features import encode
from shared.model import FraudModel, ranked

logger = logging.getLogger(__name__)

RAW_BODY_LIMIT = 16 * 1024
"""Raw bodies longer than this are truncated in rejected documents (Cosmos items max out at 2 MB)."""

_TOO_LARGE: Final = c.Rejection("body", "too_large", f"event body exceeds {c.MAX_EVENT_BYTES} bytes")
_INVALID_JSON: Final = c.Rejection("body", "invalid_json", "not a UTF-8 JSON document")


@dataclass(frozen=True, slots=True)
class EventBatch:
    """One Event Hubs delivery as columns (one entry per event), free of any `azure.functions` type."""

    bodies: Sequence[bytes]
    enqueued_times: Sequence[datetime | None]
    sequence_numbers: Sequence[int | None]
    partition: str | None = None

    @classmethod
    def of_bodies(cls, bodies: Sequence[bytes], partition: str | None = None) -> EventBatch:
        """A batch of bare bodies, as a local caller without Event Hubs metadata has them."""
        return cls(bodies, [None] * len(bodies), [None] * len(bodies), partition)

    def __len__(self) -> int:
        return len(self.bodies)


@dataclass
class BatchResult:
    """Documents to write: one per input event, split by destination container."""

    scored: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    flagged: int = 0


def utc_iso(moment: datetime) -> str:
    """UTC ISO 8601 with millisecond precision and a `Z`, the contract's timestamp form.

    A naive `moment` is UTC: the host writes EnqueuedTimeUtc without a zone, and `astimezone` would
    read it as the process's local time (5 hours off under TZ=America/New_York).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_times(moments: Sequence[datetime | None]) -> list[str | None]:
    # Events sent together share an enqueued time and arrive together: format each run once.
    out: list[str | None] = []
    append = out.append
    last: datetime | None = None
    text: str | None = None
    for moment in moments:
        if moment != last or text is None:
            last, text = moment, None if moment is None else utc_iso(moment)
        append(text)
    return out


def _rejected_id(batch: EventBatch, position: int) -> str:
    # Deterministic, so a redelivered bad event overwrites its earlier rejection. Event Hubs
    # sequence numbers are unique per partition; without one (local callers), the body and its
    # position in the batch stand in.
    sequence_number = batch.sequence_numbers[position]
    if sequence_number is not None:
        key = f"{batch.partition}|{sequence_number}".encode()
    else:
        key = b"%d|" % position + batch.bodies[position]
    return "rejected-" + hashlib.sha256(key).hexdigest()[:40]


def rejected_document(
    batch: EventBatch, position: int, rejection: c.Rejection, now: str, model_version: str | None = None
) -> dict[str, Any]:
    """The rejected-container document for one event: reason, where it came from, and its raw body."""
    body = batch.bodies[position]
    raw = body[:RAW_BODY_LIMIT]
    try:
        body_text: str | None = raw.decode("utf-8")
        body_b64 = None
    except UnicodeDecodeError:
        body_text, body_b64 = None, base64.b64encode(raw).decode("ascii")
    enqueued = batch.enqueued_times[position]
    return {
        "id": _rejected_id(batch, position),
        "field": rejection.field,
        "reason": rejection.reason,
        "detail": rejection.detail,
        "raw_body": body_text,
        "raw_body_base64": body_b64,
        "raw_body_bytes": len(body),
        "raw_body_truncated": len(body) > RAW_BODY_LIMIT,
        "enqueued_time": utc_iso(enqueued) if enqueued else None,
        "partition": batch.partition,
        "sequence_number": batch.sequence_numbers[position],
        "rejected_at": now,
        "model_version": model_version,
    }


def _decode(bodies: Sequence[bytes]) -> tuple[list[Any], dict[int, c.Rejection]]:
    """Each body's JSON value (None where it has none), and the rejections of those without one."""
    records: list[Any] = []
    rejections: dict[int, c.Rejection] = {}
    append, loads, limit = records.append, orjson.loads, c.MAX_EVENT_BYTES
    for position, body in enumerate(bodies):
        if len(body) > limit:
            rejections[position] = _TOO_LARGE
            append(None)
            continue
        try:
            append(loads(body))
        except orjson.JSONDecodeError:
            rejections[position] = _INVALID_JSON
            append(None)
    return records, rejections


def _scored_documents(
    valid: ValidBatch, batch: EventBatch, probabilities: list[float], flagged: list[bool], model: FraudModel, now: str
) -> list[dict[str, Any]]:
    positions = valid.positions
    every_event = len(positions) == len(batch)
    enqueued_all = _iso_times(batch.enqueued_times)
    enqueued = enqueued_all if every_event else [enqueued_all[i] for i in positions]
    sequence = list(batch.sequence_numbers) if every_event else [batch.sequence_numbers[i] for i in positions]
    threshold, version, partition = model.threshold, model.version, batch.partition
    if valid.canonical:
        docs = valid.records
        if None in valid.labels:
            for doc in docs:
                doc.setdefault(c.LABEL_FIELD, None)
        shared = {"threshold": threshold, "model_version": version, "scored_at": now, "partition": partition}
        update = dict.update  # one presized merge is cheaper than four single inserts growing the dict
        for doc, p, f, e, s in zip(docs, probabilities, flagged, enqueued, sequence, strict=True):
            doc["fraud_probability"] = p
            doc["is_flagged"] = f
            update(doc, shared)
            doc["enqueued_time"] = e
            doc["sequence_number"] = s
        return docs
    # Some event is unusual (an extra field, an integer amount, a boolean label): build each
    # document from the validated columns, exactly as the contract converts the values.
    num = valid.numbers
    values = {f: num[f].tolist() for f in (*c.CONTINUOUS_FIELDS, *c.PASSTHROUGH_FIELDS)}
    for name, allowed in c.CATEGORIES.items():
        values[name] = np.asarray(allowed, dtype=object)[num[name]].tolist()
    return [
        {
            "id": id_,
            "timestamp": ts,
            "account_id": account,
            "amount": amount,
            "old_balance": balance,
            "income": income,
            "credit": credit,
            "marital_status": marital,
            "children": children,
            "month": month,
            "day_of_week": day,
            "category_recipient": recipient,
            "transaction_type": ttype,
            "transaction_method": method,
            "foreign_transaction": foreign,
            "is_fraud": label,
            "fraud_probability": p,
            "is_flagged": f,
            "threshold": threshold,
            "model_version": version,
            "scored_at": now,
            "enqueued_time": e,
            "partition": partition,
            "sequence_number": s,
        }
        for (
            id_,
            ts,
            account,
            amount,
            balance,
            income,
            credit,
            marital,
            children,
            month,
            day,
            recipient,
            ttype,
            method,
            foreign,
            label,
            p,
            f,
            e,
            s,
        ) in zip(
            valid.ids,
            valid.timestamps,
            valid.account_ids,
            values["amount"],
            values["old_balance"],
            values["income"],
            values["credit"],
            values["marital_status"],
            values["children"],
            values["month"],
            values["day_of_week"],
            values["category_recipient"],
            values["transaction_type"],
            values["transaction_method"],
            values["foreign_transaction"],
            valid.labels,
            probabilities,
            flagged,
            enqueued,
            sequence,
            strict=True,
        )
    ]


def score_batch(batch: EventBatch, model: FraudModel, now: datetime | None = None) -> BatchResult:
    """Score a whole batch in one matrix; set aside every event that breaks the contract."""
    stamp = utc_iso(now or datetime.now(UTC))
    records, undecodable = _decode(batch.bodies)
    valid = validate_batch(records, undecodable)
    rejected = [
        rejected_document(batch, position, rejection, stamp, model.version)
        for position, rejection in sorted(valid.rejections.items())
    ]
    if not valid.positions:
        return BatchResult(rejected=rejected)

    x = encode(valid.numbers, model.spec)
    probabilities = model.predict_proba(x)
    # Compared in float64, as `probability >= threshold` reads on the stored document.
    flagged = probabilities.astype(np.float64) >= model.threshold
    flagged_list = flagged.tolist()
    docs = _scored_documents(valid, batch, probabilities.tolist(), flagged_list, model, stamp)
    flagged_rows = np.flatnonzero(flagged)
    explained = reason_lists(model.contributions(x[flagged_rows])) if flagged_rows.size else []
    # Reasons go in last: a document holding a list is tracked by the garbage collector, and every
    # collection triggered before this point would otherwise walk a thousand of them.
    next_reasons = iter(explained).__next__
    for doc, is_flagged in zip(docs, flagged_list, strict=True):
        doc["reasons"] = next_reasons() if is_flagged else []
    return BatchResult(scored=docs, rejected=rejected, flagged=len(explained))


def reason_lists(contributions: np.ndarray) -> list[list[dict[str, Any]]]:
    """Each row's reasons: its three largest contributions, largest first, positive ones only.

    The one place reasons are shaped: scored documents, `/api/score` answers and the rows pushed to
    Power BI all carry these lists.
    """
    (first, second, third), (v1, v2, v3) = ranked(contributions, 3)
    out: list[list[dict[str, Any]]] = []
    append = out.append
    # Ranked largest first, so the positive contributions are a prefix of the three.
    for n1, n2, n3, c1, c2, c3 in zip(first, second, third, v1, v2, v3, strict=True):
        if c3 > 0.0:
            append(
                [
                    {"field": n1, "contribution": round(c1, 4)},
                    {"field": n2, "contribution": round(c2, 4)},
                    {"field": n3, "contribution": round(c3, 4)},
                ]
            )
        elif c2 > 0.0:
            append([{"field": n1, "contribution": round(c1, 4)}, {"field": n2, "contribution": round(c2, 4)}])
        elif c1 > 0.0:
            append([{"field": n1, "contribution": round(c1, 4)}])
        else:
            append([])
    return out


def reject_all(batch: EventBatch, rejection: c.Rejection, now: datetime | None = None) -> BatchResult:
    """Record a whole batch as rejected (the model is unusable), so the events are kept for re-driving."""
    stamp = utc_iso(now or datetime.now(UTC))
    return BatchResult(rejected=[rejected_document(batch, i, rejection, stamp) for i in range(len(batch))])
