"""The batch validator makes exactly `contract.validate`'s decisions, row by row, with the same values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contract import schema as c
from shared.contract.batch import DUPLICATE_ID, ValidBatch, validate_batch
from shared.generation.generator import TransactionGenerator

pytestmark = pytest.mark.unit

_BASE = TransactionGenerator(seed=808).generate(500)
FIELDS = [c.ID_FIELD, c.TIMESTAMP_FIELD, c.ACCOUNT_FIELD, *c.FEATURE_FIELDS, c.LABEL_FIELD]
# Values that sit on, or just across, the contract's edges for one field or another.
TRICKY: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    12,
    13,
    21,
    0.0,
    0.005,
    0.01,
    1.0,
    1.5,
    2.0,
    -1e6,
    -1_000_000.5,
    1e6,
    1e8,
    1e300,
    -1e300,
    math.nan,
    math.inf,
    -math.inf,
    2**63,
    2**64 - 1,
    10**400,
    "",
    "0",
    "1.5",
    "a/b",
    "x#y",
    "q?",
    "back\\slash",
    "tab\tid",
    "nul\x00",
    "del\x7f",
    "line\u2028sep",
    "é-unicode",
    "x" * 128,
    "x" * 129,
    "2026-11-21T10:00:00Z",
    "2026-11-21T10:00:00.123+00:00",
    "2026-11-21T10:00:00-00:00",
    "2026-11-21T10:00:00",
    "2026-11-21T10:00:00+02:00",
    "2026-02-30T10:00:00Z",
    "2026-11-21T10:00:00.123456789Z",
    "2026-11-21T10:00:00.1234567890Z",
    "2026-11-21T10:00:00z",
    "20260101T000000Z",
    "2026-W01-1T00:00:00Z",
    "2026-01-01T00:00:00,5Z",
    "2026-01-01T00:00:00+00:00:00",
    "2026-01-01T00:00:00." + "1" * 19 + "Z",
    "2026-01-01T00:00:00Z\x00" + "x" * 60_000,
    "\u0662\u0660\u0662\u0666-01-01T00:00:00Z",
    " lead",
    "trail ",
    "in side",
    ".",
    "..",
    "...",
    "\u00a0nbsp",
    "yesterday",
    "monday",
    "Monday",
    "food_store",
    "other",
    "card",
    "atm",
    [],
    ["food_store"],
    {},
    {"a": 1},
]


def reference(records: list[Any]) -> tuple[dict[int, c.Rejection], list[tuple[int, c.Transaction]]]:
    """What the per-event path decides: `contract.validate`, then duplicates among accepted ids."""
    rejections: dict[int, c.Rejection] = {}
    accepted: list[tuple[int, c.Transaction]] = []
    seen: set[str] = set()
    for i, record in enumerate(records):
        try:
            tx = c.validate(record)
        except c.InvalidTransactionError as exc:
            rejections[i] = exc.rejection
            continue
        if tx.id in seen:
            rejections[i] = DUPLICATE_ID
            continue
        seen.add(tx.id)
        accepted.append((i, tx))
    return rejections, accepted


def assert_agrees(records: list[Any], batch: ValidBatch) -> None:
    rejections, accepted = reference(records)
    assert batch.rejections == rejections
    assert batch.positions == [i for i, _ in accepted]
    txs = [tx for _, tx in accepted]
    assert batch.ids == [tx.id for tx in txs]
    assert batch.timestamps == [tx.timestamp for tx in txs]
    assert batch.account_ids == [tx.account_id for tx in txs]
    assert batch.labels == [None if tx.is_fraud is None else int(tx.is_fraud) for tx in txs]
    for field in c.FEATURE_FIELDS:
        assert batch.numbers[field].tolist() == [getattr(tx, field) for tx in txs], field
    assert batch.records == [records[i] for i, _ in accepted]


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A generated record with up to three fields changed, dropped or added; or not an object at all."""
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from([[], "text", 5, None, [1, 2]]))
    record = dict(_BASE[draw(st.integers(0, len(_BASE) - 1))])
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from([*FIELDS, "extra"]))
        action = draw(st.sampled_from(["set", "set", "set", "drop", "int_amount"]))
        if action == "drop":
            record.pop(field, None)
        elif action == "int_amount" and type(record.get(field)) is float and math.isfinite(record[field]):
            record[field] = round(record[field]) or 1
        else:
            record[field] = draw(st.sampled_from(TRICKY))
    return record


@st.composite
def batches(draw: st.DrawFn) -> list[Any]:
    records = draw(st.lists(st.one_of(mutated(), st.sampled_from(_BASE).map(dict)), max_size=25))
    # Some ids repeat within the batch, valid or not.
    for _ in range(draw(st.integers(0, 2))):
        if len(records) >= 2 and all(isinstance(r, dict) for r in records[:2]):
            records[1][c.ID_FIELD] = records[0].get(c.ID_FIELD)
    return records


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_decisions_and_values_equal_validate(records: list[Any]) -> None:
    """On mixes of valid and malformed events: same accepted rows, values, rejections and reasons."""
    assert_agrees(records, validate_batch(records))


def test_each_tricky_value_alone_in_a_clean_batch() -> None:
    """One odd value among valid events (first, middle or last): the batch-wide checks must catch it."""
    for field in [*FIELDS, "extra"]:
        for value in [*TRICKY, "missing"]:
            for position in (0, 5, 7):
                records = [dict(r) for r in _BASE[:8]]
                if value == "missing":
                    records[position].pop(field, None)
                else:
                    records[position][field] = value
                assert_agrees(records, validate_batch(records))


@pytest.mark.parametrize(
    ("field", "values"),
    [
        (c.ID_FIELD, [" lead", "trail ", ".", "..", "mid dle", "...", "x" * 128]),
        (c.ACCOUNT_FIELD, [" lead", "trail ", ".", "..", "mid dle", "..."]),
        (
            c.TIMESTAMP_FIELD,
            [
                "20260101T000000Z",
                "2026-W01-1T00:00:00Z",
                "2026-01-01T00:00:00,5Z",
                "2026-01-01T00:00:00+00:00:00",
                "2026-01-01T00:00:00.1234567890Z",
                "2026-01-01T00:00:00Z\x00" + "x" * 60_000,
                "2026-02-30T00:00:00Z",
                "2026-01-01T00:00:00z",
                "2026-01-01T00:00:00.123456789+00:00",
            ],
        ),
    ],
)
def test_new_id_and_timestamp_rules_agree_with_validate(field: str, values: list[str]) -> None:
    """Every value of the column at once, and each alone among valid events: validate's decisions."""
    records = [dict(r) for r in _BASE[: len(values)]]
    for record, value in zip(records, values, strict=True):
        record[field] = value
    assert_agrees(records, validate_batch(records))
    for value in values:
        records = [dict(r) for r in _BASE[:8]]
        records[4][field] = value
        assert_agrees(records, validate_batch(records))


def test_generated_batch_is_canonical_and_fully_accepted() -> None:
    """Generated events are all valid, and documents can be built from them as they are."""
    records = [dict(r) for r in _BASE]
    batch = validate_batch(records)
    assert_agrees(records, batch)
    assert batch.canonical
    assert batch.rejections == {}


@pytest.mark.parametrize(
    ("change", "canonical"),
    [
        ({}, True),
        ({"extra": "context"}, False),
        ({"amount": 100}, False),
        ({"children": 2.0}, False),
        ({"is_fraud": True}, False),
    ],
)
def test_canonical_only_when_records_are_documents_as_they_are(change: dict[str, Any], canonical: bool) -> None:
    """An extra field, an integer amount, an integral float or a boolean label need converting first."""
    records = [dict(r) for r in _BASE[:20]]
    records[7].update(change)
    batch = validate_batch(records)
    assert_agrees(records, batch)
    assert batch.canonical is canonical


def test_unlabelled_events_stay_canonical() -> None:
    """Production traffic has no label: still the fast path, labels read as None."""
    records = [{k: v for k, v in r.items() if k != c.LABEL_FIELD} for r in _BASE[:50]]
    batch = validate_batch(records)
    assert batch.canonical
    assert batch.labels == [None] * 50


def test_already_rejected_positions_are_kept_and_skipped() -> None:
    """Positions rejected before (undecodable bodies) keep their rejection and take no id."""
    records: list[Any] = [dict(r) for r in _BASE[:5]]
    invalid_json = c.Rejection("body", "invalid_json", "not a UTF-8 JSON document")
    records[2] = None
    batch = validate_batch(records, {2: invalid_json})
    assert batch.rejections == {2: invalid_json}
    assert batch.positions == [0, 1, 3, 4]


def test_duplicates_keep_the_first_valid_one() -> None:
    """An invalid event does not claim its id; the first valid one does, later ones are duplicates."""
    first, second, third = (dict(r) for r in _BASE[:3])
    broken = dict(first, amount="lots")
    second[c.ID_FIELD] = third[c.ID_FIELD] = first[c.ID_FIELD]
    records = [broken, second, third]
    batch = validate_batch(records)
    assert batch.rejections[0].reason == "wrong_type"
    assert batch.positions == [1]
    assert batch.rejections[2] == DUPLICATE_ID


def test_empty_batch() -> None:
    """Nothing in, nothing out."""
    batch = validate_batch([])
    assert batch.positions == []
    assert batch.rejections == {}
    assert all(values.shape == (0,) for values in batch.numbers.values())


def test_huge_integer_is_rejected_not_raised() -> None:
    """An integer beyond float range is out of range, in both validators."""
    record = dict(_BASE[0], amount=10**400)
    with pytest.raises(c.InvalidTransactionError) as info:
        c.validate(record)
    assert (info.value.rejection.field, info.value.rejection.reason) == ("amount", "out_of_range")
    assert validate_batch([record]).rejections[0] == info.value.rejection


def test_float_columns_hold_float64() -> None:
    """Continuous fields come out as float64, passthrough as int64 and categories as codes."""
    batch = validate_batch([dict(r) for r in _BASE[:10]])
    assert batch.numbers["amount"].dtype == np.float64
    assert batch.numbers["children"].dtype == np.int64
    assert batch.numbers["day_of_week"].dtype == np.intp
