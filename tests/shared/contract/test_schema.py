"""The transaction contract accepts what the generator makes and rejects the rest with a named field."""

from __future__ import annotations

from typing import Any

import pytest

from shared.contract import schema as c
from shared.generation.generator import TransactionGenerator

pytestmark = pytest.mark.unit


@pytest.fixture
def good() -> dict[str, Any]:
    return TransactionGenerator(seed=7).generate(1)[0]


def test_generated_record_is_valid(good: dict[str, Any]) -> None:
    """A generated record validates and keeps its identity and label."""
    tx = c.validate(good)
    assert tx.id == good["id"]
    assert tx.account_id == good["account_id"]
    assert tx.is_fraud == bool(good["is_fraud"])
    assert c.category_value("day_of_week", tx.day_of_week) == good["day_of_week"]


def test_label_is_optional(good: dict[str, Any]) -> None:
    """Unlabelled transactions (production traffic) are valid; the label is never required."""
    del good["is_fraud"]
    assert c.validate(good).is_fraud is None


def test_integral_float_accepted_for_integer_field(good: dict[str, Any]) -> None:
    """JSON producers that write 2.0 for 2 are not punished."""
    good["children"] = 2.0
    assert c.validate(good).children == 2


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"amount": None}, "amount", "missing"),
        ({"amount": "12.5"}, "amount", "wrong_type"),
        ({"amount": True}, "amount", "wrong_type"),
        ({"amount": -3.0}, "amount", "out_of_range"),
        ({"amount": 0.0}, "amount", "out_of_range"),
        ({"amount": float("nan")}, "amount", "not_finite"),
        ({"income": float("inf")}, "income", "not_finite"),
        ({"old_balance": 1e300}, "old_balance", "out_of_range"),
        ({"credit": 2}, "credit", "out_of_range"),
        ({"children": 1.5}, "children", "wrong_type"),
        ({"month": 13}, "month", "unknown_category"),
        ({"month": "10"}, "month", "wrong_type"),
        ({"day_of_week": "Funday"}, "day_of_week", "unknown_category"),
        ({"category_recipient": ["food_store"]}, "category_recipient", "wrong_type"),
        ({"transaction_type": None}, "transaction_type", "missing"),
        ({"id": ""}, "id", "out_of_range"),
        ({"id": "a/b"}, "id", "invalid_value"),
        ({"id": 42}, "id", "wrong_type"),
        ({"account_id": None}, "account_id", "wrong_type"),
        ({"timestamp": "yesterday"}, "timestamp", "invalid_value"),
        ({"timestamp": "2026-11-21T10:00:00"}, "timestamp", "invalid_value"),
        ({"timestamp": "2026-11-21T10:00:00+02:00"}, "timestamp", "invalid_value"),
        ({"timestamp": 1_767_225_600_000}, "timestamp", "wrong_type"),
        ({"id": " leading"}, "id", "invalid_value"),
        ({"id": "trailing "}, "id", "invalid_value"),
        ({"id": "."}, "id", "invalid_value"),
        ({"id": ".."}, "id", "invalid_value"),
        ({"id": "\u00a0nbsp"}, "id", "invalid_value"),
        ({"account_id": "acct-1 "}, "account_id", "invalid_value"),
        ({"account_id": ".."}, "account_id", "invalid_value"),
        ({"is_fraud": 2}, "is_fraud", "invalid_value"),
        ({"is_fraud": "yes"}, "is_fraud", "invalid_value"),
    ],
)
def test_bad_field_is_named(good: dict[str, Any], change: dict[str, Any], field: str, reason: str) -> None:
    """Each fault names the field and a stable reason code."""
    good.update(change)
    with pytest.raises(c.InvalidTransactionError) as info:
        c.validate(good)
    assert (info.value.rejection.field, info.value.rejection.reason) == (field, reason)


def test_non_object_rejected() -> None:
    """A JSON array or scalar is not a transaction."""
    with pytest.raises(c.InvalidTransactionError) as info:
        c.validate([1, 2])
    assert info.value.rejection.field == "body"


# Forms `datetime.fromisoformat` accepted that the rest of the pipeline could not read, and near misses.
REFUSED_TIMESTAMPS = [
    "20260101T000000Z",
    "2026-W01-1T00:00:00Z",
    "2026-01-01T00:00:00,5Z",
    "2026-01-01T00:00:00+00:00:00",
    "2026-01-01T00:00:00." + "1" * 19 + "Z",
    "2026-01-01T00:00:00.1234567890Z",
    "2026-01-01T00:00:00Z\x00" + "x" * 60_000,
    "\u0662\u0660\u0662\u0666-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T00:00:00z",
    "2026-01-01T00:00:00-00:00",
    "2026-01-01T23:59:60Z",
]


@pytest.mark.parametrize("stamp", REFUSED_TIMESTAMPS, ids=lambda v: repr(v)[:40])
def test_timestamp_outside_the_form_is_refused_naming_the_form(good: dict[str, Any], stamp: str) -> None:
    """Only RFC 3339 UTC passes; the detail says which form is expected."""
    good["timestamp"] = stamp
    with pytest.raises(c.InvalidTransactionError) as info:
        c.validate(good)
    rejection = info.value.rejection
    assert (rejection.field, rejection.reason) == ("timestamp", "invalid_value")
    assert rejection.detail == "not RFC 3339 UTC: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00)"
    with pytest.raises(c.InvalidTransactionError):
        c.check_timestamp(stamp)


@pytest.mark.parametrize(
    "stamp", ["2026-11-21T10:00:00Z", "2026-11-21T10:00:00.123456789+00:00", "2024-02-29T23:59:59.9Z"]
)
def test_timestamp_in_the_form_is_kept_as_sent(good: dict[str, Any], stamp: str) -> None:
    """Any fraction of 1..9 digits and either UTC suffix; the text is kept unchanged."""
    good["timestamp"] = stamp
    assert c.validate(good).timestamp == stamp
    assert c.check_timestamp(stamp) == stamp


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (" leading", "starts or ends with a space"),
        ("trailing ", "starts or ends with a space"),
        (".", "cannot be read back"),
        ("..", "cannot be read back"),
    ],
)
def test_ids_cosmos_db_cannot_store_or_read_back_say_why(good: dict[str, Any], value: str, detail: str) -> None:
    """An id Cosmos DB would refuse, or could not point-read, is refused with the reason."""
    good["id"] = value
    with pytest.raises(c.InvalidTransactionError) as info:
        c.validate(good)
    assert info.value.rejection.reason == "invalid_value"
    assert detail in info.value.rejection.detail


@pytest.mark.parametrize("value", ["a b", "...", ".x", "x.", "é-unicode", "x" * 128])
def test_ids_cosmos_db_can_hold_are_kept(good: dict[str, Any], value: str) -> None:
    """An interior space, dots beside other characters and non-ASCII letters are fine."""
    good["id"] = value
    assert c.validate(good).id == value
