"""POST /api/labels without the host: each label judged, the valid ones created in the store, the rest set aside.

Every label of a request ends in exactly one place: stored (new), a duplicate (its transaction's
stored label says the same: a retry, fine), rejected (its fault named in the answer, and the
label kept whole in the `rejected` container with `kind: "label"` so it can be fixed and sent
again), or unconfirmed (the store did not confirm the write: the answer is 503 and names them, and
sending them again is safe because a stored label is never changed).

Labels repeating a transaction id within one request are judged against the first valid one, so
the outcome does not depend on which write the store happened to take first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from shared.contract import schema as c
from shared.contract import timestamps
from shared.labels import contract
from shared.labels.store import LabelStore, Outcome, Written
from shared.scoring.documents import rejected_document, rejected_record_document, utc_iso
from shared.scoring.events import EventBatch

RETRY_AFTER_S: Final = 30
"""Seconds a caller is asked to wait after the store did not confirm some labels."""


@dataclass
class Result:
    """A request's labels by outcome (indexes into the request's records)."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, c.Rejection]] = field(default_factory=list)
    unconfirmed: list[int] = field(default_factory=list)
    rejected_documents: list[dict[str, Any]] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        """The response body: counts, and each rejected label's index, field, reason and detail."""
        body: dict[str, Any] = {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": [
                {"index": i, "field": r.field, "reason": r.reason, "detail": r.detail} for i, r in self.rejected
            ],
        }
        if self.unconfirmed:
            body["unconfirmed"] = self.unconfirmed
        return body


def _outcome_of_repeat(first: Written, fraud: bool) -> Written:
    """A later label of the same transaction, judged against what the store holds after the first."""
    if first.outcome is Outcome.UNCONFIRMED:
        return first
    same = type(first.stored_fraud) is bool and first.stored_fraud == fraud
    return Written(Outcome.DUPLICATE if same else Outcome.CONFLICT, first.stored_fraud)


def record(
    records: Sequence[Any], body: bytes, enveloped: bool, store: LabelStore, now: datetime, max_early_ms: int
) -> Result:
    """Judge, store and account for every record of one request (`contract.parse`'s output)."""
    stamp = utc_iso(now)
    now_ms = timestamps.parse_ms(stamp)
    result = Result()
    batch = EventBatch.of_bodies([body])

    def reject(index: int, rejection: c.Rejection) -> None:
        result.rejected.append((index, rejection))
        if enveloped:
            doc = rejected_record_document(batch, 0, index, records[index], rejection, stamp)
        else:
            doc = rejected_document(batch, 0, rejection, stamp)
        doc["kind"] = contract.KIND
        result.rejected_documents.append(doc)

    labels: dict[int, contract.Label] = {}
    for index, raw in enumerate(records):
        try:
            labels[index] = contract.validate(raw, now_ms, max_early_ms)
        except contract.InvalidLabelError as exc:
            reject(index, exc.rejection)
    _store(labels, store, lambda label: contract.document(label, now), result, reject)
    return result


def record_history(records: Iterable[tuple[int, Any]], store: LabelStore, now: datetime, max_early_ms: int) -> Result:
    """Judge and store labels of the past (an operator's import): each known from its own `known_at`.

    Judged as `record` judges a request's labels (`contract.validate`, the same settings), plus one
    rule of the import's own: `known_at` must not be after `now`, since a known day still to come is
    what the HTTP path is for. Stored with the same create-once semantics, so importing a file twice
    stores each label once. Unlike `record`, a label's known day is its `known_at`'s, not the
    recording's: it reaches back into past days, which is only safe before any payment of those
    days was scored (tools/import_labels.py says when). Each record comes with its index (a file's
    line number), which the result uses; nothing goes to a `rejected` container.
    """
    now_ms = timestamps.parse_ms(utc_iso(now))
    result = Result()

    def reject(index: int, rejection: c.Rejection) -> None:
        result.rejected.append((index, rejection))

    labels: dict[int, contract.Label] = {}
    for index, raw in records:
        try:
            label = contract.validate(raw, now_ms, max_early_ms)
        except contract.InvalidLabelError as exc:
            reject(index, exc.rejection)
            continue
        if label.known_ms > now_ms:
            reject(index, contract.known_later(label))
            continue
        labels[index] = label
    _store(labels, store, contract.history_document_at(now), result, reject)
    return result


def _store(
    labels: Mapping[int, contract.Label],
    store: LabelStore,
    document: Callable[[contract.Label], dict[str, Any]],
    result: Result,
    reject: Callable[[int, c.Rejection], None],
) -> None:
    """Create the valid labels once per transaction and account for each (repeats judged against the first)."""
    first_of: dict[str, int] = {}
    for index, label in labels.items():
        first_of.setdefault(label.transaction_id, index)
    firsts = sorted(first_of.values())
    written = dict(zip(firsts, store.create([document(labels[i]) for i in firsts]), strict=True))
    for index, label in labels.items():
        first = first_of[label.transaction_id]
        outcome = written[index] if index == first else _outcome_of_repeat(written[first], label.fraud)
        if outcome.outcome is Outcome.STORED:
            result.stored += 1
        elif outcome.outcome is Outcome.DUPLICATE:
            result.duplicates += 1
        elif outcome.outcome is Outcome.CONFLICT:
            reject(index, contract.conflict(outcome.stored_fraud))
        else:
            result.unconfirmed.append(index)
    result.rejected.sort(key=lambda pair: pair[0])
