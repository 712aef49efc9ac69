"""The documents a batch leaves as: scored ones shaped from the validated columns, rejected ones keeping raw bodies.

Scored documents use the transaction id as `id`, so a replay overwrites; rejected documents have
deterministic ids (partition, sequence number, record index) and keep the whole raw body for
re-driving (`RAW_BODY_LIMIT`). Reasons are shaped here once for every output.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import orjson

from shared.contract import schema as c
from shared.contract.batch import ValidBatch
from shared.scoring.events import EventBatch, Slots
from shared.scoring.model import FraudModel, ranked

logger = logging.getLogger(__name__)

RAW_BODY_LIMIT: Final = 1_048_576
"""Raw bodies up to this size (the largest event Event Hubs Standard and Premium accept) are kept whole
in rejected documents, so every rejected event can be re-driven (tools/redrive.py). A body is kept as
text when its JSON-escaped form stays under `RAW_TEXT_LIMIT`, else as base64 (at most 1.4 MB): either
way the document stays under Cosmos DB's 2 MB item limit. Only a body larger than this (possible only
from a producer that bypasses Event Hubs) is cut, with `raw_body_truncated` set."""
RAW_TEXT_LIMIT: Final = 1_500_000


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


def _rejected_record_id(batch: EventBatch, position: int, index: int, raw: bytes) -> str:
    # (partition, sequence number, record index): a replayed envelope overwrites each record's rejection.
    sequence_number = batch.sequence_numbers[position]
    if sequence_number is not None:
        key = f"{batch.partition}|{sequence_number}|{index}".encode()
    else:
        key = b"%d|%d|" % (position, index) + raw
    return "rejected-" + hashlib.sha256(key).hexdigest()[:40]


def _record_bytes(record: Any) -> bytes:
    # The record as its envelope carried it, re-encoded: the envelope's bytes are not split per record.
    try:
        return orjson.dumps(record)
    except TypeError:  # JSONEncodeError: nested deeper than orjson writes (it reads deeper than it writes)
        return _deep_json(record)


def _deep_json(value: Any) -> bytes:
    """JSON for a decoded value nested deeper than orjson writes (255 to 1,024 levels), without recursion.

    So that such a record's rejected document still holds JSON that `tools/redrive.py` can send back
    (a `repr` fallback once kept `{'id': ...}`, which no consumer can read).
    """
    out: list[bytes] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is bytes:  # a piece of punctuation pushed below
            out.append(item)
        elif type(item) is list:
            stack.append(b"]")
            for i in range(len(item) - 1, -1, -1):
                stack.append(item[i])
                if i:
                    stack.append(b",")
            out.append(b"[")
        elif type(item) is dict:
            stack.append(b"}")
            pairs = list(item.items())
            for i in range(len(pairs) - 1, -1, -1):
                key, inner = pairs[i]
                stack.append(inner)
                stack.append(orjson.dumps(str(key)) + b":")
                if i:
                    stack.append(b",")
            out.append(b"{")
        else:
            out.append(orjson.dumps(item))
    return b"".join(out)


def rejected_document(
    batch: EventBatch, position: int, rejection: c.Rejection, now: str, model_version: str | None = None
) -> dict[str, Any]:
    """The rejected-container document for one event: reason, where it came from, and its raw body."""
    doc_id = _rejected_id(batch, position)
    return _rejected(batch, position, None, batch.bodies[position], doc_id, rejection, now, model_version)


def rejected_record_document(
    batch: EventBatch,
    position: int,
    index: int,
    record: Any,
    rejection: c.Rejection,
    now: str,
    model_version: str | None = None,
) -> dict[str, Any]:
    """The rejected-container document for record `index` of the envelope in event `position`."""
    raw = _record_bytes(record)
    doc_id = _rejected_record_id(batch, position, index, raw)
    return _rejected(batch, position, index, raw, doc_id, rejection, now, model_version)


def _rejected(
    batch: EventBatch,
    position: int,
    index: int | None,
    body: bytes,
    doc_id: str,
    rejection: c.Rejection,
    now: str,
    model_version: str | None,
) -> dict[str, Any]:
    raw = body[:RAW_BODY_LIMIT]
    body_text: str | None
    try:
        body_text = raw.decode("utf-8")
    except UnicodeDecodeError:
        body_text = None
    # Control characters escape to six bytes each in JSON: such a text could outgrow the item limit.
    if body_text is not None and len(raw) * 6 > RAW_TEXT_LIMIT and len(orjson.dumps(body_text)) > RAW_TEXT_LIMIT:
        body_text = None
    body_b64 = None if body_text is not None else base64.b64encode(raw).decode("ascii")
    enqueued = batch.enqueued_times[position]
    return {
        "id": doc_id,
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
        "record_index": index,
        "rejected_at": now,
        "model_version": model_version,
    }


def rejected_documents(
    batch: EventBatch, slots: Slots, rejections: dict[int, c.Rejection], now: str, model_version: str | None
) -> list[dict[str, Any]]:
    docs = []
    for slot, rejection in sorted(rejections.items()):
        position, index = slots.event(slot), slots.index(slot)
        if index is None:
            docs.append(rejected_document(batch, position, rejection, now, model_version))
        else:
            record = slots.records[slot]
            docs.append(rejected_record_document(batch, position, index, record, rejection, now, model_version))
    return docs


def scored_documents(
    valid: ValidBatch,
    batch: EventBatch,
    events: list[int] | None,
    probabilities: list[float],
    flagged: list[bool],
    model: FraudModel,
    now: str,
) -> list[dict[str, Any]]:
    # The event behind each accepted slot: its enqueued time and sequence number go on the document.
    positions = valid.positions if events is None else list(map(events.__getitem__, valid.positions))
    every_event = events is None and len(positions) == len(batch)
    enqueued_all = _iso_times(batch.enqueued_times)
    if every_event:
        enqueued, sequence = enqueued_all, list(batch.sequence_numbers)
    else:
        enqueued = list(map(enqueued_all.__getitem__, positions))
        sequence = list(map(list(batch.sequence_numbers).__getitem__, positions))
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
    built = [
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
    for doc, merchant in zip(built, valid.merchant_ids, strict=True):
        if merchant is not None:  # absent stays absent, as the canonical path keeps the record
            doc[c.MERCHANT_FIELD] = merchant
    return built


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
