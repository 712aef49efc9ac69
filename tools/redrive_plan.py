"""What the re-drive tool reads and sends, decided without a client: the query, bodies decoded exactly, batches."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from shared.contract.schema import ACCOUNT_FIELD, MAX_ID_LENGTH
from shared.scoring.documents import utc_iso
from tools.redrive_types import UnreadableDocumentError


def iso_utc(text: str) -> str:
    """An ISO 8601 date or time as the scorer writes `rejected_at` (UTC, milliseconds, `Z`); naive is UTC.

    The query compares strings, so `--since` must be in the stored form to compare as a time.
    """
    return utc_iso(datetime.fromisoformat(text))


def select_query(
    reasons: Sequence[str] = (),
    fields: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """The SQL and its parameters: any of `reasons`, any of `fields`, `since <= rejected_at < until`.

    Values travel only as parameters, never in the SQL text.
    """
    conditions: list[str] = []
    parameters: list[dict[str, Any]] = []

    def any_of(path: str, name: str, values: Sequence[str]) -> None:
        names = [f"@{name}{i}" for i in range(len(values))]
        conditions.append(f"{path} IN ({', '.join(names)})")
        parameters.extend({"name": n, "value": v} for n, v in zip(names, values, strict=True))

    if reasons:
        any_of("c.reason", "reason", list(dict.fromkeys(reasons)))
    if fields:
        any_of("c.field", "field", list(dict.fromkeys(fields)))
    if since is not None:
        conditions.append("c.rejected_at >= @since")
        parameters.append({"name": "@since", "value": since})
    if until is not None:
        conditions.append("c.rejected_at < @until")
        parameters.append({"name": "@until", "value": until})
    where = " WHERE " + " AND ".join(conditions) if conditions else ""
    return "SELECT * FROM c" + where, parameters


def decode_body(doc: Mapping[str, Any]) -> bytes | None:
    """The event body exactly as it arrived, or None when it was truncated and cannot be re-driven whole.

    Raises `UnreadableDocumentError` when the document holds no body, or one that does not match its
    `raw_body_bytes`: sending it would not be re-sending what arrived.
    """
    if doc.get("raw_body_truncated"):
        return None
    text, encoded = doc.get("raw_body"), doc.get("raw_body_base64")
    if isinstance(text, str):
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:
            raise UnreadableDocumentError("raw_body is not encodable as UTF-8") from None
    elif isinstance(encoded, str):
        try:
            body = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise UnreadableDocumentError("raw_body_base64 is not valid base64") from None
    else:
        raise UnreadableDocumentError("neither raw_body nor raw_body_base64 holds a body")
    expected = doc.get("raw_body_bytes")
    if isinstance(expected, int) and not isinstance(expected, bool) and expected != len(body):
        raise UnreadableDocumentError(f"body holds {len(body)} bytes, raw_body_bytes says {expected}")
    return body


def partition_key_for(body: bytes) -> str | None:
    """The body's `account_id` when it is a JSON object holding one as a string of id length, else None.

    A longer or empty one would be rejected again as out of range, so which partition it reaches
    does not matter, and an oversized key is not worth risking the batch on.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    account = value.get(ACCOUNT_FIELD)
    if isinstance(account, str) and 0 < len(account) <= MAX_ID_LENGTH:
        return account
    return None


@dataclass(frozen=True)
class Redrive:
    """One body to re-send and the rejected document it came from."""

    doc_id: str
    reason: str
    body: bytes
    partition_key: str | None


@dataclass(frozen=True)
class PlannedBatch:
    """Bodies sharing one partition key, in first-enqueued order; the SDK may split it into several batches."""

    partition_key: str | None
    items: tuple[Redrive, ...]


@dataclass(frozen=True)
class Plan:
    """What to send, and what is set aside: truncated ids, and (id, why) of unreadable documents."""

    batches: tuple[PlannedBatch, ...]
    truncated: tuple[str, ...] = ()
    unreadable: tuple[tuple[str, str], ...] = ()

    @property
    def items(self) -> list[Redrive]:
        return [item for batch in self.batches for item in batch.items]


def _int_or(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _origin(doc: Mapping[str, Any]) -> tuple[str, str, int, int, str]:
    # Where the body first arrived: enqueued time, then its place in its partition and envelope.
    return (
        str(doc.get("enqueued_time") or ""),
        str(doc.get("partition") or ""),
        _int_or(doc.get("sequence_number"), -1),
        _int_or(doc.get("record_index"), -1),
        str(doc.get("id")),
    )


def plan(docs: Iterable[Mapping[str, Any]]) -> Plan:
    """Decode each document's body and group the bodies by partition key (pure; no SDK needed)."""
    groups: dict[str | None, list[tuple[tuple[str, str, int, int, str], Redrive]]] = {}
    truncated: list[str] = []
    unreadable: list[tuple[str, str]] = []
    for doc in docs:
        doc_id = str(doc.get("id"))
        try:
            body = decode_body(doc)
        except UnreadableDocumentError as exc:
            unreadable.append((doc_id, str(exc)))
            continue
        if body is None:
            truncated.append(doc_id)
            continue
        key = partition_key_for(body)
        item = Redrive(doc_id, str(doc.get("reason")), body, key)
        groups.setdefault(key, []).append((_origin(doc), item))
    batches = tuple(
        PlannedBatch(key, tuple(item for _, item in sorted(entries, key=lambda entry: entry[0])))
        for key, entries in groups.items()
    )
    return Plan(batches, tuple(truncated), tuple(unreadable))
