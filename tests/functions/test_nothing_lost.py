"""Nothing is lost: every transaction that enters ScoreTransactions leaves as exactly one document.

The property, checked on every delivery (and again on its redelivery): one scored document per
accepted transaction, one rejected document per rejected transaction or per event rejected whole,
and nothing else. The expected documents are computed here, independently of `shared/scoring/batch.py`,
from the contract's documented rules (`shared/contract/schema.py`, `shared/settings.py`): one per bare
event; for a body that decodes to an object holding `records`, one per record when it is a valid
envelope within the limits, else one for the whole event. Beyond the count, every document is
matched to the event (and record) it came from, every scored id is an input id and unique, every
rejected document names a field, a reason and a detail, keeps a raw body that decodes back to its
event's bytes (or to a JSON-equal record), and none is `internal_error`: that reason only comes
from the last-resort boundary in functions/score.py, so seeing it means a bug was hidden there.

Inputs are drawn from everything the contract accepts (ids of any printable Unicode, timestamps
in every accepted shape and year, numbers at their bounds, integers as floats, extra fields, no
label), from near misses of it, and from garbage (invalid JSON, non-UTF-8 bytes, deep nesting,
malformed envelopes), with ids repeated within and across batches and one or two partitions.
Each delivery runs through Microsoft's worker engine (`azure-functions-runtime`, the
`functions_worker` fixture) with host-shaped Event Hubs messages, and with the account-state
store on (BEHAVIOUR_STATE=memory), so id conflicts and redeliveries go through the real state.
"""

from __future__ import annotations

import base64
import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devhost.worker import Worker
from shared.behaviour import features as behaviour
from shared.behaviour import store as state_store
from shared.contract import schema as c
from shared.generation.generator import TransactionGenerator
from shared.settings import EVENT_HUBS_MAX_EVENT_BYTES, get_settings
from tests.invoke import Documents, score

pytestmark = pytest.mark.unit

# --- the contract's rules, restated for the oracle -----------------------------------------------

LATE_MS: Final = 720 * 3_600_000
"""EVENT_TIME_MAX_LATE_HOURS' default (settings): earlier than this before enqueued is `too_late`."""
EARLY_MS: Final = 8784 * 3_600_000
"""EVENT_TIME_MAX_EARLY_HOURS' default: later than this after enqueued is `too_early`."""
DECODER_MAX_DEPTH: Final = 1024
"""orjson's documented nesting limit for loads; RFC 8259 section 9 lets a parser set one."""
REQUIRED: Final = (c.ID_FIELD, c.TIMESTAMP_FIELD, c.ACCOUNT_FIELD, *c.FEATURE_FIELDS)
CONTRACT_KEYS: Final = frozenset({*REQUIRED, c.LABEL_FIELD})
STRING_CATEGORIES: Final = ("day_of_week", "category_recipient", "transaction_method", "transaction_type")
EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
ABSENT: Final = object()
"""A drawn label that leaves `is_fraud` out of the record."""


@dataclass(frozen=True)
class Caps:
    """The settings that decide how many documents an event becomes."""

    max_event_bytes: int = EVENT_HUBS_MAX_EVENT_BYTES
    max_records: int = c.DEFAULT_MAX_RECORDS
    max_transactions: int = 50_000


class NotJsonError(ValueError):
    """A body that is not one UTF-8 JSON document as the contract reads it."""


def _no_constant(name: str) -> Any:
    raise NotJsonError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotJsonError(f"{text[:20]} overflows a double")
    return value


def _finite_int(text: str) -> int:
    value = int(text)
    try:
        float(value)
    except OverflowError:
        raise NotJsonError(f"{text[:20]}... overflows a double") from None
    return value


def _check_decoded(value: Any) -> None:
    # Iterative: a document may be nested deeper than Python's recursion limit.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if any(0xD800 <= ord(ch) <= 0xDFFF for ch in item):
                raise NotJsonError("a lone surrogate is not a Unicode string (I-JSON, RFC 7493 section 2.1)")
        elif isinstance(item, list | dict):
            if depth > DECODER_MAX_DEPTH:
                raise NotJsonError("nested deeper than the decoder reads")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def strict_json(body: bytes) -> Any:
    """The JSON value of `body` under RFC 8259 as I-JSON (RFC 7493) restricts it; `NotJsonError` otherwise.

    UTF-8 without a BOM, no NaN or Infinity, every number a finite double, no lone surrogate,
    at most `DECODER_MAX_DEPTH` levels. The standard library parses, so orjson is not its own judge.
    """
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_finite_int)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise NotJsonError(str(exc)) from None
    _check_decoded(value)
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: numbers compared as the doubles they denote, booleans never numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Slot:
    """One expected document: a bare event, a record of a usable envelope, or an event rejected whole."""

    position: int
    index: int | None
    """The record's index in its envelope; None for a bare event or a whole-event rejection."""
    value: Any
    """The decoded transaction (or bare value); None when the event can only be rejected whole."""
    whole: bool
    """The event is rejected as a whole: undecodable, too large, an envelope at fault, over the limit."""


def expected_slots(bodies: Sequence[bytes], caps: Caps) -> list[Slot]:
    """The documents a delivery of `bodies` must become, by the contract's rules."""
    slots: list[Slot] = []
    held_so_far = 0
    for position, body in enumerate(bodies):
        whole = Slot(position, None, None, whole=True)
        if len(body) > caps.max_event_bytes:
            slots.append(whole)
            continue
        try:
            value = strict_json(body)
        except NotJsonError:
            slots.append(whole)
            continue
        envelope = type(value) is dict and c.ENVELOPE_FIELD in value
        # Only envelopes may be larger than one transaction (MAX_TRANSACTION_BYTES).
        if not envelope and len(body) > min(c.MAX_TRANSACTION_BYTES, caps.max_event_bytes):
            slots.append(whole)
            continue
        records = value[c.ENVELOPE_FIELD] if envelope else None
        # MAX_TRANSACTIONS_PER_INVOCATION counts transactions, an envelope with all its records.
        held = len(records) if type(records) is list else 1
        if held_so_far + held > caps.max_transactions:
            slots.append(whole)
            continue
        held_so_far += held
        if not envelope:
            slots.append(Slot(position, None, value, whole=False))
        elif len(value) != 1 or type(records) is not list or not records or len(records) > caps.max_records:
            slots.append(whole)
        else:
            slots.extend(Slot(position, i, record, whole=False) for i, record in enumerate(records))
    return slots


def expected_documents(bodies: Sequence[bytes], caps: Caps) -> int:
    """How many documents (scored plus rejected) a delivery of `bodies` must write."""
    return len(expected_slots(bodies, caps))


# --- what the contract accepts, drawn field by field -----------------------------------------------

# str.isprintable's refusals are the Unicode categories Other and Separator, except the ASCII space.
_printable = st.characters(
    exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"), exclude_characters="/\\?#"
) | st.just(" ")
EDGY_IDS: Final = ("...", ".a", "a.", "a b", "x" * 128, "\U0001f600" * 128, "é", "0", "%2e", "-", "null", "<>&'\"")
contract_ids = st.text(_printable, min_size=1, max_size=128).filter(
    lambda s: s.strip() == s and s not in c.DOT_IDS
) | st.sampled_from(EDGY_IDS)
BAD_IDS: Final = (
    "",
    ".",
    "..",
    " a",
    "a ",
    "a\n",
    "a\t b",
    "a/b",
    "a\\b",
    "a?b",
    "a#b",
    "x" * 129,
    "é" * 129,
    "a\x00b",
    "a\x7f",
    "a\x85",
    "a\u200b",
    "a\u2028",
    "a\ue000",
    "a\ufffe",
    "a\u00a0",
)


def _text_of_ms(t_ms: int) -> tuple[int, int, int, int, int, int, int]:
    days, rest = divmod(t_ms, 86_400_000)
    day = date.fromordinal(days + EPOCH_ORDINAL)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return day.year, day.month, day.day, hours, minutes, seconds, millis


@st.composite
def timestamp_at(draw: st.DrawFn, t_ms: int) -> tuple[str, int]:
    """A contract timestamp for about `t_ms` in any accepted shape, and the milliseconds it denotes."""
    year, month, day, hours, minutes, seconds, millis = _text_of_ms(t_ms)
    digits = draw(st.integers(0, 9))
    fraction = f"{millis:03d}"[:digits] + "".join(
        draw(st.lists(st.sampled_from("0123456789"), min_size=max(0, digits - 3), max_size=max(0, digits - 3)))
    )
    suffix = draw(st.sampled_from(["Z", "+00:00"]))
    text = f"{year:04d}-{month:02d}-{day:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}"
    text += f".{fraction}" if digits else ""
    # Digits past the millisecond are truncated, never rounded (shared/contract/timestamps.py).
    denoted = t_ms - millis + (int(fraction[:3].ljust(3, "0")) if digits else 0)
    return text + suffix, denoted


def _ms(moment: datetime) -> int:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@st.composite
def event_time(draw: st.DrawFn, enqueued_ms: int) -> tuple[str, int]:
    """A timestamp near its event's enqueued time, at the event-time bounds, or anywhere in 0001..9999."""
    where = draw(st.sampled_from(["near", "near", "near", "bound", "far"]))
    if where == "near":
        t_ms = enqueued_ms + draw(st.integers(-40 * 86_400_000, 370 * 86_400_000))
    elif where == "bound":
        t_ms = draw(st.sampled_from([enqueued_ms - LATE_MS, enqueued_ms + EARLY_MS])) + draw(st.integers(-2, 2))
    else:
        extremes = st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)])
        t_ms = _ms(draw(st.datetimes() | extremes))
    return draw(timestamp_at(t_ms))


def _float_values(field: str) -> st.SearchStrategy[Any]:
    low, high = c.FLOAT_RANGES[field]
    integral = [int(b) for b in (low, high) if float(b).is_integer()]
    return st.one_of(
        st.floats(low, high),
        st.integers(math.ceil(low), math.floor(high)),
        st.sampled_from([low, high, math.nextafter(low, math.inf), math.nextafter(high, -math.inf), *integral]),
    )


def _int_values(field: str) -> st.SearchStrategy[Any]:
    low, high = c.INT_RANGES[field]
    return st.integers(low, high) | st.integers(low, high).map(float)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
extra_fields = st.dictionaries(
    st.text(max_size=12).filter(lambda k: k not in CONTRACT_KEYS and k != c.ENVELOPE_FIELD), json_values, max_size=3
)


@dataclass(frozen=True)
class Tag:
    """What the test built a record to be: `valid`, `invalid` or `unknown`; and the time it denotes."""

    verdict: str
    t_ms: int | None = None


UNKNOWN: Final = Tag("unknown")


@st.composite
def valid_record(draw: st.DrawFn, enqueued_ms: int, ids: st.SearchStrategy[str]) -> tuple[dict[str, Any], Tag]:
    """A transaction the contract accepts, every field drawn from the contract's own domain."""
    timestamp, t_ms = draw(event_time(enqueued_ms))
    record: dict[str, Any] = {
        c.ID_FIELD: draw(ids),
        c.TIMESTAMP_FIELD: timestamp,
        c.ACCOUNT_FIELD: draw(contract_ids | st.sampled_from(["acct-1", "acct-2", "Konto ü 3"])),
    }
    for field in c.CONTINUOUS_FIELDS:
        record[field] = draw(_float_values(field))
    for field in c.PASSTHROUGH_FIELDS:
        record[field] = draw(_int_values(field))
    record["month"] = draw(st.integers(1, 12))
    for field in STRING_CATEGORIES:
        record[field] = draw(st.sampled_from(c.CATEGORIES[field]))
    label = draw(st.sampled_from([ABSENT, 0, 1, True, False, None]))
    if label is not ABSENT:
        record[c.LABEL_FIELD] = label
    record.update(draw(extra_fields))
    order = draw(st.permutations(list(record)))
    return {key: record[key] for key in order}, Tag("valid", t_ms)


BAD_TIMESTAMPS: Final = (
    "20260101T000000Z",
    "2026-W01-1T00:00:00Z",
    "2026-01-01T00:00:00,5Z",
    "2026-01-01T00:00:00+00:00:00",
    "2026-01-01T00:00:00.1234567890123456789Z",
    "2026-01-01T00:00:00Z\x00" + "x" * 40,
    "2026-01-01T00:00:00.1234567890Z",
    "2026-01-01T00:00:00.Z",
    "2026-01-01t00:00:00Z",
    "2026-01-01T00:00:00z",
    "2026-01-01 00:00:00Z",
    "2026-01-01T00:00:00-00:00",
    "2026-01-01T00:00:00+01:00",
    "2026-01-01T00:00:00.123+0000",
    "2026-01-01T00:00:00",
    "2026-01-01T00:00Z",
    "2026-01-01",
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "+2026-01-01T00:00:00Z",
    "2026-1-1T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2025-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-12-31T23:59:60Z",
    "\u0662\u0660\u0662\u0666-01-01T00:00:00Z",
    "2026-01-01T00:00:00Z\n",
    " 2026-01-01T00:00:00Z",
    "",
)
WRONG_TYPES: Final[dict[str, tuple[Any, ...]]] = {
    **dict.fromkeys((c.ID_FIELD, c.ACCOUNT_FIELD, c.TIMESTAMP_FIELD), (1, 1.5, True, None, [], {}, ["x"])),
    **dict.fromkeys(c.CONTINUOUS_FIELDS, ("1.0", True, False, None, [], {}, [1.0])),
    **dict.fromkeys(c.PASSTHROUGH_FIELDS, (True, False, "1", 0.5, [], {}, None)),
    "month": (1.0, True, "1", "january", None, [], 12.0),
    **dict.fromkeys(STRING_CATEGORIES, (1, True, None, [], {}, "Monday", "monday ", "", "ONLINE", "unknown")),
    c.LABEL_FIELD: (2, -1, "1", "true", 0.0, 1.0, 0.5, [], {}),
}
OUT_OF_RANGE: Final[dict[str, tuple[Any, ...]]] = {
    "amount": (math.nextafter(0.01, 0.0), 0, 0.0, -0.0, -1, math.nextafter(1e6, math.inf), 1_000_001, 1e300),
    "old_balance": (math.nextafter(-1e6, -math.inf), -1_000_001, math.nextafter(1e8, math.inf), 100_000_001),
    "income": (-5e-324, -1, math.nextafter(1e7, math.inf), 10_000_001, -1e300),
    **{
        field: (low - 1, high + 1, float(high + 1), 2**63, 2**64 + 1, -(2**63) - 1)
        for field, (low, high) in c.INT_RANGES.items()
    },
    "month": (0, 13, -1, 2**64),
}
CONTROL_CHARS: Final = ("\x00", "\x1f", "\x7f", "\x85", "\u200b", "\u2028", "\ue000", "\t", "\n")


@st.composite
def mutated_record(draw: st.DrawFn, enqueued_ms: int, ids: st.SearchStrategy[str]) -> tuple[Any, Tag]:
    """A valid transaction broken in one way: a near miss the contract must refuse (or the body must fail)."""
    record, _ = draw(valid_record(enqueued_ms, ids))
    kind = draw(
        st.sampled_from(
            ["remove", "wrong_type", "range", "bad_id", "timestamp", "control", "nested", "huge", "surrogate"]
        )
    )
    if kind == "remove":
        del record[draw(st.sampled_from(REQUIRED))]
    elif kind == "wrong_type":
        field = draw(st.sampled_from(sorted(WRONG_TYPES)))
        record[field] = draw(st.sampled_from(WRONG_TYPES[field]))
    elif kind == "range":
        field = draw(st.sampled_from(sorted(OUT_OF_RANGE)))
        record[field] = draw(st.sampled_from(OUT_OF_RANGE[field]))
    elif kind == "bad_id":
        record[draw(st.sampled_from([c.ID_FIELD, c.ACCOUNT_FIELD]))] = draw(st.sampled_from(BAD_IDS))
    elif kind == "timestamp":
        record[c.TIMESTAMP_FIELD] = draw(st.sampled_from(BAD_TIMESTAMPS))
    elif kind == "control":
        field = draw(st.sampled_from([c.ID_FIELD, c.ACCOUNT_FIELD, c.TIMESTAMP_FIELD, *STRING_CATEGORIES]))
        text = record[field]
        at = draw(st.integers(0, len(text)))
        record[field] = text[:at] + draw(st.sampled_from(CONTROL_CHARS)) + text[at:]
    elif kind == "nested":
        record[draw(st.sampled_from(REQUIRED))] = draw(st.sampled_from([{"value": 1}, [1], {"records": []}]))
    elif kind == "huge":
        # Beyond any double: no JSON reader of the contract takes it, so the body is refused whole.
        record[draw(st.sampled_from([*REQUIRED, "extra"]))] = draw(st.sampled_from([10**400, -(10**309)]))
    else:
        # A lone surrogate, which `json.dumps` writes as the escape "\ud800" in the raw bytes.
        field = draw(st.sampled_from([c.ID_FIELD, c.ACCOUNT_FIELD, *STRING_CATEGORIES, "extra"]))
        record[field] = str(record.get(field, "")) + draw(st.sampled_from(["\ud800", "\udfff", "\udc00x"]))
    return record, Tag("invalid")


def _deep(depth: int, core: Any) -> Any:
    for _ in range(depth):
        core = [core]
    return core


DEPTHS: Final = st.sampled_from([252, 253, 254]) | st.integers(1, 400)
"""Nesting depths of a record's field, with orjson's writing limit (254 levels in all) among them."""


@st.composite
def odd_record(draw: st.DrawFn, enqueued_ms: int, ids: st.SearchStrategy[str]) -> tuple[Any, Tag]:
    """A record an envelope may carry that is no transaction: a scalar, an array, a nested envelope, deep nesting."""
    kind = draw(st.sampled_from(["scalar", "array", "envelope", "records_key", "deep_array", "deep_field", "object"]))
    if kind == "scalar":
        return draw(json_scalars), Tag("invalid")
    if kind == "array":
        return draw(st.lists(json_values, max_size=3)), Tag("invalid")
    if kind == "envelope":
        inner, _ = draw(valid_record(enqueued_ms, ids))
        return {c.ENVELOPE_FIELD: [inner]}, Tag("invalid")
    if kind == "records_key":
        # A transaction that also holds `records`: bare, an envelope at fault; in an envelope, one record.
        inner, _ = draw(valid_record(enqueued_ms, ids))
        return {**inner, c.ENVELOPE_FIELD: draw(st.sampled_from([[], [inner], None]))}, UNKNOWN
    if kind == "deep_array":
        return _deep(draw(DEPTHS), []), Tag("invalid")
    if kind == "deep_field":
        # A transaction carrying a deeply nested extra field (valid), or lacking a field (invalid).
        record, tag = draw(valid_record(enqueued_ms, ids))
        record["context"] = _deep(draw(DEPTHS), {"k": "v"})
        if draw(st.booleans()):
            del record[c.ACCOUNT_FIELD]
            tag = Tag("invalid")
        return record, tag
    return draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4)), UNKNOWN


def _record(enqueued_ms: int, ids: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[Any, Tag]]:
    return st.one_of(
        valid_record(enqueued_ms, ids),
        valid_record(enqueued_ms, ids),
        mutated_record(enqueued_ms, ids),
        odd_record(enqueued_ms, ids),
    )


# --- events and deliveries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One event body, and what the test built each of its transactions to be (None: nothing known)."""

    body: bytes
    tags: tuple[Tag, ...] | None = None


@st.composite
def encode(draw: st.DrawFn, value: Any) -> bytes:
    """`value` as JSON bytes, in any of the spellings a producer may use."""
    ascii_only = draw(st.booleans())
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" , ", " : ")]))
    text = json.dumps(value, ensure_ascii=ascii_only, separators=separators, allow_nan=False)
    # A lone surrogate written raw (ensure_ascii off) is not UTF-8: its bytes are garbage, too.
    return text.encode("utf-8", "surrogatepass")


@st.composite
def bare_event(draw: st.DrawFn, enqueued_ms: int, ids: st.SearchStrategy[str]) -> Event:
    """One transaction as the whole event body."""
    record, tag = draw(st.one_of(valid_record(enqueued_ms, ids), mutated_record(enqueued_ms, ids)))
    return Event(draw(encode(record)), (tag,))


@st.composite
def envelope_event(draw: st.DrawFn, enqueued_ms: int, ids: st.SearchStrategy[str], caps: Caps) -> Event:
    """An envelope of records, well formed or at fault in one of the ways the contract names."""
    records = draw(st.lists(_record(enqueued_ms, ids), min_size=1, max_size=min(8, caps.max_records + 2)))
    values, tags = [r for r, _ in records], tuple(t for _, t in records)
    shape = draw(st.sampled_from(["envelope"] * 6 + ["extra_key", "empty", "not_a_list", "duplicate_key", "cased"]))
    if shape == "envelope":
        return Event(draw(encode({c.ENVELOPE_FIELD: values})), tags)
    if shape == "extra_key":
        extra: dict[str, Any] = draw(st.sampled_from([{"id": "x"}, {"meta": {}}, {"records2": []}, {"": None}]))
        return Event(draw(encode({c.ENVELOPE_FIELD: values, **extra})))
    if shape == "empty":
        return Event(draw(encode({c.ENVELOPE_FIELD: []})))
    if shape == "not_a_list":
        return Event(draw(encode({c.ENVELOPE_FIELD: draw(st.sampled_from([None, {}, "[]", 1, True, values[0]]))})))
    if shape == "duplicate_key":
        # Both readers keep the last of two equal names, so the records are the second list's.
        first = json.dumps({c.ENVELOPE_FIELD: [values[0]]})[1:-1]
        return Event(b"{" + first.encode() + b"," + draw(encode({c.ENVELOPE_FIELD: values}))[1:], tags)
    return Event(draw(encode({"Records": values})))


@st.composite
def padded_event(draw: st.DrawFn, enqueued_ms: int, ids: st.SearchStrategy[str]) -> Event:
    """A valid transaction padded to about MAX_TRANSACTION_BYTES, bare (refused above it) or in an envelope."""
    record, tag = draw(valid_record(enqueued_ms, ids))
    record["pad"] = ""
    in_envelope = draw(st.booleans())
    value: Any = {c.ENVELOPE_FIELD: [record]} if in_envelope else record
    short = len(json.dumps(value, separators=(",", ":")))
    record["pad"] = "x" * max(0, c.MAX_TRANSACTION_BYTES - short + draw(st.integers(-1, 1)))
    return Event(json.dumps(value, separators=(",", ":")).encode(), (tag,))


DEEP_BODIES: Final = (
    b"[" * 300 + b"]" * 300,
    b"[" * 1024 + b"]" * 1024,
    b"[" * 1025 + b"]" * 1025,
    b"[" * 5000 + b"]" * 5000,
    b"[" * 300,
    b'{"records": ' + b"[" * 300 + b"]" * 300 + b"}",
    b'{"records": [' + b"[" * 1100 + b"]" * 1100 + b"]}",
)
SCALAR_BODIES: Final = (
    b"",
    b" ",
    b"null",
    b"true",
    b"0",
    b"-0.5",
    b'"text"',
    b"[]",
    b"{}",
    b"[{}]",
    b"NaN",
    b"Infinity",
    b"[-Infinity]",
    b"1e400",
    b'{"records": [1e400]}',
    b'{"records": [{"id": "\\ud800"}]}',
    b'{"records": [{"id": "\xed\xa0\x80"}]}',
    b"\xef\xbb\xbf{}",
    b"{}\x00",
    b'{"id": "x"}',
    b'{"records": []}',
    b'{"records": null}',
    b'{"records": [null]}',
    b"x" * 70_000,
    b"\x01" * 300_000,
    b'{"records": [{"pad": "' + b"\\u0001" * 100_000 + b'"}]}',
)


@st.composite
def garbage_event(draw: st.DrawFn, enqueued_ms: int, ids: st.SearchStrategy[str]) -> Event:
    """A body that is not a transaction: bytes, text, cut JSON, other encodings, scalars, deep nesting."""
    kind = draw(st.sampled_from(["bytes", "text", "cut", "latin1", "insert", "fixed", "deep", "array", "padded"]))
    if kind == "padded":
        return draw(padded_event(enqueued_ms, ids))
    if kind == "bytes":
        return Event(draw(st.binary(max_size=64)))
    if kind == "text":
        return Event(draw(st.text(max_size=40)).encode())
    if kind == "fixed":
        return Event(draw(st.sampled_from(SCALAR_BODIES)))
    if kind == "deep":
        return Event(draw(st.sampled_from(DEEP_BODIES)))
    record, _ = draw(valid_record(enqueued_ms, ids))
    body = draw(encode(record))
    if kind == "cut":
        return Event(body[: draw(st.integers(0, len(body) - 1))])
    if kind == "latin1":
        return Event(json.dumps({**record, "note": "café"}, ensure_ascii=False).encode("latin-1", "replace"))
    if kind == "insert":
        at = draw(st.integers(0, len(body)))
        return Event(body[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + body[at:])
    return Event(draw(encode([record])))


@dataclass(frozen=True)
class Delivery:
    """One invocation's input: the events of one partition, from a sequence number, with enqueued times."""

    partition: str
    first_sequence_number: int
    enqueued: tuple[datetime, ...]
    events: tuple[Event, ...]

    @property
    def bodies(self) -> list[bytes]:
        return [e.body for e in self.events]

    def invoke(self, worker: Worker) -> tuple[Documents, Documents]:
        return score(
            worker,
            self.bodies,
            partition=self.partition,
            first_sequence_number=self.first_sequence_number,
            enqueued=list(self.enqueued),
        )


@dataclass(frozen=True)
class Scenario:
    """Settings and one to three deliveries; `concurrent`: the first two run at once, as two partitions do."""

    caps: Caps
    deliveries: tuple[Delivery, ...]
    concurrent: bool


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Deliveries drawn from everything the contract accepts, its near misses and garbage, ids repeated."""
    caps = Caps(
        max_event_bytes=draw(st.sampled_from([EVENT_HUBS_MAX_EVENT_BYTES] * 6 + [1024, 2048, 4096])),
        max_records=draw(st.sampled_from([c.DEFAULT_MAX_RECORDS] * 6 + [1, 3, 6])),
        max_transactions=draw(st.sampled_from([50_000] * 6 + [1, 5, 12])),
    )
    pool = draw(st.lists(contract_ids, min_size=1, max_size=3, unique=True))
    ids = st.one_of(contract_ids, contract_ids, contract_ids, st.sampled_from(pool))
    base = draw(st.datetimes(datetime(2001, 1, 1), datetime(2099, 12, 31), timezones=st.just(UTC)))
    if draw(st.booleans()):
        base = base.replace(microsecond=0)  # whole seconds: the event-time bounds are exact, not within 1 µs
    deliveries: list[Delivery] = []
    earlier: list[tuple[dict[str, Any], Tag]] = []
    for n in range(draw(st.integers(1, 3))):
        start = base + timedelta(minutes=n)
        size = draw(st.integers(1, 10))
        enqueued = tuple(start + timedelta(milliseconds=draw(st.integers(0, 5000))) for _ in range(size))
        events: list[Event] = []
        for moment in enqueued:
            enqueued_ms = _ms(moment)
            kinds = ["bare", "bare", "envelope", "envelope", "garbage"] + (["copy", "conflict"] if earlier else [])
            kind = draw(st.sampled_from(kinds))
            if kind == "bare":
                event = draw(bare_event(enqueued_ms, ids))
            elif kind == "envelope":
                event = draw(envelope_event(enqueued_ms, ids, caps))
            elif kind == "garbage":
                event = draw(garbage_event(enqueued_ms, ids))
            else:
                record, tag = draw(st.sampled_from(earlier))
                if kind == "conflict":  # the same account and id with other content: a reused id
                    old = record["amount"]
                    record = {**record, "amount": draw(st.sampled_from([a for a in (0.01, 42.5, 1e6) if a != old]))}
                event = Event(draw(encode(record)), (tag,))
            events.append(event)
            if kind == "bare" and event.tags is not None and event.tags[0].verdict == "valid":
                earlier.append((orjson.loads(event.body), event.tags[0]))
        partition = draw(st.sampled_from(["0", "1"]))
        deliveries.append(Delivery(partition, draw(st.integers(0, 2**40)), enqueued, tuple(events)))
    concurrent = len(deliveries) >= 2 and deliveries[0].partition != deliveries[1].partition and draw(st.booleans())
    return Scenario(caps, tuple(deliveries), concurrent)


# --- the property ---------------------------------------------------------------------------------------


def _raw_bytes(doc: dict[str, Any]) -> bytes:
    if doc["raw_body"] is not None:
        return str(doc["raw_body"]).encode("utf-8")
    return base64.b64decode(doc["raw_body_base64"], validate=True)


def _when(t_ms: int, enqueued: datetime) -> str | None:
    """Where `t_ms` falls against the event-time bounds; None on a bound the float comparison may round."""
    micros = (enqueued - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    exact = micros % 1_000_000 == 0
    late = t_ms * 1000 - (micros - LATE_MS * 1000)
    early = t_ms * 1000 - (micros + EARLY_MS * 1000)
    if (late == 0 or early == 0) and not exact:
        return None
    if late < 0:
        return c.TIMESTAMP_FIELD + ":too_late"
    if early > 0:
        return c.TIMESTAMP_FIELD + ":too_early"
    return "in"


def _ids_in(scenario: Scenario) -> Counter[str]:
    """Every string id any object of the scenario carries (records of envelopes too), with repeats."""
    ids: Counter[str] = Counter()
    for delivery in scenario.deliveries:
        for body in delivery.bodies:
            try:
                value = strict_json(body)
            except NotJsonError:
                continue
            inner = value.get(c.ENVELOPE_FIELD) if type(value) is dict else None
            for item in [value, *(inner if type(inner) is list else [])]:
                if type(item) is dict and isinstance(item.get(c.ID_FIELD), str):
                    ids[item[c.ID_FIELD]] += 1
    return ids


def check_delivery(delivery: Delivery, caps: Caps, scored: Documents, rejected: Documents, ids: Counter[str]) -> None:
    """Each expected document is there exactly once, matched to its event and record, and says why."""
    bodies = delivery.bodies
    slots = expected_slots(bodies, caps)
    assert len(scored) + len(rejected) == len(slots) == expected_documents(bodies, caps)
    internal = [d for d in rejected if d["reason"] == "internal_error"]
    assert not internal, f"the last-resort boundary rejected the batch: {internal[0]['detail']}"
    by_event: defaultdict[int, list[Slot]] = defaultdict(list)
    for slot in slots:
        by_event[slot.position].append(slot)
    rejected_at: dict[tuple[int, int | None], dict[str, Any]] = {}
    for doc in rejected:
        for key in ("reason", "field", "detail"):
            assert isinstance(doc[key], str), f"rejected document without {key}: {doc}"
            assert doc[key], f"rejected document with an empty {key}: {doc}"
        assert doc["partition"] == delivery.partition
        position = doc["sequence_number"] - delivery.first_sequence_number
        where = (position, doc["record_index"])
        assert where not in rejected_at, f"two rejected documents for event {position}, record {where[1]}"
        rejected_at[where] = doc
        found = next((s for s in by_event[position] if s.index == doc["record_index"]), None)
        assert found is not None, f"a rejected document for nothing that entered: {where} ({doc['reason']})"
        slot = found
        raw = _raw_bytes(doc)
        if slot.index is None:
            assert raw == bodies[position], f"event {position}'s raw body does not decode back to its bytes"
        else:
            try:
                kept = strict_json(raw)
            except NotJsonError as exc:
                raise AssertionError(
                    f"record {slot.index} of event {position} ({doc['reason']}) keeps a raw body that is not JSON "
                    f"({exc}): {raw[:80]!r}"
                ) from None
            assert json_equal(kept, slot.value), f"record {slot.index} of event {position} is not kept as it came"
    assert len({d["id"] for d in rejected}) == len(rejected)
    assert len({d["id"] for d in scored}) == len(scored), "two scored documents share an id"
    scored_by_event: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for doc in scored:
        assert doc["partition"] == delivery.partition
        scored_by_event[doc["sequence_number"] - delivery.first_sequence_number].append(doc)
    for position in sorted(set(by_event) | set(scored_by_event)):
        left = [s for s in by_event[position] if (position, s.index) not in rejected_at]
        assert not [s for s in left if s.whole], f"event {position} must be rejected whole, and was not"
        docs = scored_by_event[position]
        wanted = sorted(str(s.value.get(c.ID_FIELD)) for s in left if isinstance(s.value, dict))
        assert sorted(d["id"] for d in docs) == wanted, f"event {position}: scored {docs}, expected {wanted}"
        assert len(left) == len(docs), f"event {position}: {len(left)} records left unrejected, {len(docs)} scored"
    _check_tags(delivery, slots, scored_by_event, rejected_at, ids)


def _check_tags(
    delivery: Delivery,
    slots: list[Slot],
    scored_by_event: dict[int, list[dict[str, Any]]],
    rejected_at: dict[tuple[int, int | None], dict[str, Any]],
    ids: Counter[str],
) -> None:
    """What was built valid (with an id seen nowhere else) is scored, or rejected only for its event time."""
    for slot in slots:
        tags = delivery.events[slot.position].tags
        if slot.whole or tags is None:
            continue
        tag = tags[slot.index or 0]
        doc = rejected_at.get((slot.position, slot.index))
        if tag.verdict == "invalid":
            assert doc is not None, f"event {slot.position} record {slot.index}, built invalid, was scored"
        if tag.verdict != "valid" or ids[slot.value[c.ID_FIELD]] != 1 or tag.t_ms is None:
            continue
        when = _when(tag.t_ms, delivery.enqueued[slot.position])
        if when == "in":
            assert doc is None, f"a valid transaction was rejected: {doc and (doc['field'], doc['reason'])}"
            (scored_doc,) = [d for d in scored_by_event[slot.position] if d["id"] == slot.value[c.ID_FIELD]]
            _check_scored_as_sent(scored_doc, slot.value)
        elif when is not None:
            assert doc is not None, f"expected {when} for {slot.value[c.TIMESTAMP_FIELD]!r}: it was scored"
            assert f"{doc['field']}:{doc['reason']}" == when, (
                f"expected {when} for {slot.value[c.TIMESTAMP_FIELD]!r} enqueued {delivery.enqueued[slot.position]}"
            )


def _check_scored_as_sent(doc: dict[str, Any], record: dict[str, Any]) -> None:
    """The scored document carries the transaction's own values, converted only as the contract says."""
    for field in (c.ID_FIELD, c.TIMESTAMP_FIELD, c.ACCOUNT_FIELD, "month", *STRING_CATEGORIES):
        assert doc[field] == record[field], field
    for field in c.CONTINUOUS_FIELDS:
        assert doc[field] == float(record[field]), field
    for field in c.PASSTHROUGH_FIELDS:
        assert doc[field] == int(record[field]), field
        assert type(doc[field]) is int, field
    label = record.get(c.LABEL_FIELD)
    assert doc[c.LABEL_FIELD] == (None if label is None else int(label)), c.LABEL_FIELD
    assert 0.0 <= doc["fraud_probability"] <= 1.0
    assert doc["account_history"] == "read"


def _outcome(scored: Documents, rejected: Documents) -> tuple[list[str], list[tuple[str, str]]]:
    return sorted(d["id"] for d in scored), sorted((d["id"], d["reason"]) for d in rejected)


def _features(scored: Documents) -> dict[str, tuple[float, dict[str, float]]]:
    return {d["id"]: (d["fraud_probability"], d["behaviour"]) for d in scored}


def _exact_on_redelivery(scenario: Scenario) -> bool:
    # shared/behaviour/features.py: redelivery is exact while no account had more than STATE_LIMIT - WINDOW
    # newer payments stored before it; past that, an evicted payment's id is no longer checked.
    accounts: Counter[Any] = Counter()
    for delivery in scenario.deliveries:
        for slot in expected_slots(delivery.bodies, scenario.caps):
            if isinstance(slot.value, dict):
                accounts[json.dumps(slot.value.get(c.ACCOUNT_FIELD))] += 1
    return max(accounts.values(), default=0) <= behaviour.STATE_LIMIT - behaviour.WINDOW


def _apply(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_EVENT_BYTES", str(scenario.caps.max_event_bytes))
    monkeypatch.setenv("MAX_RECORDS_PER_ENVELOPE", str(scenario.caps.max_records))
    monkeypatch.setenv("MAX_TRANSACTIONS_PER_INVOCATION", str(scenario.caps.max_transactions))
    get_settings.cache_clear()
    state_store.reset()  # each example starts from empty account states, as a fresh process would


_TRANSACTION: Final = {
    "id": "0",
    "timestamp": "2026-12-02T00:00:00Z",
    "account_id": "0",
    "amount": 1.0,
    "old_balance": 0.0,
    "income": 0.0,
    "credit": 0,
    "marital_status": 0,
    "children": 0,
    "foreign_transaction": 0,
    "month": 1,
    "day_of_week": "monday",
    "category_recipient": "food_store",
    "transaction_method": "card",
    "transaction_type": "onsite",
}
# FAILS TODAY, found by this test and left failing on purpose for the lead: a record of an envelope
# nested more than 254 levels deep (here a `context` field of 253 arrays) is rejected with a raw
# body that is Python's repr, not JSON: shared/scoring/batch.py `_record_bytes` falls back to
# `repr(record)` when orjson refuses to write that deep. The duplicate_id document below keeps
# `{'id': '0', 'timestamp': ...` (single quotes), which decodes to nothing and cannot be re-driven
# (tools/redrive.py would send it back as invalid JSON), so the transaction is lost for re-driving.
DEEP_RECORD_KEPT_AS_REPR: Final = Scenario(
    Caps(),
    (
        Delivery(
            "0",
            0,
            (datetime(2026, 12, 2, tzinfo=UTC),),
            (Event(json.dumps({"records": [_TRANSACTION, {**_TRANSACTION, "context": _deep(253, {})}]}).encode()),),
        ),
    ),
    concurrent=False,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios())
@example(scenario=DEEP_RECORD_KEPT_AS_REPR)
def test_every_transaction_becomes_exactly_one_document(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch, scenario: Scenario
) -> None:
    """Scored + rejected is exactly the contract's count, per event and record, and a redelivery repeats it."""
    _apply(scenario, monkeypatch)
    ids = _ids_in(scenario)
    exact = _exact_on_redelivery(scenario)
    deliveries = list(scenario.deliveries)
    if scenario.concurrent:
        pair, deliveries = deliveries[:2], deliveries[2:]
        with ThreadPoolExecutor(max_workers=2) as pool:
            firsts = list(pool.map(lambda d: d.invoke(functions_worker), pair))
        for delivery, (scored, rejected) in zip(pair, firsts, strict=True):
            check_delivery(delivery, scenario.caps, scored, rejected, ids)
        for delivery, first in zip(pair, firsts, strict=True):
            again = delivery.invoke(functions_worker)
            check_delivery(delivery, scenario.caps, *again, ids)
            if exact:
                assert _outcome(*again) == _outcome(*first), "a redelivery changed which documents were written"
    for delivery in deliveries:
        scored, rejected = delivery.invoke(functions_worker)
        check_delivery(delivery, scenario.caps, scored, rejected, ids)
        again_scored, again_rejected = delivery.invoke(functions_worker)
        check_delivery(delivery, scenario.caps, again_scored, again_rejected, ids)
        if exact:
            assert _outcome(again_scored, again_rejected) == _outcome(scored, rejected), (
                "a redelivery changed which documents were written"
            )
            # The latest batch is exact under redelivery (shared/behaviour/features.py): same features, same score.
            assert _features(again_scored) == _features(scored)


# --- timestamps NumPy cannot read -------------------------------------------------------------------

NUMPY_UNREADABLE: Final = (
    "20260101T000000Z",
    "2026-W01-1T00:00:00Z",
    "2026-01-01T00:00:00,5Z",
    "2026-01-01T00:00:00+00:00:00",
    "2026-01-01T00:00:00.1234567890123456789Z",
    "2026-01-01T00:00:00Z\x00" + "x" * 60000,
)


@pytest.mark.parametrize("layout", ["bare", "envelope"])
def test_timestamps_numpy_cannot_read_lose_nothing_else(functions_worker: Worker, layout: str) -> None:
    """Timestamps `datetime.fromisoformat` reads but NumPy does not are rejected alone; the batch's 100 others score."""
    good = TransactionGenerator(seed=2718).generate(100)
    bad = [{**good[i], "id": f"bad-timestamp-{i}", c.TIMESTAMP_FIELD: text} for i, text in enumerate(NUMPY_UNREADABLE)]
    records = good + bad
    bodies = [orjson.dumps(r) for r in records] if layout == "bare" else [orjson.dumps({"records": records})]
    scored, rejected = score(functions_worker, bodies)
    assert sorted(d["id"] for d in scored) == sorted(r["id"] for r in good)
    assert [(d["field"], d["reason"]) for d in rejected] == [(c.TIMESTAMP_FIELD, "invalid_value")] * len(bad)
    for doc, record in zip(rejected, bad, strict=True):
        assert orjson.loads(_raw_bytes(doc)) == record


# --- ids reused across batches ---------------------------------------------------------------------


def test_same_content_is_a_redelivery_other_content_a_conflict(functions_worker: Worker) -> None:
    """A later batch repeating a stored payment scores it again; reusing its id with other content is id_conflict."""
    generator = TransactionGenerator(seed=31)
    first = generator.generate(12)
    fresh = generator.generate(3)
    scored, rejected = score(functions_worker, [orjson.dumps(r) for r in first], partition="0")
    assert len(scored) == 12
    assert rejected == []
    copies = first[:4]
    reused = [{**r, "amount": r["amount"] + 1.0} for r in first[4:8]]
    bodies = [orjson.dumps(r) for r in [*copies, *reused, *fresh]]
    scored, rejected = score(functions_worker, bodies, partition="1", first_sequence_number=500)
    assert sorted(d["id"] for d in scored) == sorted(r["id"] for r in [*copies, *fresh])
    assert sorted((d["field"], d["reason"]) for d in rejected) == [(c.ID_FIELD, "id_conflict")] * 4
    assert sorted(orjson.loads(_raw_bytes(d))["id"] for d in rejected) == sorted(r["id"] for r in reused)
