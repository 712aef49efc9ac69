"""shared.publishing.rows: scored documents mapped to the Power BI table's columns."""

from __future__ import annotations

from typing import Any

import pytest

from shared.publishing.rows import MAX_STRING_CHARS, ROW_SCHEMA, RowError, reasons_text, to_row
from tests.scored import scored_documents

pytestmark = pytest.mark.unit


def _doc(i: int = 0, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"tx-{i:06d}",
        "timestamp": "2026-11-21T10:00:00.123Z",
        "account_id": "acct-000042",
        "amount": 95.55,
        "old_balance": 142590.74,
        "income": 2979.71,
        "credit": 0,
        "marital_status": 1,
        "children": 2,
        "month": 10,
        "day_of_week": "monday",
        "category_recipient": "gambling",
        "transaction_type": "online",
        "transaction_method": "card",
        "foreign_transaction": 1,
        "is_fraud": 1,
        "fraud_probability": 0.93,
        "is_flagged": True,
        "threshold": 0.5,
        "model_version": "xgb-2026.11.1",
        "scored_at": "2026-11-21T10:00:01.000Z",
        "enqueued_time": "2026-11-21T10:00:00.500Z",
        "partition": "3",
        "reasons": [{"field": "category_recipient", "contribution": 1.7}, {"field": "amount", "contribution": 0.4}],
    }
    doc.update(changes)
    return doc


# -- to_row ---------------------------------------------------------------------------------------


def test_to_row_maps_a_flagged_document() -> None:
    """A flagged document becomes the dashboard row, with its strongest reason and no personal fields."""
    assert to_row(_doc()) == {
        "id": "tx-000000",
        "timestamp": "2026-11-21T10:00:00.123Z",
        "account_id": "acct-000042",
        "amount": pytest.approx(95.55),
        "category_recipient": "gambling",
        "transaction_type": "online",
        "transaction_method": "card",
        "foreign_transaction": 1,
        "fraud_probability": pytest.approx(0.93),
        "is_flagged": True,
        "threshold": pytest.approx(0.5),
        "model_version": "xgb-2026.11.1",
        "scored_at": "2026-11-21T10:00:01.000Z",
        "is_fraud": 1,
        "top_reason": "category_recipient",
        "reasons_text": "category_recipient; amount",
    }


def test_to_row_carries_the_reasons_in_analyst_words() -> None:
    """reasons_text joins the reasons' words strongest first; top_reason stays the field, for grouping."""
    doc = _doc(
        reasons=[
            {"field": "payments_last_hour", "contribution": 2.1, "text": "6 payments in the last hour"},
            {"field": "amount_to_usual", "contribution": 1.2, "text": "amount 12x usual"},
            {"field": "first_foreign", "contribution": 0.3, "text": "first foreign payment"},
        ],
        behaviour={"payments_last_hour": 6.0, "amount_to_usual": 12.0, "first_foreign": 1.0},
    )
    row = to_row(doc)
    assert row["reasons_text"] == "6 payments in the last hour; amount 12x usual; first foreign payment"
    assert row["top_reason"] == "payments_last_hour"
    assert "behaviour" not in row


def test_reasons_text_falls_back_to_field_names_and_stays_under_the_string_limit() -> None:
    """A reason without words (or with empty ones) reads as its field; junk entries are skipped; the
    column never exceeds Power BI's 4,000 characters, which would get the whole row dropped."""
    mixed = [
        {"field": "amount", "contribution": 1.0, "text": ""},
        "not a reason",
        {"field": "first_foreign", "contribution": 0.5, "text": "first foreign payment"},
        {"contribution": 0.1},
    ]
    assert to_row(_doc(reasons=mixed))["reasons_text"] == "amount; first foreign payment"
    assert reasons_text([{"field": "x", "text": "y" * 5000}] * 2) == "y" * MAX_STRING_CHARS


def test_rows_of_documents_the_scorer_writes_carry_its_words() -> None:
    """End to end on the scorer's own output (bundled model, accounts with history in memory): every
    flagged row's reasons_text is its document's reason words, in order; every row fits the schema."""
    docs = scored_documents(seed=5)
    flagged = [d for d in docs if d["is_flagged"]]
    assert flagged
    assert all("behaviour" in d for d in docs)
    for doc in docs:
        row = to_row(doc)
        assert list(row) == list(ROW_SCHEMA)
        words = [r["text"] for r in doc["reasons"]]
        assert all(words)
        assert row["reasons_text"] == "; ".join(words)
        assert row["top_reason"] == (doc["reasons"][0]["field"] if doc["reasons"] else "")


@pytest.mark.parametrize("reasons", [None, [], "absent"])
def test_to_row_without_label_or_reasons(reasons: Any) -> None:
    """Unknown ground truth stays None and a missing or empty reason list gives empty reason columns."""
    doc = _doc(is_flagged=False, reasons=reasons)
    del doc["is_fraud"]
    if reasons == "absent":
        del doc["reasons"]
    row = to_row(doc)
    assert row["is_fraud"] is None
    assert row["top_reason"] == ""
    assert row["reasons_text"] == ""
    assert row["is_flagged"] is False


def test_to_row_columns_are_the_schema() -> None:
    """Rows carry exactly the ROW_SCHEMA columns, in order, with Power BI type names."""
    assert list(to_row(_doc())) == list(ROW_SCHEMA)
    assert set(ROW_SCHEMA.values()) <= {"String", "Double", "Int64", "Boolean", "DateTime"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"amount": None}, "amount"), ({"is_flagged": "false"}, "is_flagged"), ({"is_fraud": "x"}, "is_fraud")],
)
def test_to_row_names_the_bad_field(changes: dict[str, Any], field: str) -> None:
    """A malformed document raises RowError naming the field, never echoing its value."""
    with pytest.raises(RowError, match=field):
        to_row(_doc(**changes))


def test_to_row_names_a_missing_field() -> None:
    """A document without a required column raises RowError naming it."""
    doc = _doc()
    del doc["scored_at"]
    with pytest.raises(RowError, match="scored_at"):
        to_row(doc)
