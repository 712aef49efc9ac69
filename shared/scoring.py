"""Scoring one Event Hubs batch: decode, validate, encode, predict, explain, and shape documents.

Every transaction that enters leaves as exactly one document: a scored one (id = transaction id, so
a replayed batch overwrites in Cosmos DB instead of duplicating) or a rejected one that names the
field, a stable reason code and keeps the raw body for re-driving. An event is one transaction or
an envelope of many (`shared.contract`); an envelope's records are flattened into the same batch
columns, each judged on its own, and an envelope that is itself at fault is one rejected document.
Nothing here raises for bad input: the Functions host moves the checkpoint past a batch even when
the function throws, so an exception would silently skip the rest of the batch.

Each payment is scored with its account's behaviour (shared/behaviour.py): the accounts' stored
states are read once per batch from a `History` (shared/history.py), the features come from the
payments strictly before each one in event time, and the accounts' new states come back in
`BatchResult.profiles` for the caller to write. If the store cannot be read, the batch is scored
with history unknown and no state is written (so a stored history is never overwritten by less).

The batch moves as columns, so per-event Python stays at what cannot be shared: one JSON decode per
event, then `shared.columnar` checks each field for the whole batch (with `contract.validate`'s
decisions), `features.encode` fills one float32 matrix, the booster predicts it in one call, and
SHAP tables explain only the flagged rows. When every record carries exactly the contract's fields
(the usual case), a record's own decoded object becomes its document, so no field is copied.

Positions below are *slots*: one per bare event, one per record of a usable envelope, one per
envelope rejected as a whole. Without envelopes, slot i is event i and nothing is remapped.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from typing import Any, Final

import numpy as np
import orjson

from shared import behaviour
from shared import contract as c
from shared.columnar import ValidBatch, validate_batch
from shared.features import behaviour_columns, encode
from shared.history import History, HistoryUnavailableError, profile_document
from shared.model import FraudModel, ranked

logger = logging.getLogger(__name__)

RAW_BODY_LIMIT = 16 * 1024
"""Raw bodies longer than this are truncated in rejected documents (Cosmos items max out at 2 MB)."""

_INVALID_JSON: Final = c.Rejection("body", "invalid_json", "not a UTF-8 JSON document")
DEFAULT_LIMITS: Final = c.EnvelopeLimits()


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
    profiles: list[dict[str, Any]] = field(default_factory=list)
    """The new behaviour state of every account in the batch, as `profiles` documents to write."""


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
        return repr(record).encode()


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
    try:
        body_text: str | None = raw.decode("utf-8")
        body_b64 = None
    except UnicodeDecodeError:
        body_text, body_b64 = None, base64.b64encode(raw).decode("ascii")
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


@dataclass(frozen=True, slots=True)
class _Slots:
    """The batch's records, one per slot, and where each came from."""

    records: list[Any]
    """Each slot's decoded record (None where the slot is a rejected body)."""
    rejections: dict[int, c.Rejection]
    """Slots rejected before validation: undecodable or oversized bodies, envelopes at fault."""
    events: list[int] | None = None
    """The event each slot came from; None when slot i is event i (no envelope in the batch)."""
    indices: list[int | None] | None = None
    """Each slot's index in its envelope; None for a bare event or a whole rejected envelope."""

    def event(self, slot: int) -> int:
        return slot if self.events is None else self.events[slot]

    def index(self, slot: int) -> int | None:
        return None if self.indices is None else self.indices[slot]


def _decode(bodies: Sequence[bytes], limits: c.EnvelopeLimits) -> _Slots:
    """Decode each body once; flatten envelopes' records into slots; reject what cannot be a record."""
    values: list[Any] = []
    rejected: dict[int, c.Rejection] = {}
    append, loads, envelope = values.append, orjson.loads, c.ENVELOPE_FIELD
    small = min(c.MAX_TRANSACTION_BYTES, limits.max_event_bytes)
    envelopes = 0
    for position, body in enumerate(bodies):
        if len(body) > small:
            envelopes += _decode_large(body, position, limits, values, rejected)
            continue
        try:
            value = loads(body)
        except orjson.JSONDecodeError:
            rejected[position] = _INVALID_JSON
            append(None)
            continue
        append(value)
        # An envelope is a one-key dict; the length test spares a transaction the key lookup.
        if type(value) is dict and len(value) == 1 and envelope in value:
            envelopes += 1
    if not envelopes:
        return _Slots(values, rejected)
    return _flatten(values, rejected, limits)


def _decode_large(
    body: bytes, position: int, limits: c.EnvelopeLimits, values: list[Any], rejected: dict[int, c.Rejection]
) -> int:
    # Only an envelope may be this large; anything else is refused as a bare transaction always was.
    if len(body) > limits.max_event_bytes:
        rejected[position] = limits.too_large()
        values.append(None)
        return 0
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
    if not c.is_envelope(value):
        rejected[position] = c.TRANSACTION_TOO_LARGE
        values.append(None)
        return 0
    values.append(value)
    return 1


def _flatten(values: list[Any], rejected: dict[int, c.Rejection], limits: c.EnvelopeLimits) -> _Slots:
    """One slot per bare event, per record of a usable envelope, and per envelope at fault."""
    records: list[Any] = []
    events: list[int] = []
    indices: list[int | None] = []
    rejections: dict[int, c.Rejection] = {}
    for position, value in enumerate(values):
        slot = len(records)
        if position in rejected:
            rejections[slot] = rejected[position]
        elif c.is_envelope(value):
            items = value[c.ENVELOPE_FIELD]
            if type(items) is not list:
                rejections[slot] = c.RECORDS_NOT_A_LIST
            elif not items:
                # Zero documents would let the event vanish without a trace.
                rejections[slot] = c.EMPTY_ENVELOPE
            elif len(items) > limits.max_records:
                rejections[slot] = limits.too_many_records()
            else:
                records += items
                events += repeat(position, len(items))
                indices += range(len(items))
                continue
            value = None
        records.append(value)
        events.append(position)
        indices.append(None)
    return _Slots(records, rejections, events, indices)


def _rejected_documents(
    batch: EventBatch, slots: _Slots, rejections: dict[int, c.Rejection], now: str, model_version: str | None
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


def _scored_documents(
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


def _behaviour(
    valid: ValidBatch, history: History | None, now: str, write_state: bool
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """(features per accepted record, profile documents to write)."""
    if history is None:
        return behaviour.no_history(valid.numbers), []
    payments = behaviour.Payments.of(
        valid.ids, valid.account_ids, behaviour.timestamps_ms(valid.timestamps), valid.numbers
    )
    accounts = list(dict.fromkeys(valid.account_ids))
    try:
        states = history.states(accounts)
    except HistoryUnavailableError:
        logger.exception("account history unavailable: %d payments scored with history unknown", len(valid.ids))
        return behaviour.no_history(valid.numbers), []
    features, new_states = behaviour.score_batch_features(payments, states)
    profiles = [profile_document(a, state, now) for a, state in new_states.items()] if write_state else []
    return features, profiles


def score_batch(
    batch: EventBatch,
    model: FraudModel,
    now: datetime | None = None,
    limits: c.EnvelopeLimits = DEFAULT_LIMITS,
    history: History | None = None,
    write_state: bool = True,
) -> BatchResult:
    """Score a whole batch in one matrix; set aside every record (or envelope) that breaks the contract.

    With a `history`, each payment's behavioural features come from its account's stored state and
    the new states are returned as profile documents (unless `write_state` is False: a query such as
    POST /api/score reads history but adds nothing to it). Without one, history is unknown.
    """
    stamp = utc_iso(now or datetime.now(UTC))
    slots = _decode(batch.bodies, limits)
    valid = validate_batch(slots.records, slots.rejections)
    rejected = _rejected_documents(batch, slots, valid.rejections, stamp, model.version)
    if not valid.positions:
        return BatchResult(rejected=rejected)

    features, profiles = _behaviour(valid, history, stamp, write_state)
    x = encode({**valid.numbers, **behaviour_columns(features)}, model.spec)
    probabilities = model.predict_proba(x)
    # Compared in float64, as `probability >= threshold` reads on the stored document.
    flagged = probabilities.astype(np.float64) >= model.threshold
    flagged_list = flagged.tolist()
    docs = _scored_documents(valid, batch, slots.events, probabilities.tolist(), flagged_list, model, stamp)
    flagged_rows = np.flatnonzero(flagged)
    explained = reason_lists(model.contributions(x[flagged_rows])) if flagged_rows.size else []
    # The features each payment was scored with, on its document: what an analyst (or a replay
    # check) reads back. Reasons go in last: a document holding a list or dict is tracked by the
    # garbage collector, and every collection triggered before this point would walk them all.
    names = behaviour.FEATURES
    rows = features.tolist()
    next_reasons = iter(explained).__next__
    for doc, is_flagged, row in zip(docs, flagged_list, rows, strict=True):
        values = dict(zip(names, row, strict=True))
        doc["behaviour"] = values
        if is_flagged:
            reasons = next_reasons()
            for reason in reasons:
                reason["text"] = behaviour.describe(reason["field"], values, doc)
            doc["reasons"] = reasons
        else:
            doc["reasons"] = []
    return BatchResult(scored=docs, rejected=rejected, flagged=len(explained), profiles=profiles)


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


def reject_all(
    batch: EventBatch, rejection: c.Rejection, now: datetime | None = None, limits: c.EnvelopeLimits = DEFAULT_LIMITS
) -> BatchResult:
    """Record a whole batch as rejected (the model is unusable), so every record is kept for re-driving.

    Envelopes are opened first: one document for a 500-record envelope would keep only the first
    16 KiB of its raw body. A slot already at fault keeps its own reason.
    """
    stamp = utc_iso(now or datetime.now(UTC))
    slots = _decode(batch.bodies, limits)
    reasons = {slot: slots.rejections.get(slot, rejection) for slot in range(len(slots.records))}
    return BatchResult(rejected=_rejected_documents(batch, slots, reasons, stamp, None))
