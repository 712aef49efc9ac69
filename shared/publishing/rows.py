"""Scored documents as Power BI rows: the table's columns (`ROW_SCHEMA`) and the mapping to them (`to_row`).

Only dashboard columns leave the app; a document that cannot become a row raises `RowError`, whose
message names the field, never its value. String values are capped at Power BI's 4,000 characters.
https://learn.microsoft.com/en-us/power-bi/developer/embedded/push-datasets-limitations
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

MAX_STRING_CHARS: Final = 4_000

ROW_SCHEMA: Final[Mapping[str, str]] = MappingProxyType(
    {
        "id": "String",
        "timestamp": "DateTime",
        "account_id": "String",
        "amount": "Double",
        "category_recipient": "String",
        "transaction_type": "String",
        "transaction_method": "String",
        "foreign_transaction": "Int64",
        "fraud_probability": "Double",
        "is_flagged": "Boolean",
        "threshold": "Double",
        "model_version": "String",
        "scored_at": "DateTime",
        "is_fraud": "Int64",
        "top_reason": "String",
        "reasons_text": "String",
    }
)
"""Column name -> Power BI data type, in column order, for provisioning a matching table.

`top_reason` is the field that pushed hardest toward fraud, a short list of values a chart can group
by; `reasons_text` is every reason in an analyst's words ("6 payments in the last hour; amount 12x
usual"), for the table of latest flagged transactions. Numbers in the words would make a chart of them
one slice per transaction, so the two stay apart."""
REASONS_SEPARATOR: Final = "; "


class RowError(ValueError):
    """A scored document cannot become a row; the message names the field, never its value."""


def _field(doc: Mapping[str, Any], name: str, cast: Callable[[Any], Any]) -> Any:
    try:
        value = doc[name]
    except KeyError:
        raise RowError(f"scored document has no {name!r}") from None
    if value is None:
        raise RowError(f"scored document has a null {name!r}")
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise RowError(f"scored document has an unusable {name!r}") from None


def _flag(value: Any) -> bool:
    # bool("false") is True, so only real booleans (or the 0/1 a JSON writer may produce) pass.
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise ValueError("not a boolean")


def _reason_list(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    reasons = doc.get("reasons")
    if not isinstance(reasons, Sequence) or isinstance(reasons, str):
        return []
    return [r for r in reasons if isinstance(r, Mapping)]


def reasons_text(reasons: Sequence[Mapping[str, Any]]) -> str:
    """The reasons in an analyst's words, strongest first; a reason without words (a document scored
    before they existed) reads as its field name. Capped at Power BI's string limit."""
    words = (str(r.get("text") or r.get("field") or "") for r in reasons)
    return REASONS_SEPARATOR.join(w for w in words if w)[:MAX_STRING_CHARS]


def to_row(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a scored Cosmos document into one row matching `ROW_SCHEMA`.

    Only dashboard columns are kept: balances, income and family fields stay out of Power BI, and so
    does the document's `behaviour` (the features it was scored with); its effect shows in the reasons.
    """
    is_fraud = doc.get("is_fraud")
    reasons = _reason_list(doc)
    top_reason = str(reasons[0].get("field") or "") if reasons else ""
    return {
        "id": _field(doc, "id", str),
        "timestamp": _field(doc, "timestamp", str),
        "account_id": _field(doc, "account_id", str),
        "amount": _field(doc, "amount", float),
        "category_recipient": _field(doc, "category_recipient", str),
        "transaction_type": _field(doc, "transaction_type", str),
        "transaction_method": _field(doc, "transaction_method", str),
        "foreign_transaction": _field(doc, "foreign_transaction", int),
        "fraud_probability": _field(doc, "fraud_probability", float),
        "is_flagged": _field(doc, "is_flagged", _flag),
        "threshold": _field(doc, "threshold", float),
        "model_version": _field(doc, "model_version", str),
        "scored_at": _field(doc, "scored_at", str),
        "is_fraud": None if is_fraud is None else _field(doc, "is_fraud", int),
        "top_reason": top_reason,
        "reasons_text": reasons_text(reasons),
    }
