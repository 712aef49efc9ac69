"""The transaction contract: field names, types, allowed values and ranges, owned in one place.

The generator writes events that satisfy it, the scorer validates incoming events against it, and
the feature encoder takes its category lists from it, so the three cannot drift apart.

An event body is one JSON object:

    {"id": "...", "timestamp": "2026-11-21T10:00:00.123Z", "account_id": "acct-000042",
     "amount": 95.55, "old_balance": 142590.74, "income": 2979.71, "credit": 0,
     "marital_status": 1, "children": 2, "month": 10, "day_of_week": "monday",
     "category_recipient": "food_store", "transaction_type": "onsite",
     "transaction_method": "other", "foreign_transaction": 1,
     "merchant_id": "merch-00123", "is_fraud": 0}

`merchant_id` is optional (`MERCHANT_FIELD`): the seed's fields alone are a complete transaction.

`is_fraud` is the generator's ground truth. It is optional, never a feature, and carried through
to the scored document so precision and recall can be measured live.

An event body may instead be an envelope, a JSON object whose only key is `records` (any object
holding `records` is read as an envelope; one holding other keys too is `invalid_envelope`):

    {"records": [{transaction}, {transaction}, ...]}

the shape Azure's own services use when they stream logs to Event Hubs. Event Hubs charges and
the worker spends per event, not per byte, so many records per event is how throughput scales
(README: envelopes). Both forms may arrive in one batch. Every record of an envelope is judged on
its own, as a bare transaction would be; faults of the envelope itself (`ENVELOPE_REJECTIONS`)
reject the event as a whole. A lone transaction above `MAX_TRANSACTION_BYTES` is refused: only
envelopes may use the rest of Event Hubs' 1 MB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from shared.contract import timestamps

# Category values. Their order here is the order of the one-hot columns and of the ordinal codes.
MONTHS: Final = tuple(range(1, 13))
DAYS_OF_WEEK: Final = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
CATEGORY_RECIPIENTS: Final = (
    "food_store",
    "restaurant",
    "utilities",
    "health",
    "clothing",
    "travel",
    "electronics",
    "jewelry",
    "gambling",
    "money_transfer",
    "other",
)
TRANSACTION_TYPES: Final = ("onsite", "online", "atm")
TRANSACTION_METHODS: Final = ("card", "contactless", "mobile", "bank_transfer", "check", "other")

# Field groups as the seed's feature recipe uses them.
CONTINUOUS_FIELDS: Final = ("amount", "old_balance", "income")
ONE_HOT_FIELDS: Final = ("month", "day_of_week", "category_recipient", "transaction_method")
LABEL_ENCODED_FIELD: Final = "transaction_type"
PASSTHROUGH_FIELDS: Final = ("credit", "marital_status", "children", "foreign_transaction")

CATEGORIES: Final[dict[str, tuple[Any, ...]]] = {
    "month": MONTHS,
    "day_of_week": DAYS_OF_WEEK,
    "category_recipient": CATEGORY_RECIPIENTS,
    "transaction_method": TRANSACTION_METHODS,
    "transaction_type": TRANSACTION_TYPES,
}

# Inclusive numeric ranges. Wide enough for any real retail transaction, narrow enough that a
# unit mix-up (cents for euros, a timestamp in the amount field) is rejected rather than scored.
FLOAT_RANGES: Final[dict[str, tuple[float, float]]] = {
    "amount": (0.01, 1_000_000.0),
    "old_balance": (-1_000_000.0, 100_000_000.0),
    "income": (0.0, 10_000_000.0),
}
INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    "credit": (0, 1),
    "marital_status": (0, 1),
    "children": (0, 20),
    "foreign_transaction": (0, 1),
}

FEATURE_FIELDS: Final = (
    *CONTINUOUS_FIELDS,
    *PASSTHROUGH_FIELDS,
    *ONE_HOT_FIELDS,
    LABEL_ENCODED_FIELD,
)
ID_FIELD: Final = "id"
TIMESTAMP_FIELD: Final = "timestamp"
ACCOUNT_FIELD: Final = "account_id"
MERCHANT_FIELD: Final = "merchant_id"
"""Optional: the terminal or payee the payment goes to (an id by the same rules as `id`). Clients that
send only the seed's fields leave it out; their payments are scored without merchant risk."""
LABEL_FIELD: Final = "is_fraud"
MAX_ID_LENGTH: Final = 128
MAX_TRANSACTION_BYTES: Final = 64 * 1024
"""A bare (one-transaction) event larger than this is `too_large`; a real transaction is under 1 KB."""
ENVELOPE_FIELD: Final = "records"
DEFAULT_MAX_EVENT_BYTES: Final = 1_048_576
DEFAULT_MAX_RECORDS: Final = 5000

# Cosmos DB forbids these characters in an id (they break the resource path): the documented rule,
# learn.microsoft.com/dotnet/api/microsoft.azure.documents.resource.id ("Remarks").
FORBIDDEN_ID_CHARS: Final = frozenset("/\\?#")
# Ids Cosmos DB cannot store or read back although they hold no forbidden character. The item's
# resource path is dbs/{db}/colls/{coll}/docs/{id}: HTTP clients remove "." and ".." path segments
# (RFC 3986 section 5.2.4; urllib3's parse_url does), so a point read of such an id asks for
# another resource. Whitespace at either end: the azure-cosmos SDK refuses to write an id ending in
# one ("Id ends with a space or newline.", azure/cosmos/_base.py `_validate_resource`), and point
# reads of such ids fail elsewhere too (azure-cosmos-dotnet-v3 issue 1032, azure-sdk-for-js pull
# 22356). An interior space is fine: the SDK percent-encodes it. No other whitespace passes
# `str.isprintable`.
DOT_IDS: Final = frozenset({".", ".."})


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one event could not be scored: the field at fault (or "body") and a stable reason code."""

    field: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class EnvelopeLimits:
    """How much one event may carry (settings MAX_EVENT_BYTES and MAX_RECORDS_PER_ENVELOPE)."""

    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_records: int = DEFAULT_MAX_RECORDS

    def too_large(self) -> Rejection:
        """The rejection of an event body longer than `max_event_bytes`."""
        return Rejection("body", "too_large", f"event body exceeds {self.max_event_bytes} bytes")

    def too_many_records(self) -> Rejection:
        """The rejection of an envelope holding more than `max_records` records."""
        return Rejection("body", "too_many_records", f"an envelope may hold at most {self.max_records} records")


TRANSACTION_TOO_LARGE: Final = Rejection("body", "too_large", f"event body exceeds {MAX_TRANSACTION_BYTES} bytes")
"""A bare transaction above `MAX_TRANSACTION_BYTES` (or a body that large that is not an envelope)."""
RECORDS_NOT_A_LIST: Final = Rejection("body", "records_not_a_list", 'an envelope\'s "records" must be a JSON array')
EMPTY_ENVELOPE: Final = Rejection("body", "empty_envelope", 'an envelope\'s "records" holds no record')
INVALID_ENVELOPE: Final = Rejection(
    "body", "invalid_envelope", 'an object holding "records" is an envelope, and an envelope holds nothing else'
)
ENVELOPE_REJECTIONS: Final = (
    "too_large",
    "too_many_records",
    "records_not_a_list",
    "empty_envelope",
    "invalid_envelope",
    "invocation_limit",
)
"""Reason codes that reject a whole event (one document for the event, its raw body kept)."""


def is_envelope(value: object) -> bool:
    """A decoded body is an envelope when it is an object holding `records`.

    Exactly that, whatever else it holds: an envelope with other keys is rejected whole as
    `invalid_envelope` (its raw body kept), never judged as one transaction, so a producer's
    mistaken envelope keeps every record re-drivable. `records` is therefore not a transaction
    field, and the `/api/score` records (which always gain an id) are checked the same way.
    """
    return type(value) is dict and ENVELOPE_FIELD in value


class InvalidTransactionError(ValueError):
    """Raised by `validate` with the first `Rejection` found."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(f"{rejection.field}: {rejection.reason} ({rejection.detail})")
        self.rejection = rejection


def _fail(field: str, reason: str, detail: str) -> InvalidTransactionError:
    return InvalidTransactionError(Rejection(field, reason, detail))


def category_value(field: str, code: int) -> Any:
    """The contract value behind a category code (the inverse of validation's encoding)."""
    return CATEGORIES[field][code]


def _check_id(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise _fail(field, "wrong_type", "expected a string")
    if not value or len(value) > MAX_ID_LENGTH:
        raise _fail(field, "out_of_range", f"length must be 1..{MAX_ID_LENGTH}")
    if any(c in FORBIDDEN_ID_CHARS for c in value) or not value.isprintable():
        raise _fail(field, "invalid_value", "contains a character Cosmos DB ids cannot hold")
    if value.strip() != value:
        raise _fail(field, "invalid_value", "starts or ends with a space, which Cosmos DB ids cannot")
    if value in DOT_IDS:
        raise _fail(field, "invalid_value", '"." and ".." cannot be read back from Cosmos DB by id')
    return value


_TIMESTAMP_FORM: Final = f"not RFC 3339 UTC: {timestamps.FORM}"


def _check_timestamp(value: object) -> str:
    if not isinstance(value, str):
        raise _fail(TIMESTAMP_FIELD, "wrong_type", f"expected a string in the form {timestamps.FORM}")
    if not timestamps.is_valid(value):
        raise _fail(TIMESTAMP_FIELD, "invalid_value", _TIMESTAMP_FORM)
    return value


def check_timestamp(value: object) -> str:
    """`value` if it is a contract timestamp (`timestamps.FORM`); otherwise `InvalidTransactionError`."""
    return _check_timestamp(value)


def _check_float(record: dict[str, Any], field: str) -> float:
    value = record.get(field)
    # bool is an int subclass; True is not an amount.
    if type(value) is not float and type(value) is not int:
        if value is None:
            raise _fail(field, "missing", "required number")
        raise _fail(field, "wrong_type", "expected a number")
    low, high = FLOAT_RANGES[field]
    try:
        number = float(value)
    except OverflowError:  # an integer too large for any float is out of range, not a crash
        raise _fail(field, "out_of_range", f"must be within [{low:g}, {high:g}]") from None
    if not math.isfinite(number):
        raise _fail(field, "not_finite", "NaN and infinities are not amounts")
    if not low <= number <= high:
        raise _fail(field, "out_of_range", f"must be within [{low:g}, {high:g}]")
    return number


def _check_int(record: dict[str, Any], field: str) -> int:
    value = record.get(field)
    if type(value) is not int:
        if value is None:
            raise _fail(field, "missing", "required integer")
        if type(value) is float and value.is_integer():
            value = int(value)
        else:
            raise _fail(field, "wrong_type", "expected an integer")
    low, high = INT_RANGES[field]
    if not low <= value <= high:
        raise _fail(field, "out_of_range", f"must be within [{low}, {high}]")
    return value


def _check_category(record: dict[str, Any], field: str, codes: dict[Any, int]) -> int:
    value = record.get(field)
    if value is None:
        raise _fail(field, "missing", "required category")
    if field == "month":
        if type(value) is not int:
            raise _fail(field, "wrong_type", "expected an integer month 1..12")
    elif not isinstance(value, str):
        raise _fail(field, "wrong_type", "expected a string")
    code = codes.get(value)
    if code is None:
        raise _fail(field, "unknown_category", "not one of the allowed values")
    return code


CATEGORY_CODES: Final[dict[str, dict[Any, int]]] = {
    field: {value: i for i, value in enumerate(values)} for field, values in CATEGORIES.items()
}


@dataclass(frozen=True, slots=True)
class Transaction:
    """A validated transaction: identity, features (categories as codes into `CATEGORIES`) and label."""

    id: str
    timestamp: str
    account_id: str
    amount: float
    old_balance: float
    income: float
    credit: int
    marital_status: int
    children: int
    foreign_transaction: int
    month: int
    day_of_week: int
    category_recipient: int
    transaction_method: int
    transaction_type: int
    is_fraud: bool | None
    merchant_id: str | None = None


def validate(record: object) -> Transaction:
    """Check one decoded event against the contract; raise `InvalidTransactionError` on the first fault.

    Unknown extra fields are ignored (producers may add context), but every contract field must be
    present with the right type and within range.
    """
    if not isinstance(record, dict):
        raise _fail("body", "not_an_object", "the event must be a JSON object")
    label = record.get(LABEL_FIELD)
    if label is not None and (type(label) not in (bool, int) or label not in (0, 1)):
        raise _fail(LABEL_FIELD, "invalid_value", "must be 0, 1, true, false or absent")
    codes = CATEGORY_CODES
    merchant = record.get(MERCHANT_FIELD)
    return Transaction(
        id=_check_id(record.get(ID_FIELD), ID_FIELD),
        timestamp=_check_timestamp(record.get(TIMESTAMP_FIELD)),
        account_id=_check_id(record.get(ACCOUNT_FIELD), ACCOUNT_FIELD),
        amount=_check_float(record, "amount"),
        old_balance=_check_float(record, "old_balance"),
        income=_check_float(record, "income"),
        credit=_check_int(record, "credit"),
        marital_status=_check_int(record, "marital_status"),
        children=_check_int(record, "children"),
        foreign_transaction=_check_int(record, "foreign_transaction"),
        month=_check_category(record, "month", codes["month"]),
        day_of_week=_check_category(record, "day_of_week", codes["day_of_week"]),
        category_recipient=_check_category(record, "category_recipient", codes["category_recipient"]),
        transaction_method=_check_category(record, "transaction_method", codes["transaction_method"]),
        transaction_type=_check_category(record, "transaction_type", codes["transaction_type"]),
        is_fraud=None if label is None else bool(label),
        merchant_id=None if merchant is None else _check_id(merchant, MERCHANT_FIELD),
    )
