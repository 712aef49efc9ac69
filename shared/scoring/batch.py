"""Scoring one Event Hubs batch: decode, validate, check event time and account state, encode, predict, explain.

Every transaction that enters leaves as exactly one document: a scored one or a rejected one that
names the field, a stable reason code and keeps the raw body for re-driving. The steps live where
their job does: `events` (the delivery as slots, the invocation's limits), `shared.contract.batch`
(the contract for the whole batch at once), `account_state` (event-time bounds, reused ids, the
conditional read-score-write of states), `encoding` and `model` (one float32 matrix, one predict
call, SHAP for the flagged rows only), `documents` (scored and rejected documents). Nothing here
raises for bad input, and `functions/score.py` turns anything unforeseen into `internal_error`
rejections: the Functions host moves the checkpoint past a batch whose retries are spent, so an
exception must never be how a batch ends, except `StateWriteError` (the states could not be
written: the trigger's retry policy runs the batch again).

The batch moves as columns, so per-event Python stays at what cannot be shared: one JSON decode per
event, then column checks, one matrix. When every record carries exactly the contract's fields
(the usual case), a record's own decoded object becomes its document, so no field is copied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from shared.behaviour import features as behaviour
from shared.behaviour.store import StateStore
from shared.contract import schema as c
from shared.contract.batch import validate_batch
from shared.scoring.account_state import drop, event_time_faults, features_with_state
from shared.scoring.documents import reason_lists, rejected_document, rejected_documents, scored_documents, utc_iso
from shared.scoring.encoding import CONTEXT_FEATURES, behaviour_columns, encode, merchant_columns
from shared.scoring.events import DEFAULT_BATCH_LIMITS, EventBatch, Limits, decode
from shared.scoring.merchant_risk import MerchantReader, merchant_features
from shared.scoring.model import FraudModel

logger = logging.getLogger(__name__)

CONTRIBUTION_ROWS: Final = 4096
"""Flagged rows explained per call: bounds the SHAP computation's memory, not its cost per row."""


@dataclass
class BatchResult:
    """Documents to write: one per input event, split by destination container."""

    scored: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    flagged: int = 0


def score_batch(
    batch: EventBatch,
    model: FraudModel,
    now: datetime | None = None,
    limits: Limits = DEFAULT_BATCH_LIMITS,
    store: StateStore | None = None,
    write_state: bool = True,
    merchant_store: MerchantReader | None = None,
) -> BatchResult:
    """Score a whole batch in one matrix; set aside every record (or envelope) that breaks the contract.

    With a `store`, each payment's behavioural features come from its account's stored state and
    the new states are written back to it (unless `write_state` is False: a query such as
    POST /api/score reads history but adds nothing to it). Without one, history is unknown.
    Raises only `StateWriteError` (the states could not be written: the caller fails the
    invocation so that it is retried); any other exception is a bug for the caller's boundary.
    """
    stamp = utc_iso(now or datetime.now(UTC))
    slots = decode(batch.bodies, limits)
    valid = validate_batch(slots.records, slots.rejections)
    t_ms = behaviour.timestamps_ms(valid.timestamps)
    faults = event_time_faults(valid, t_ms, batch, slots, limits)
    if faults:
        t_ms = t_ms[[i not in faults for i in range(t_ms.size)]]
        valid = drop(valid, faults)
    if not valid.positions:
        return BatchResult(rejected=rejected_documents(batch, slots, valid.rejections, stamp, model.version))

    features, valid, t_ms, account_history = features_with_state(valid, t_ms, store, stamp, write_state)
    rejected = rejected_documents(batch, slots, valid.rejections, stamp, model.version)
    if not valid.positions:
        return BatchResult(rejected=rejected)
    risk, merchant_history = merchant_features(valid.merchant_ids, t_ms, merchant_store, model.merchant_delay_days)
    x = encode({**valid.numbers, **behaviour_columns(features), **merchant_columns(risk)}, model.spec)
    probabilities = model.predict_proba(x)
    # Compared in float64, as `probability >= threshold` reads on the stored document.
    flagged = probabilities.astype(np.float64) >= model.threshold
    flagged_list = flagged.tolist()
    docs = scored_documents(valid, batch, slots.events, probabilities.tolist(), flagged_list, model, stamp)
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
    names = CONTEXT_FEATURES
    rows = np.hstack([features, risk]).tolist()
    next_reasons = iter(explained).__next__
    delay = model.merchant_delay_days
    for doc, is_flagged, row in zip(docs, flagged_list, rows, strict=True):
        values = dict(zip(names, row, strict=True))
        doc["account_history"] = account_history
        doc["merchant_history"] = merchant_history
        doc["behaviour"] = values
        if is_flagged:
            reasons = next_reasons()
            for reason in reasons:
                reason["text"] = behaviour.describe(reason["field"], values, doc, delay)
            doc["reasons"] = reasons
        else:
            doc["reasons"] = []
    return BatchResult(scored=docs, rejected=rejected, flagged=len(explained))


def reject_all(
    batch: EventBatch, rejection: c.Rejection, now: datetime | None = None, limits: Limits = DEFAULT_BATCH_LIMITS
) -> BatchResult:
    """Record a whole batch as rejected (the model is unusable), so every record is kept for re-driving.

    Envelopes are opened first, so each record can be re-driven on its own. A slot already at
    fault keeps its own reason.
    """
    stamp = utc_iso(now or datetime.now(UTC))
    slots = decode(batch.bodies, limits)
    reasons = {slot: slots.rejections.get(slot, rejection) for slot in range(len(slots.records))}
    return BatchResult(rejected=rejected_documents(batch, slots, reasons, stamp, None))


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
