"""The label contract: validation, the request forms, the stored document and its known day."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from shared.behaviour import days
from shared.contract import schema, timestamps
from shared.labels import contract
from shared.scoring.request import RequestError

pytestmark = pytest.mark.unit

NOW_MS = timestamps.parse_ms("2026-11-20T12:00:00Z")
HOUR = 3_600_000
LABEL = {"transaction_id": "tx-1", "fraud": False, "known_at": "2026-11-19T08:00:00.5Z", "merchant_id": "m-1"}


def test_a_valid_label() -> None:
    """Every field read as sent; absent optional fields are None."""
    label = contract.validate(LABEL, NOW_MS, HOUR)
    assert label == contract.Label(
        "tx-1", False, "2026-11-19T08:00:00.5Z", timestamps.parse_ms("2026-11-19T08:00:00.5Z"), "m-1", None, None
    )


def test_ids_follow_the_transaction_contract() -> None:
    """Whatever the transaction contract refuses as an id, the label contract refuses with the same reason."""
    for bad in ("", "a/b", "a\\b", "a?b", "a#b", "x" * 129, " a", "a ", ".", "..", "a\tb", 3, 3.5, ["a"]):
        with pytest.raises(schema.InvalidTransactionError) as refused:
            schema._check_id(bad, "id")
        expected = refused.value.rejection.reason
        for field in ("transaction_id", "merchant_id", "account_id"):
            with pytest.raises(contract.InvalidLabelError) as caught:
                contract.validate({**LABEL, field: bad}, NOW_MS, HOUR)
            assert (caught.value.rejection.field, caught.value.rejection.reason) == (field, expected)


def test_known_at_bound_is_exact() -> None:
    """`known_at` may be up to the bound after now, not a millisecond more."""
    at_bound = timestamps.format_ms(NOW_MS + HOUR)
    assert contract.validate({**LABEL, "known_at": at_bound}, NOW_MS, HOUR).known_ms == NOW_MS + HOUR
    past = timestamps.format_ms(NOW_MS + HOUR + 1)
    with pytest.raises(contract.InvalidLabelError, match="too_early"):
        contract.validate({**LABEL, "known_at": past}, NOW_MS, HOUR)
    with pytest.raises(contract.InvalidLabelError, match="too_early"):
        contract.validate({**LABEL, "known_at": timestamps.format_ms(NOW_MS + 1)}, NOW_MS, 0)


def test_unknown_keys_are_judged_first() -> None:
    """A misspelt field is named even when the label has other faults too."""
    with pytest.raises(contract.InvalidLabelError) as caught:
        contract.validate({"transaction_id": 5, "Fraud": True}, NOW_MS, HOUR)
    assert (caught.value.rejection.field, caught.value.rejection.reason) == ("Fraud", "unknown_field")


@pytest.mark.parametrize(
    ("recorded", "known_at", "day_of"),
    [
        ("2026-11-20T12:00:00.000Z", "2026-11-19T08:00:00Z", "2026-11-20T12:00:00.000Z"),
        ("2026-11-20T12:00:00.000Z", "2026-11-20T23:59:59.999Z", "2026-11-20T23:59:59.999Z"),
        ("2026-11-20T23:59:59.999Z", "2026-11-21T00:00:00Z", "2026-11-21T00:00:00Z"),
        ("2026-11-21T00:00:00.000Z", "2026-11-20T23:59:59.999Z", "2026-11-21T00:00:00.000Z"),
    ],
)
def test_document_known_day_is_the_later_time(recorded: str, known_at: str, day_of: str) -> None:
    """known_day = the UTC day of max(known_at, recorded_at), recorded_at in the scored documents' form."""
    moment = datetime.fromisoformat(recorded)
    label = contract.validate({**LABEL, "known_at": known_at}, timestamps.parse_ms(recorded), 10**12)
    doc = contract.document(label, moment)
    assert doc["recorded_at"] == recorded
    assert doc["known_day"] == int(days.day_number(np.asarray(timestamps.parse_ms(day_of))))
    assert set(doc) == {"id", *contract.FIELDS, "recorded_at", "known_day"}
    assert doc["id"] == doc["transaction_id"]


def test_recorded_at_is_utc_whatever_the_clock_zone() -> None:
    """A naive moment is UTC, an aware one is converted."""
    from datetime import timedelta, timezone

    label = contract.validate(LABEL, NOW_MS, HOUR)
    moment = datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert contract.document(label, moment.replace(tzinfo=None))["recorded_at"] == "2026-11-20T12:00:00.000Z"
    shifted = moment.astimezone(timezone(timedelta(hours=-5)))
    assert contract.document(label, shifted)["recorded_at"] == "2026-11-20T12:00:00.000Z"


def test_parse_bare_and_enveloped() -> None:
    """A bare label is one record; an envelope's records come in order."""
    limits = contract.Limits()
    assert contract.parse(orjson.dumps(LABEL), "application/json; charset=utf-8", limits) == ([LABEL], False)
    body = orjson.dumps({"records": [LABEL, 5]})
    assert contract.parse(body, "Application/JSON", limits) == ([LABEL, 5], True)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"x" * 1025, 413, "payload_too_large"),
        (orjson.dumps({"records": [LABEL] * 3}), 413, "too_many_records"),
        (orjson.dumps({"records": [LABEL] * 2}), None, None),
        (b"1", 400, "not_an_object"),
        (b'{"records": {}}', 400, "records_not_a_list"),
    ],
)
def test_parse_limits(body: bytes, status: int | None, code: str | None) -> None:
    """The body and envelope bounds are the settings' (MAX_EVENT_BYTES, MAX_RECORDS_PER_ENVELOPE)."""
    limits = contract.Limits(max_body_bytes=1024, max_records=2)
    if status is None:
        assert len(contract.parse(body, "application/json", limits)[0]) == 2
        return
    with pytest.raises(RequestError) as caught:
        contract.parse(body, "application/json", limits)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_conflict_names_the_stored_outcome() -> None:
    """The detail says what the store holds; something other than a boolean is not quoted."""
    assert contract.conflict(True).detail == "this transaction's stored label says fraud=true; a label is final"
    assert "another value" in contract.conflict("yes").detail
    assert contract.conflict(False).reason == "label_conflict"
