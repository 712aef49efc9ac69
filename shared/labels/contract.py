"""The label contract: a confirmed outcome of one transaction, its request forms, and the document it is stored as.

A label is one JSON object:

    {"transaction_id": "tx-000123", "fraud": true, "known_at": "2026-11-28T09:30:00Z",
     "merchant_id": "merch-00123", "account_id": "acct-000042", "source": "chargeback"}

- `transaction_id`: the labelled transaction's id, by the contract's id rules (`schema._check_id`),
  and the stored label's id: one label per transaction, final once stored.
- `fraud`: `true` or `false`, JSON booleans only (0 and 1 are refused: an outcome is not a count).
- `known_at`: when the outcome became known, a contract timestamp (`timestamps.FORM`); later than
  EVENT_TIME_MAX_EARLY_HOURS after the server's clock is `too_early`.
- `merchant_id`, `account_id`: optional ids (absent or null: unknown); a label without a merchant is
  stored but feeds no merchant state.
- `source`: optional, one of `SOURCES`.

Any other key is refused (`unknown_field`): a misspelt `known_at` must not pass as a label with
none. A request body is one label or an envelope `{"records": [label, ...]}`, judged with the
transaction contract's envelope rules and reason codes (`schema.ENVELOPE_REJECTIONS`).

A label's known time is the later of `known_at` and the moment the app recorded it: a label sent
late never reaches back into days whose payments were already scored, so merchant features stay a
pure function of what was known when (`shared/behaviour/merchants.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from shared.behaviour import days
from shared.contract import schema as c
from shared.contract import timestamps
from shared.scoring.documents import utc_iso
from shared.scoring.request import RequestError

TRANSACTION_ID_FIELD: Final = "transaction_id"
FRAUD_FIELD: Final = "fraud"
KNOWN_AT_FIELD: Final = "known_at"
MERCHANT_FIELD: Final = c.MERCHANT_FIELD
ACCOUNT_FIELD: Final = c.ACCOUNT_FIELD
SOURCE_FIELD: Final = "source"
SOURCES: Final = ("chargeback", "analyst", "customer", "other")
FIELDS: Final = (TRANSACTION_ID_FIELD, FRAUD_FIELD, KNOWN_AT_FIELD, MERCHANT_FIELD, ACCOUNT_FIELD, SOURCE_FIELD)
"""Every key a label may hold, in the order they are checked."""
KIND: Final = "label"
"""`kind` of a label's rejected document, which the scorer's rejected documents do not carry."""
_SHOWN_KEY: Final = 64
"""Characters of an unknown key quoted as the rejection's field."""

LABEL_CONFLICT: Final = "label_conflict"
TOO_EARLY: Final = "too_early"
KNOWN_LATER: Final = "known_later"
"""An imported label's `known_at` is after the import (`intake.record_history`)."""


class InvalidLabelError(ValueError):
    """Raised by `validate` with the first `Rejection` found."""

    def __init__(self, rejection: c.Rejection) -> None:
        super().__init__(f"{rejection.field}: {rejection.reason} ({rejection.detail})")
        self.rejection = rejection


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may carry and how far ahead `known_at` may be (from the settings)."""

    max_body_bytes: int = c.DEFAULT_MAX_EVENT_BYTES
    max_records: int = c.DEFAULT_MAX_RECORDS
    max_early_ms: int = 8784 * 3_600_000


@dataclass(frozen=True, slots=True)
class Label:
    """A validated label."""

    transaction_id: str
    fraud: bool
    known_at: str
    known_ms: int
    merchant_id: str | None
    account_id: str | None
    source: str | None


def _fail(field: str, reason: str, detail: str) -> InvalidLabelError:
    return InvalidLabelError(c.Rejection(field, reason, detail))


def _id(record: Mapping[str, Any], field: str, *, required: bool) -> str | None:
    value = record.get(field)
    if value is None:
        if required:
            raise _fail(field, "missing", "required string")
        return None
    try:
        # The transaction contract's one id rule: what Cosmos DB can store and read back by id.
        return c._check_id(value, field)
    except c.InvalidTransactionError as exc:
        raise InvalidLabelError(exc.rejection) from None


def _known_ms(record: Mapping[str, Any], now_ms: int, max_early_ms: int) -> tuple[str, int]:
    value = record.get(KNOWN_AT_FIELD)
    if value is None:
        raise _fail(KNOWN_AT_FIELD, "missing", f"required timestamp in the form {timestamps.FORM}")
    if not isinstance(value, str):
        raise _fail(KNOWN_AT_FIELD, "wrong_type", f"expected a string in the form {timestamps.FORM}")
    try:
        known_ms = timestamps.parse_ms(value)
    except ValueError:
        raise _fail(KNOWN_AT_FIELD, "invalid_value", f"not RFC 3339 UTC: {timestamps.FORM}") from None
    if known_ms > now_ms + max_early_ms:
        hours = max_early_ms // 3_600_000
        raise _fail(
            KNOWN_AT_FIELD, TOO_EARLY, f"more than {hours} h after the server's clock (EVENT_TIME_MAX_EARLY_HOURS)"
        )
    return value, known_ms


def validate(record: object, now_ms: int, max_early_ms: int) -> Label:
    """Check one decoded label; raise `InvalidLabelError` with the first fault (unknown keys first)."""
    if type(record) is not dict:
        raise _fail("body", "not_an_object", "a label must be a JSON object")
    if c.ENVELOPE_FIELD in record:
        raise InvalidLabelError(c.INVALID_ENVELOPE)  # refused as the same object would be as a whole body
    unknown = next((key for key in record if key not in FIELDS), None)
    if unknown is not None:
        shown = unknown[:_SHOWN_KEY] + ("…" if len(unknown) > _SHOWN_KEY else "")
        raise _fail(shown, "unknown_field", f"not a label field; a label holds {', '.join(FIELDS)}")
    transaction_id = _id(record, TRANSACTION_ID_FIELD, required=True)
    assert transaction_id is not None
    fraud = record.get(FRAUD_FIELD)
    if type(fraud) is not bool:
        if fraud is None:
            raise _fail(FRAUD_FIELD, "missing", "required: true or false")
        raise _fail(FRAUD_FIELD, "wrong_type", "expected true or false (JSON booleans only)")
    known_at, known_ms = _known_ms(record, now_ms, max_early_ms)
    merchant_id = _id(record, MERCHANT_FIELD, required=False)
    account_id = _id(record, ACCOUNT_FIELD, required=False)
    source = record.get(SOURCE_FIELD)
    if source is not None:
        if not isinstance(source, str):
            raise _fail(SOURCE_FIELD, "wrong_type", "expected a string")
        if source not in SOURCES:
            raise _fail(SOURCE_FIELD, "unknown_category", f"one of {', '.join(SOURCES)}")
    return Label(transaction_id, fraud, known_at, known_ms, merchant_id, account_id, source)


def parse(body: bytes, content_type: str | None, limits: Limits) -> tuple[list[Any], bool]:
    """The request's records and whether they came in an envelope, or a `RequestError` for the request as a whole.

    Nothing of a refused request is stored: the caller still holds it and gets a stable code
    (the `/api/score` codes, and the envelope's reason codes from the transaction contract).
    """
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise RequestError(415, "unsupported_media_type", "send Content-Type: application/json")
    if len(body) > limits.max_body_bytes:
        raise RequestError(413, "payload_too_large", f"the body must be at most {limits.max_body_bytes} bytes")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError(400, "invalid_json", "the body is not a UTF-8 JSON document") from None
    if type(value) is not dict:
        raise RequestError(400, "not_an_object", 'send one label object or {"records": [label, ...]}')
    if not c.is_envelope(value):
        return [value], False
    records = value[c.ENVELOPE_FIELD]
    for fault, rejection in (
        (len(value) != 1, c.INVALID_ENVELOPE),
        (type(records) is not list, c.RECORDS_NOT_A_LIST),
        (not records, c.EMPTY_ENVELOPE),
    ):
        if fault:
            raise RequestError(400, rejection.reason, rejection.detail)
    if len(records) > limits.max_records:
        raise RequestError(413, "too_many_records", f"an envelope may hold at most {limits.max_records} records")
    return records, True


def known_day(label: Label, recorded_ms: int) -> int:
    """The UTC day number (`days.day_number`) of the label's known time: the later of `known_at` and its recording."""
    return days.day_of_ms(max(label.known_ms, recorded_ms))


def document(label: Label, recorded: datetime) -> dict[str, Any]:
    """The `labels` document: id and partition key are the transaction id."""
    recorded_at = utc_iso(recorded)
    return _document(label, recorded_at, known_day(label, timestamps.parse_ms(recorded_at)))


def _document(label: Label, recorded_at: str, day: int) -> dict[str, Any]:
    return {
        "id": label.transaction_id,
        TRANSACTION_ID_FIELD: label.transaction_id,
        FRAUD_FIELD: label.fraud,
        KNOWN_AT_FIELD: label.known_at,
        "recorded_at": recorded_at,
        "known_day": day,
        MERCHANT_FIELD: label.merchant_id,
        ACCOUNT_FIELD: label.account_id,
        SOURCE_FIELD: label.source,
    }


def history_document_at(recorded: datetime) -> Callable[[Label], dict[str, Any]]:
    """The `labels` document of a label imported as history at `recorded`: known on its own `known_at`'s day.

    The same document as `document`, except `known_day` (not moved to the recording's day) and
    `imported: true`, so anyone reading the container can tell the labels that reached back.
    """
    recorded_at = utc_iso(recorded)

    def build(label: Label) -> dict[str, Any]:
        doc = _document(label, recorded_at, days.day_of_ms(label.known_ms))
        doc["imported"] = True
        return doc

    return build


def known_later(label: Label) -> c.Rejection:
    """The rejection of an imported label known after the import: history only holds what is known already."""
    return c.Rejection(
        KNOWN_AT_FIELD, KNOWN_LATER, f"{label.known_at} is after the import's clock; send it to POST /api/labels"
    )


def conflict(stored_fraud: object) -> c.Rejection:
    """The rejection of a label whose transaction already has a stored label with another outcome."""
    shown = orjson.dumps(stored_fraud).decode() if type(stored_fraud) is bool else "another value"
    return c.Rejection(
        FRAUD_FIELD, LABEL_CONFLICT, f"this transaction's stored label says fraud={shown}; a label is final"
    )
