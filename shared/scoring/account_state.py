"""Each batch's accounts: event time against enqueued time, reused ids, and the conditional read-score-write of states.

The accounts' states are read once per batch, payments whose id the state holds with other content
are set aside, the features computed, the changed states written conditionally; when another batch
changed an account in between, all of it runs again on fresh states (shared/behaviour/store.py).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import compress
from typing import Any, Final

import numpy as np

from shared.behaviour import features as behaviour
from shared.behaviour import state_codec
from shared.behaviour.store import RateLimitedWarning, StateConflictError, StateStore, StateUnavailableError
from shared.contract import schema as c
from shared.contract.batch import ValidBatch
from shared.scoring.events import EventBatch, Limits, Slots

logger = logging.getLogger(__name__)

STATE_ATTEMPTS: Final = 20
"""Reads and conditional writes of a batch's account states before giving up (`StateConflictError`, which
fails the invocation for its retry policy: nothing is lost even then)."""


ID_CONFLICT: Final = c.Rejection(
    c.ID_FIELD,
    "id_conflict",
    "this account already has a payment with this id and different content (checked against its stored state)",
)
TOO_LATE: Final = "too_late"
TOO_EARLY: Final = "too_early"


state_unavailable = RateLimitedWarning(
    "%d payments scored with account history unknown: the state store could not be read (%s)"
)
"""Payments scored without their history since the process started (`total`); documents say `unavailable`."""


def drop(valid: ValidBatch, rows: Mapping[int, c.Rejection]) -> ValidBatch:
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
        merchant_ids=select(valid.merchant_ids),
        canonical=valid.canonical,
        rejections=rejections,
    )


def _enqueued_ms(moment: datetime | None) -> float:
    if moment is None:
        return math.nan
    if moment.tzinfo is None:  # the host's zone-less enqueued times are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() * 1000.0


def event_time_faults(
    valid: ValidBatch, t_ms: np.ndarray, batch: EventBatch, slots: Slots, limits: Limits
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


def features_with_state(
    valid: ValidBatch, t_ms: np.ndarray, store: StateStore | None, now: str, write_state: bool
) -> tuple[np.ndarray, ValidBatch, np.ndarray, str]:
    """(features per accepted record, the accepted records, their event times, `account_history`).

    `account_history` is read, unavailable or off.

    Reads the accounts' states, sets aside payments whose id conflicts with a stored one, computes
    the features and writes the new states conditionally; when another batch changed one of the
    accounts in between, all of it runs again on fresh states (`shared/behaviour/store.py`).
    """
    if store is None:
        return behaviour.no_history(valid.numbers), valid, t_ms, "off"
    hashes = state_codec.id_hashes(valid.ids)
    for attempt in range(STATE_ATTEMPTS):
        try:
            snapshot = store.read(list(dict.fromkeys(valid.account_ids)))
        except StateUnavailableError as exc:
            state_unavailable.note(len(valid.ids), str(exc))
            return behaviour.no_history(valid.numbers), valid, t_ms, "unavailable"
        payments = behaviour.Payments.of(valid.ids, valid.account_ids, t_ms, valid.numbers)
        reused = behaviour.id_conflicts(payments, snapshot.states, hashes)
        if reused.any():
            # A reused id (the stored payment of that id differs): set aside with its reason, the rest go on.
            keep = ~reused
            valid = drop(valid, dict.fromkeys(np.flatnonzero(reused).tolist(), ID_CONFLICT))
            t_ms, hashes, payments = t_ms[keep], hashes[keep], payments.take(np.flatnonzero(keep))
        features, new_states = behaviour.score_batch_features(payments, snapshot.states, hashes)
        # Only accounts the batch added a payment to: a redelivered batch writes nothing.
        if not write_state or not new_states or not store.write(new_states, snapshot, now):
            return features, valid, t_ms, "read"
        # Another batch won some accounts: back off a little (jittered, so two losers do not collide again).
        time.sleep(random.uniform(0.0, min(0.1, 0.002 * 2**attempt)))
    raise StateConflictError(f"account states kept changing under this batch for {STATE_ATTEMPTS} attempts")
