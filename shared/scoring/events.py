"""A delivery as the scorer reads it: its events, the limits of one invocation, and its records as slots.

Positions are *slots*: one per bare event, one per record of a usable envelope, one per envelope
rejected as a whole. Without envelopes, slot i is event i and nothing is remapped. Past
`Limits.max_transactions`, events are rejected whole and their decoded values dropped at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from typing import Any, Final

import orjson

from shared.contract import schema as c
from shared.settings import Settings

logger = logging.getLogger(__name__)

_INVALID_JSON: Final = c.Rejection("body", "invalid_json", "not a UTF-8 JSON document")


DEFAULT_LIMITS: Final = c.EnvelopeLimits()


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


@dataclass(frozen=True, slots=True)
class Slots:
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


def decode(bodies: Sequence[bytes], limits: Limits) -> Slots:
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
        return Slots(values, rejected)
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


def _flatten(values: list[Any], rejected: dict[int, c.Rejection], limits: c.EnvelopeLimits) -> Slots:
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
    return Slots(records, rejections, events, indices)
