"""The transaction contract applied to a whole batch at once, with exactly `contract.validate`'s decisions.

`contract.validate` checks one decoded event in about 7 µs of Python, most of the scoring budget at
1,000 events per batch. Here each field is checked for the whole batch in a few C-level passes
(type sets, NumPy range checks, dict lookups). A pass never rejects anything: rows it cannot vouch
for go through `contract.validate` itself, which accepts them (with its own converted values) or
names the field and reason. So every decision and every rejection reason is `validate`'s; the
passes only spare the rows that are plainly valid from the per-row Python. Tests hold the two to
the same outcomes on generated, mutated and malformed events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import itemgetter
from typing import Any, Final

import numpy as np

from shared.contract import schema as c
from shared.contract import timestamps

IDENTITY_FIELDS: Final = (c.ID_FIELD, c.TIMESTAMP_FIELD, c.ACCOUNT_FIELD)
REQUIRED_FIELDS: Final = (*IDENTITY_FIELDS, *c.FEATURE_FIELDS)
DUPLICATE_ID: Final = c.Rejection(c.ID_FIELD, "duplicate_id", "id already seen earlier in this batch")

_LABEL_VALUES: Final = frozenset({0, 1, None})
_LABEL_TYPES: Final = frozenset({int, type(None)})
_NUMBER_TYPES: Final = frozenset({float, int})
_FORBIDDEN_ID_CHARS: Final = tuple(sorted(c.FORBIDDEN_ID_CHARS))
_ASCII_CONTROL: Final = bytes([*range(0x20), 0x7F])
# Stands in for rows already rejected (undecodable) or not objects, so that they do not knock every
# column off its fast path; such rows never reach the result.
_PLACEHOLDER: Final[dict[str, Any]] = {
    c.ID_FIELD: "placeholder",
    c.TIMESTAMP_FIELD: "2026-01-01T00:00:00Z",
    c.ACCOUNT_FIELD: "placeholder",
    **{field: c.FLOAT_RANGES[field][0] for field in c.CONTINUOUS_FIELDS},
    **{field: c.INT_RANGES[field][0] for field in c.PASSTHROUGH_FIELDS},
    **{field: c.CATEGORIES[field][0] for field in c.CATEGORIES},
}


@dataclass(frozen=True, slots=True)
class ValidBatch:
    """The accepted events as columns, in input order, and every rejection by input position."""

    positions: list[int]
    """Input position of each accepted event."""
    records: list[dict[str, Any]]
    """The accepted events' decoded objects."""
    ids: list[str]
    timestamps: list[str]
    account_ids: list[str]
    numbers: dict[str, np.ndarray]
    """Every feature field: float64 continuous, int64 passthrough, intp category codes (`encode`'s input)."""
    labels: list[int | None]
    merchant_ids: list[str | None]
    """Each accepted event's `merchant_id`, None where it names none."""
    canonical: bool
    """Every accepted record holds exactly the contract's fields, in the JSON types a scored document
    keeps (floats as floats, no booleans for integers): it can become the document as it is."""
    rejections: dict[int, c.Rejection]


def _id_ok(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= c.MAX_ID_LENGTH
        and value.isprintable()
        and not any(ch in value for ch in _FORBIDDEN_ID_CHARS)
        and value.strip() == value
        and value not in c.DOT_IDS
    )


def _printable(text: str) -> bool:
    if text.isascii():
        # For ASCII, printable means no control character; deleting them from the bytes is about
        # four times faster than str.isprintable's per-character table lookups.
        raw = text.encode("ascii")
        return len(raw.translate(None, _ASCII_CONTROL)) == len(raw)
    return text.isprintable()


def _bad_ids(values: Sequence[Any]) -> list[int]:
    if values and set(map(type, values)) == {str}:
        # Joined by "/", itself forbidden: the ids are free of forbidden characters exactly when the
        # joined string holds no other forbidden character and only the n - 1 separators; an empty
        # id shows as "//" or a separator at either end; printable exactly when every id is, and
        # then the only whitespace is " ", which starts or ends an id exactly when it touches a
        # separator or either end of the joined string.
        joined = "/".join(values)
        if (
            joined.count("/") == len(values) - 1
            and not any(ch in joined for ch in _FORBIDDEN_ID_CHARS if ch != "/")
            and "//" not in joined
            and joined[:1] not in ("", "/", " ")
            and joined[-1] not in ("/", " ")
            and "/ " not in joined
            and " /" not in joined
            and max(map(len, values)) <= c.MAX_ID_LENGTH
            and _printable(joined)
            and not any(dots in values for dots in c.DOT_IDS)
        ):
            return []
    return [i for i, value in enumerate(values) if not _id_ok(value)]


def _bad_timestamps(values: Sequence[Any]) -> list[int]:
    # The same definition as `contract.validate`'s (`timestamps.is_valid`), for the whole column.
    return timestamps.batch_ms(values)[1]


def _floats(values: Sequence[Any], field: str, bad: list[int]) -> tuple[np.ndarray, bool]:
    """The column as float64 (0 where unusable), appending rows out of contract to `bad`; and all-float."""
    types = set(map(type, values))
    array: np.ndarray | None = None
    if types <= _NUMBER_TYPES:
        try:
            array = np.fromiter(values, dtype=np.float64, count=len(values))
        except OverflowError:  # an integer beyond float range; validate rejects it its own way
            array = None
    if array is None:
        ok = [(type(v) is float or type(v) is int) and -1e308 < v < 1e308 for v in values]
        bad.extend(i for i, good in enumerate(ok) if not good)
        array = np.array([v if good else 0.0 for v, good in zip(values, ok, strict=True)], dtype=np.float64)
    low, high = c.FLOAT_RANGES[field]
    # NaN fails both comparisons, so it is sent to validate too.
    bad.extend(np.flatnonzero(~((array >= low) & (array <= high))).tolist())
    return array, types == {float}


def _ints(values: Sequence[Any], field: str, bad: list[int]) -> np.ndarray:
    low, high = c.INT_RANGES[field]
    if set(map(type, values)) == {int}:
        try:
            array = np.fromiter(values, dtype=np.int64, count=len(values))
        except OverflowError:
            pass
        else:
            bad.extend(np.flatnonzero(~((array >= low) & (array <= high))).tolist())
            return array
    # Booleans and integral floats are for validate to judge (and convert).
    ok = [type(v) is int and low <= v <= high for v in values]
    bad.extend(i for i, good in enumerate(ok) if not good)
    return np.array([v if good else low for v, good in zip(values, ok, strict=True)], dtype=np.int64)


def _codes(values: Sequence[Any], field: str, bad: list[int]) -> np.ndarray:
    codes = c.CATEGORY_CODES[field]
    # The string categories are dict keys, and only a string equals a string, so a hit proves the
    # type too. Months are int keys, which True and 1.0 would also hit: check their type first.
    wanted: type = int if field == "month" else str
    if wanted is str or set(map(type, values)) == {int}:
        try:
            # A miss yields None, which fromiter refuses with TypeError, as does an unhashable value.
            return np.fromiter(map(codes.get, values), dtype=np.intp, count=len(values))
        except TypeError:
            pass
    found = [codes.get(v) if type(v) is wanted else None for v in values]
    bad.extend(i for i, code in enumerate(found) if code is None)
    return np.array([0 if code is None else code for code in found], dtype=np.intp)


def _bad_labels(values: Sequence[Any]) -> list[int]:
    if set(map(type, values)) <= _LABEL_TYPES and set(values) <= _LABEL_VALUES:
        return []
    # Booleans are valid labels, but the scored document stores 0/1: validate converts them.
    return [i for i, v in enumerate(values) if not (v is None or (type(v) is int and v in (0, 1)))]


def _columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """One list per field, None where a row lacks the field (which then fails that field's check)."""
    # A list per field rather than a tuple per row: a thousand short-lived tuples would be a
    # thousand GC-tracked allocations, and with them a garbage collection, in every batch.
    try:
        columns = {field: list(map(itemgetter(field), rows)) for field in REQUIRED_FIELDS}
    except KeyError:
        columns = {field: list(map(dict.get, rows, repeat(field))) for field in REQUIRED_FIELDS}
    columns[c.LABEL_FIELD] = list(map(dict.get, rows, repeat(c.LABEL_FIELD)))
    columns[c.MERCHANT_FIELD] = list(map(dict.get, rows, repeat(c.MERCHANT_FIELD)))
    return columns


def _patch(tx: c.Transaction, i: int, columns: dict[str, list[Any]], numbers: dict[str, np.ndarray]) -> None:
    """Put validate's converted values for row i into the columns."""
    for field in IDENTITY_FIELDS:
        columns[field][i] = getattr(tx, field)
    for field in c.FEATURE_FIELDS:
        numbers[field][i] = getattr(tx, field)
    columns[c.LABEL_FIELD][i] = None if tx.is_fraud is None else int(tx.is_fraud)
    columns[c.MERCHANT_FIELD][i] = tx.merchant_id


def validate_batch(records: Sequence[object], rejected: Mapping[int, c.Rejection] | None = None) -> ValidBatch:
    """Validate decoded events as one batch; `rejected` names positions already rejected (not decodable).

    Decisions and reasons equal `contract.validate` row by row; in addition, an id seen earlier in
    the batch (among accepted events) is rejected as `duplicate_id`.
    """
    rejections = dict(rejected or {})
    n = len(records)
    rows: list[Any] = list(records)
    suspects: list[int] = []
    if rejections or set(map(type, rows)) != {dict}:
        for i, record in enumerate(rows):
            if i in rejections or type(record) is not dict:
                if i not in rejections:
                    suspects.append(i)
                rows[i] = _PLACEHOLDER

    columns = _columns(rows)
    suspects += _bad_ids(columns[c.ID_FIELD])
    suspects += _bad_ids(columns[c.ACCOUNT_FIELD])
    suspects += _bad_timestamps(columns[c.TIMESTAMP_FIELD])
    suspects += _bad_labels(columns[c.LABEL_FIELD])
    merchants = columns[c.MERCHANT_FIELD]
    if any(m is not None for m in merchants):
        present = [i for i, m in enumerate(merchants) if m is not None]
        suspects += [present[j] for j in _bad_ids([merchants[i] for i in present])]
    numbers: dict[str, np.ndarray] = {}
    all_floats = True
    for field in c.CONTINUOUS_FIELDS:
        numbers[field], floats_only = _floats(columns[field], field, suspects)
        all_floats = all_floats and floats_only
    for field in c.PASSTHROUGH_FIELDS:
        numbers[field] = _ints(columns[field], field, suspects)
    for field in c.CATEGORIES:
        numbers[field] = _codes(columns[field], field, suspects)

    patched = False
    for i in sorted(set(suspects).difference(rejections)):
        try:
            tx = c.validate(records[i])
        except c.InvalidTransactionError as exc:
            rejections[i] = exc.rejection
        else:
            _patch(tx, i, columns, numbers)
            patched = True

    ids = columns[c.ID_FIELD]
    keep = [i not in rejections for i in range(n)] if rejections else None
    accepted_ids = list(compress(ids, keep)) if keep is not None else ids
    if len(set(accepted_ids)) != len(accepted_ids):
        # Two events with one id would collapse into one Cosmos DB item and break the count.
        seen: set[str] = set()
        for i in range(n):
            if i in rejections:
                continue
            if ids[i] in seen:
                rejections[i] = DUPLICATE_ID
            else:
                seen.add(ids[i])
        keep = [i not in rejections for i in range(n)]

    def select(values: Sequence[Any]) -> list[Any]:
        return list(values) if keep is None else list(compress(values, keep))

    if keep is not None:
        mask = np.array(keep, dtype=bool)
        numbers = {field: values[mask] for field, values in numbers.items()}
    accepted: list[dict[str, Any]] = select(rows)
    labels = select(columns[c.LABEL_FIELD])
    # Each accepted unpatched record holds the required fields plus its label if present, so the
    # total only matches when no record carries an extra field.
    n_labelled = sum(map(dict.__contains__, accepted, repeat(c.LABEL_FIELD)))
    n_merchants = sum(map(dict.__contains__, accepted, repeat(c.MERCHANT_FIELD)))
    merchant_ids = select(merchants)
    # A merchant_id given as null is a field the document would keep as null: not canonical.
    exact_fields = sum(map(len, accepted)) == len(REQUIRED_FIELDS) * len(accepted) + n_labelled + n_merchants
    exact_fields = exact_fields and n_merchants == sum(m is not None for m in merchant_ids)
    return ValidBatch(
        positions=select(list(range(n))),
        records=accepted,
        ids=select(ids),
        timestamps=select(columns[c.TIMESTAMP_FIELD]),
        account_ids=select(columns[c.ACCOUNT_FIELD]),
        numbers=numbers,
        labels=labels,
        merchant_ids=merchant_ids,
        canonical=all_floats and not patched and exact_fields,
        rejections=rejections,
    )
