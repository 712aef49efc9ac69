"""Scoring one Event Hubs batch: decode, validate, encode, predict, explain, and shape documents.

Every transaction that enters leaves as exactly one document: a scored one (id = transaction id, so
a replayed batch overwrites in Cosmos DB instead of duplicating) or a rejected one that names the
field, a stable reason code and keeps the raw body for re-driving. An event is one transaction or
an envelope of many (`shared.contract.schema`); an envelope's records are flattened into the same batch
columns, each judged on its own, and an envelope that is itself at fault is one rejected document.
Nothing here raises for bad input, and `functions/score.py` turns anything unforeseen into
`internal_error` rejections: the Functions host moves the checkpoint past a batch whose retries are
spent, so an exception must never be how a batch ends, except `StateWriteError` (see below).

Each payment is scored with its account's behaviour (shared/behaviour/features.py): the accounts' stored
states are read once per batch from a `StateStore` (shared/behaviour/store.py), the features come from the
payments strictly before each one in event time, and the accounts' new states are written back
conditionally before the documents go out (a conflict with another batch re-runs this part). If the
store cannot be read, the batch is scored with history unknown, every document says so
(`account_history: "unavailable"`), and no state is written. If the states cannot be written,
`StateWriteError` fails the invocation so the trigger's retry policy runs it again. A payment dated
too far from its enqueued time (`Limits`) or reusing a stored id with other content is rejected.

The batch moves as columns, so per-event Python stays at what cannot be shared: one JSON decode per
event, then `shared.contract.batch` checks each field for the whole batch (with `contract.validate`'s
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
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import compress, repeat
from typing import Any, Final

import numpy as np
import orjson

from shared.behaviour import features as behaviour
from shared.behaviour.store import RateLimitedWarning, StateConflictError, StateStore, StateUnavailableError
from shared.contract import schema as c
from shared.contract.batch import ValidBatch, validate_batch
from shared.scoring.encoding import behaviour_columns, encode
from shared.scoring.model import FraudModel, ranked
from shared.settings import Settings

logger = logging.getLogger(__name__)

RAW_BODY_LIMIT: Final = 1_048_576
"""Raw bodies up to this size (the largest event Event Hubs Standard and Premium accept) are kept whole
in rejected documents, so every rejected event can be re-driven (tools/redrive.py). A body is kept as
text when its JSON-escaped form stays under `RAW_TEXT_LIMIT`, else as base64 (at most 1.4 MB): either
way the document stays under Cosmos DB's 2 MB item limit. Only a body larger than this (possible only
from a producer that bypasses Event Hubs) is cut, with `raw_body_truncated` set."""
RAW_TEXT_LIMIT: Final = 1_500_000
CONTRIBUTION_ROWS: Final = 4096
"""Flagged rows explained per call: bounds the SHAP computation's memory, not its cost per row."""
STATE_ATTEMPTS: Final = 20
"""Reads and conditional writes of a batch's account states before giving up (`StateConflictError`, which
fails the invocation for its retry policy: nothing is lost even then)."""

_INVALID_JSON: Final = c.Rejection("body", "invalid_json", "not a UTF-8 JSON document")
ID_CONFLICT: Final = c.Rejection(
    c.ID_FIELD,
    "id_conflict",
    "this account already has a payment with this id and different content (checked against its stored state)",
)
TOO_LATE: Final = "too_late"
TOO_EARLY: Final = "too_early"
DEFAULT_LIMITS: Final = c.EnvelopeLimits()

state_unavailable = RateLimitedWarning(
    "%d payments scored with account history unknown: the state store could not be read (%s)"
)
"""Payments scored without their history since the process started (`total`); documents say `unavailable`."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one invocation accepts, from the settings: envelope sizes, transactions, event-time bounds."""

    envelope: c.EnvelopeLimits = DEFAULT_LIMITS
    max_transactions: int = 50_000
    max_late_ms: int = 720 * 3_600_000
    max_early_ms: int = 8784 * 3_600_000

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            envelope=c.EnvelopeLimits(settings.max_event_bytes, settings.max_records_per_envelope),
            max_transactions=settings.max_transactions_per_invocation,
            max_late_ms=settings.event_time_max_late_hours * 3_600_000,
            max_early_ms=settings.event_time_max_early_hours * 3_600_000,
        )

    def invocation_limit(self) -> c.Rejection:
        return c.Rejection(
            "body",
            "invocation_limit",
            f"the invocation already holds {self.max_transactions} transactions (MAX_TRANSACTIONS_PER_INVOCATION): "
            "re-drive this event",
        )


DEFAULT_BATCH_LIMITS: Final = Limits()


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


def _transactions_in(value: object) -> int:
    if c.is_envelope(value):
        assert isinstance(value, dict)
        items = value[c.ENVELOPE_FIELD]
        return len(items) if type(items) is list else 1
    return 1


def _decode(bodies: Sequence[bytes], limits: Limits) -> _Slots:
    """Decode each body once; flatten envelopes' records into slots; reject what cannot be a record.

    Past `limits.max_transactions` transactions, an event is rejected whole as `invocation_limit` and
    its decoded value dropped at once, so an invocation holds at most that many records in memory.
    """
    values: list[Any] = []
    rejected: dict[int, c.Rejection] = {}
    append, loads = values.append, orjson.loads
    small = min(c.MAX_TRANSACTION_BYTES, limits.envelope.max_event_bytes)
    envelopes = 0
    transactions = 0
    budget = limits.max_transactions
    for position, body in enumerate(bodies):
        if len(body) > small:
            envelopes += _decode_large(body, position, limits.envelope, values, rejected)
        else:
            try:
                values.append(loads(body))
            except orjson.JSONDecodeError:
                rejected[position] = _INVALID_JSON
                append(None)
                continue
            if c.is_envelope(values[-1]):
                envelopes += 1
        if position in rejected:
            continue
        held = _transactions_in(values[-1])
        if transactions + held > budget:
            values[-1] = None
            rejected[position] = limits.invocation_limit()
            continue
        transactions += held
    if not envelopes:
        return _Slots(values, rejected)
    return _flatten(values, rejected, limits.envelope)


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
            if len(value) != 1:
                rejections[slot] = c.INVALID_ENVELOPE
            elif type(items) is not list:
                rejections[slot] = c.RECORDS_NOT_A_LIST
            elif not items:
                # Zero documents would let the event vanish without a trace.
                rejections[slot] = c.EMPTY_ENVELOPE
            elif len(items) > limits.max_records:
                rejections[slot] = limits.too_many_records()
            else:
                # A record holding `records` is refused as the same object would be as a bare event.
                nested = [i for i, item in enumerate(items) if type(item) is dict and c.ENVELOPE_FIELD in item]
                for i in nested:
                    rejections[slot + i] = c.INVALID_ENVELOPE
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


def _drop(valid: ValidBatch, rows: Mapping[int, c.Rejection]) -> ValidBatch:
    """`valid` without the accepted `rows` (indexes into its columns), each now rejected with its reason."""
    if not rows:
        return valid
    keep = [i not in rows for i in range(len(valid.positions))]
    mask = np.array(keep, dtype=bool)
    rejections = dict(valid.rejections)
    for row, rejection in rows.items():
        rejections[valid.positions[row]] = rejection

    def select(values: Sequence[Any]) -> list[Any]:
        return list(compress(values, keep))

    return ValidBatch(
        positions=select(valid.positions),
        records=select(valid.records),
        ids=select(valid.ids),
        timestamps=select(valid.timestamps),
        account_ids=select(valid.account_ids),
        numbers={name: column[mask] for name, column in valid.numbers.items()},
        labels=select(valid.labels),
        canonical=valid.canonical,
        rejections=rejections,
    )


def _enqueued_ms(moment: datetime | None) -> float:
    if moment is None:
        return math.nan
    if moment.tzinfo is None:  # the host's zone-less enqueued times are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() * 1000.0


def _event_time_faults(
    valid: ValidBatch, t_ms: np.ndarray, batch: EventBatch, slots: _Slots, limits: Limits
) -> dict[int, c.Rejection]:
    """Rows dated too long before or after their event's enqueued time (no check without one)."""
    if not valid.positions:
        return {}
    per_event = [_enqueued_ms(m) for m in batch.enqueued_times]
    enqueued = np.array([per_event[slots.event(slot)] for slot in valid.positions], dtype=np.float64)
    t = t_ms.astype(np.float64)
    late = t < enqueued - limits.max_late_ms
    early = t > enqueued + limits.max_early_ms
    faults: dict[int, c.Rejection] = {}
    if late.any():
        hours = limits.max_late_ms // 3_600_000
        rejection = c.Rejection(
            c.TIMESTAMP_FIELD,
            TOO_LATE,
            f"more than {hours} h before the event was enqueued (EVENT_TIME_MAX_LATE_HOURS)",
        )
        faults.update(dict.fromkeys(np.flatnonzero(late).tolist(), rejection))
    if early.any():
        hours = limits.max_early_ms // 3_600_000
        rejection = c.Rejection(
            c.TIMESTAMP_FIELD,
            TOO_EARLY,
            f"more than {hours} h after the event was enqueued (EVENT_TIME_MAX_EARLY_HOURS)",
        )
        faults.update(dict.fromkeys(np.flatnonzero(early).tolist(), rejection))
    return faults


def _id_conflicts(
    valid: ValidBatch, t_ms: np.ndarray, states: Mapping[str, Mapping[str, Any]]
) -> dict[int, c.Rejection]:
    """Rows whose (account, id) the account's stored state holds with other content: a reused id, not a redelivery.

    Detected as far back as the state reaches (its last `behaviour.STATE_LIMIT` payments or more);
    an id reused after its payment left the state, or across accounts, is not seen here.
    """
    if not states:
        return {}
    conflicts: dict[int, c.Rejection] = {}
    index: dict[str, dict[str, int]] = {}
    numbers = valid.numbers
    fields = ("amount", "old_balance", *behaviour.PAYMENT_FIELDS[2:])
    for row, (account, payment) in enumerate(zip(valid.account_ids, valid.ids, strict=True)):
        state = states.get(account)
        if state is None:
            continue
        ids = index.get(account)
        if ids is None:
            ids = index[account] = {value: j for j, value in enumerate(state["id"])}
        j = ids.get(payment)
        if j is None:
            continue
        if state["t_ms"][j] != int(t_ms[row]) or any(state[f][j] != numbers[f][row] for f in fields):
            conflicts[row] = ID_CONFLICT
    return conflicts


def _behaviour(
    valid: ValidBatch, t_ms: np.ndarray, store: StateStore | None, now: str, write_state: bool
) -> tuple[np.ndarray, ValidBatch, str]:
    """(features per accepted record, the accepted records, `account_history`: read / unavailable / off).

    Reads the accounts' states, sets aside payments whose id conflicts with a stored one, computes
    the features and writes the new states conditionally; when another batch changed one of the
    accounts in between, all of it runs again on fresh states (`shared/behaviour/store.py`).
    """
    if store is None:
        return behaviour.no_history(valid.numbers), valid, "off"
    for attempt in range(STATE_ATTEMPTS):
        try:
            snapshot = store.read(list(dict.fromkeys(valid.account_ids)))
        except StateUnavailableError as exc:
            state_unavailable.note(len(valid.ids), str(exc))
            return behaviour.no_history(valid.numbers), valid, "unavailable"
        conflicts = _id_conflicts(valid, t_ms, snapshot.states)
        if conflicts:
            t_ms = t_ms[[i not in conflicts for i in range(t_ms.size)]]
            valid = _drop(valid, conflicts)
        payments = behaviour.Payments.of(valid.ids, valid.account_ids, t_ms, valid.numbers)
        features, new_states = behaviour.score_batch_features(payments, snapshot.states)
        if not write_state or not store.write(new_states, snapshot, now):
            return features, valid, "read"
        # Another batch won some accounts: back off a little (jittered, so two losers do not collide again).
        time.sleep(random.uniform(0.0, min(0.1, 0.002 * 2**attempt)))
    raise StateConflictError(f"account states kept changing under this batch for {STATE_ATTEMPTS} attempts")


def score_batch(
    batch: EventBatch,
    model: FraudModel,
    now: datetime | None = None,
    limits: Limits = DEFAULT_BATCH_LIMITS,
    store: StateStore | None = None,
    write_state: bool = True,
) -> BatchResult:
    """Score a whole batch in one matrix; set aside every record (or envelope) that breaks the contract.

    With a `store`, each payment's behavioural features come from its account's stored state and
    the new states are written back to it (unless `write_state` is False: a query such as
    POST /api/score reads history but adds nothing to it). Without one, history is unknown.
    Raises only `StateWriteError` (the states could not be written: the caller fails the
    invocation so that it is retried); any other exception is a bug for the caller's boundary.
    """
    stamp = utc_iso(now or datetime.now(UTC))
    slots = _decode(batch.bodies, limits)
    valid = validate_batch(slots.records, slots.rejections)
    t_ms = behaviour.timestamps_ms(valid.timestamps)
    faults = _event_time_faults(valid, t_ms, batch, slots, limits)
    if faults:
        t_ms = t_ms[[i not in faults for i in range(t_ms.size)]]
        valid = _drop(valid, faults)
    if not valid.positions:
        return BatchResult(rejected=_rejected_documents(batch, slots, valid.rejections, stamp, model.version))

    features, valid, account_history = _behaviour(valid, t_ms, store, stamp, write_state)
    rejected = _rejected_documents(batch, slots, valid.rejections, stamp, model.version)
    if not valid.positions:
        return BatchResult(rejected=rejected)
    x = encode({**valid.numbers, **behaviour_columns(features)}, model.spec)
    probabilities = model.predict_proba(x)
    # Compared in float64, as `probability >= threshold` reads on the stored document.
    flagged = probabilities.astype(np.float64) >= model.threshold
    flagged_list = flagged.tolist()
    docs = _scored_documents(valid, batch, slots.events, probabilities.tolist(), flagged_list, model, stamp)
    flagged_rows = np.flatnonzero(flagged)
    # In pieces: the SHAP tables build a (trees x rows x fields) float64 array, 911 MB for 50,000
    # flagged rows at once (benchmarks/bench_memory.py); pieces keep it to ~75 MB whatever the batch.
    explained = [
        reasons
        for start in range(0, flagged_rows.size, CONTRIBUTION_ROWS)
        for reasons in reason_lists(model.contributions(x[flagged_rows[start : start + CONTRIBUTION_ROWS]]))
    ]
    # The features each payment was scored with, on its document: what an analyst (or a replay
    # check) reads back. Reasons go in last: a document holding a list or dict is tracked by the
    # garbage collector, and every collection triggered before this point would walk them all.
    names = behaviour.FEATURES
    rows = features.tolist()
    next_reasons = iter(explained).__next__
    for doc, is_flagged, row in zip(docs, flagged_list, rows, strict=True):
        values = dict(zip(names, row, strict=True))
        doc["account_history"] = account_history
        doc["behaviour"] = values
        if is_flagged:
            reasons = next_reasons()
            for reason in reasons:
                reason["text"] = behaviour.describe(reason["field"], values, doc)
            doc["reasons"] = reasons
        else:
            doc["reasons"] = []
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


def reject_all(
    batch: EventBatch, rejection: c.Rejection, now: datetime | None = None, limits: Limits = DEFAULT_BATCH_LIMITS
) -> BatchResult:
    """Record a whole batch as rejected (the model is unusable), so every record is kept for re-driving.

    Envelopes are opened first, so each record can be re-driven on its own. A slot already at
    fault keeps its own reason.
    """
    stamp = utc_iso(now or datetime.now(UTC))
    slots = _decode(batch.bodies, limits)
    reasons = {slot: slots.rejections.get(slot, rejection) for slot in range(len(slots.records))}
    return BatchResult(rejected=_rejected_documents(batch, slots, reasons, stamp, None))


INTERNAL_ERROR: Final = c.Rejection(
    "body", "internal_error", "scoring failed on this batch; see the logs, then re-drive"
)


def reject_events(
    batch: EventBatch, rejection: c.Rejection = INTERNAL_ERROR, now: datetime | None = None
) -> BatchResult:
    """Every event of the batch as one rejected document with its whole raw body, decoding nothing.

    The last resort when scoring itself failed: nothing here parses the bodies, so nothing that made
    scoring fail can make this fail too.
    """
    stamp = utc_iso(now or datetime.now(UTC))
    return BatchResult(rejected=[rejected_document(batch, i, rejection, stamp) for i in range(len(batch))])
