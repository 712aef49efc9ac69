"""The stored form of an account's behaviour state: one binary blob of fixed-width records, base64 in a document.

    python -m shared.behaviour.state_codec '<profile document, its "state" text, or that text alone>'

prints the state as JSON (`decode`): what a reader of the `profiles` container needs to inspect one.

Layout (version 3, little-endian): a sequence of 22-byte slots, so that the states of a whole batch,
concatenated, are one array of slots that decodes without cutting it per state (and encodes the
same way). Unused bytes are zero.

- header slot: version (u8, 3), flags (u8: 1 = wide payment records, 2 = wide day records), `n`
  payments (u8, 1-200), `m` day records (u8, 0-45), the first payment's event time (i64, ms since
  the Unix epoch).
- `n` payment records, oldest first, in the order the features read them (event time, then id).
  Narrow, one slot: id hash (u64, `id_hash`), ms since the previous payment (u32; 0 for the first),
  amount in cents (u32), old_balance in cents minus the previous payment's (i32; the first's own),
  categorical code (u16, `CODE_RADIX`). Wide, two slots, when a value does not fit the narrow form
  exactly (an amount that is not a whole number of cents, a gap of 50 days or more, a balance change
  of 21 million or more): id hash, event time (i64), amount and old_balance (f64), code (u16).
- `m` day records, oldest day first: for each UTC day of the 45 back from the newest payment's own
  day (`DAY_KEEP`) on which the account made payments the state no longer holds, how many and their
  cents. Narrow, three to a slot: days before the newest payment's day (u8), payments (u8), cents
  (u32); wide, one to a slot: the same with u64 counts.

The day totals a state stands for (`States.day_*`, what `features.py` sums over the 1, 7 and 30-day
windows) are those day records plus the state's own payments on each of the 45 days: a day whose
payments are all still in the state costs nothing to store.

Ids are kept as 64-bit hashes (FNV-1a of the id's UTF-8), 8 bytes where a UUID takes 36. Two
payments of one account whose ids share a hash are taken for one: a 1 in 2**64 chance per pair,
the documented limit. A stored blob is untrusted input: `decode_many` checks lengths, version,
flags, counts, ranges, order and codes, and an unusable blob (truncated, another version, hand
edited) is refused, never read in part.
"""

from __future__ import annotations

import binascii
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, pairwise
from typing import Any, Final, Protocol

import numpy as np
import orjson

from shared.behaviour import days
from shared.contract import schema as c

STATE_VERSION: Final = 3
"""3: the binary form of this module; version 2's JSON lists (and anything else) read as unusable and are rewritten."""
STATE_HARD_LIMIT: Final = 200
"""Payments a state may hold whatever the batch: `features._new_states` keeps more than `features.STATE_LIMIT`
only to keep the latest batch exact on redelivery, and a batch with one payment of an account dated long before
its others would otherwise keep everything in between (a state is one Cosmos DB item, at most 2 MB; 200 payments
are under 7 KB here). Past this, the oldest go first, and a redelivery of a batch that held more than
`STATE_HARD_LIMIT - features.WINDOW` payments of one account is no longer exact for its oldest."""
DAY_KEEP: Final = 45
"""Days of totals a state keeps, counted back from its newest payment's: the 30-day window plus 15 days, so a
payment up to 15 days older than its account's newest still finds its whole window."""

HEADER: Final = np.dtype([("version", "u1"), ("flags", "u1"), ("n", "u1"), ("m", "u1"), ("t0", "<i8")])
NARROW: Final = np.dtype([("id", "<u8"), ("dt", "<u4"), ("cents", "<u4"), ("balance", "<i4"), ("code", "<u2")])
WIDE: Final = np.dtype([("id", "<u8"), ("t", "<i8"), ("amount", "<f8"), ("balance", "<f8"), ("code", "<u2")])
DAYS_NARROW: Final = np.dtype([("back", "u1"), ("n", "u1"), ("cents", "<u4")])
DAYS_WIDE: Final = np.dtype([("back", "u1"), ("n", "<u8"), ("cents", "<u8")])
SLOT: Final = 22
"""Bytes per slot: a narrow payment record."""
DAYS_PER_SLOT: Final = 3
WIDE_PAYMENTS: Final = 1
WIDE_DAYS: Final = 2
CODE_RADIX: Final = (len(c.CATEGORY_RECIPIENTS), len(c.TRANSACTION_METHODS), len(c.TRANSACTION_TYPES), 2)
"""A payment's code is ((category * methods + method) * types + type) * 2 + foreign, from the contract's orders."""
CODE_LIMIT: Final = CODE_RADIX[0] * CODE_RADIX[1] * CODE_RADIX[2] * CODE_RADIX[3]
MS_RANGE: Final = (-62_135_596_800_000, 253_402_300_799_999)
"""0001-01-01 .. 9999-12-31 UTC: every contract timestamp."""
_MAX_DAY_N: Final = 1 << 40
_MAX_DAY_CENTS: Final = 1 << 56
_MAX_AMOUNT: Final = 1e15
"""Wide records' amounts beyond this (cents past 2**53) are refused: day totals sum cents exactly."""
KEY_SHIFT: Final = 1 << 22
"""Day totals are keyed owner * KEY_SHIFT + day, as `days.DayTotals` keys them."""
_FNV_OFFSET: Final = 0xCBF29CE484222325
_FNV_PRIME: Final = 0x100000001B3
_U64: Final = (1 << 64) - 1
_MAX_BLOB: Final = HEADER.itemsize + STATE_HARD_LIMIT * WIDE.itemsize + DAY_KEEP * DAYS_WIDE.itemsize + 2
_MIN_BLOB: Final = HEADER.itemsize + NARROW.itemsize
_EMPTY_I: Final = np.zeros(0, dtype=np.int64)


# --- ids ----------------------------------------------------------------------------------------


def id_hash(payment_id: str) -> int:
    """A payment id's 64-bit FNV-1a hash over its UTF-8 bytes: what a state keeps of the id."""
    h = _FNV_OFFSET
    for byte in payment_id.encode():
        h = ((h ^ byte) * _FNV_PRIME) & _U64
    return h


def id_hex(payment_id: str) -> str:
    """`id_hash` as the 16 hex digits `decode` shows."""
    return f"{id_hash(payment_id):016x}"


def id_hashes(ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """`id_hash` of many ids at once (uint64), one byte column at a time over all of them."""
    ids = list(ids)
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    text = "".join(ids)
    raw = text.encode()
    if len(raw) == len(text):  # ASCII: the lengths in characters are the lengths in bytes
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=n)
    else:
        encoded = [s.encode() for s in ids]
        raw = b"".join(encoded)
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
    width = int(lengths.max())
    flat = np.frombuffer(raw, dtype=np.uint8)
    if np.all(lengths == width):
        matrix = flat.reshape(n, width)
    else:
        matrix = np.zeros((n, width), dtype=np.uint8)
        row = np.repeat(np.arange(n), lengths)
        column = np.arange(flat.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        matrix[row, column] = flat
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    prime = np.uint64(_FNV_PRIME)
    uniform = np.all(lengths == width)
    for j in range(width):
        step = (h ^ matrix[:, j]) * prime  # uint64 arithmetic wraps, as FNV's modulo 2**64 does
        h = step if uniform else np.where(lengths > j, step, h)
    return h


def _codes(cat: np.ndarray, method: np.ndarray, kind: np.ndarray, foreign: np.ndarray) -> np.ndarray:
    _, methods, kinds, _ = CODE_RADIX
    code: np.ndarray = ((cat * methods + method) * kinds + kind) * 2 + foreign
    return code


def _uncode(code: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(category, method, type, foreign) of codes below `CODE_LIMIT`, by table."""
    cat, method, kind, foreign = (np.take(table, code) for table in _UNCODED)
    return cat, method, kind, foreign


def _uncoded() -> np.ndarray:
    _, methods, kinds, _ = CODE_RADIX
    code = np.arange(CODE_LIMIT, dtype=np.int64)
    foreign, rest = code % 2, code // 2
    kind, rest = rest % kinds, rest // kinds
    return np.stack([rest // methods, rest % methods, kind, foreign]).astype(np.int8)


_UNCODED: Final = _uncoded()


# --- decoded states -----------------------------------------------------------------------------

PAYMENT_COLUMNS: Final = (
    "id",
    "t_ms",
    "amount",
    "old_balance",
    "category_recipient",
    "transaction_method",
    "transaction_type",
    "foreign_transaction",
)


class PaymentColumns(Protocol):
    """Payments as columns (`features.Payments`, with `id` as hashes; or `States`)."""

    @property
    def id(self) -> np.ndarray: ...

    @property
    def t_ms(self) -> np.ndarray: ...

    @property
    def amount(self) -> np.ndarray: ...

    @property
    def old_balance(self) -> np.ndarray: ...

    @property
    def category_recipient(self) -> np.ndarray: ...

    @property
    def transaction_method(self) -> np.ndarray: ...

    @property
    def transaction_type(self) -> np.ndarray: ...

    @property
    def foreign_transaction(self) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class States(Mapping[str, dict[str, Any]]):
    """Several accounts' states as columns: account i's payments are rows `starts[i]:starts[i + 1]`.

    Payments are in the order the features read them (event time, then id), with their cents and the
    slot of `buffer` holding their narrow record (-1 for a wide one). Day records (`rest_*`, rows
    `rest_starts[i]:rest_starts[i + 1]`, days ascending) are what the state no longer holds of its
    `DAY_KEEP` days. As a mapping, account -> its state as plain lists (`decode`'s form, day totals
    whole), for reading one by eye; scoring reads the columns.
    """

    accounts: list[str]
    starts: np.ndarray
    id: np.ndarray  # uint64 hashes
    t_ms: np.ndarray
    amount: np.ndarray
    old_balance: np.ndarray
    category_recipient: np.ndarray
    transaction_method: np.ndarray
    transaction_type: np.ndarray
    foreign_transaction: np.ndarray
    cents: np.ndarray
    slot: np.ndarray
    rest_starts: np.ndarray
    rest_day: np.ndarray
    rest_n: np.ndarray
    rest_cents: np.ndarray
    buffer: bytes = b""
    """The blobs as read, one after the other (`slot` indexes its 22-byte slots)."""
    spans: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    """Account i's blob is slots `spans[i, 0]:spans[i, 1]` of `buffer`."""

    @classmethod
    def empty(cls) -> States:
        zero, none = np.zeros(1, dtype=np.int64), _EMPTY_I
        floats = np.zeros(0, dtype=np.float64)
        ids = np.zeros(0, dtype=np.uint64)
        return cls([], zero, ids, none, floats, floats, none, none, none, none, none, none, zero, none, none, none)

    def __len__(self) -> int:
        return len(self.accounts)

    def __iter__(self) -> Iterator[str]:
        return iter(self.accounts)

    def __contains__(self, account: object) -> bool:
        return account in self.index()

    def __getitem__(self, account: str) -> dict[str, Any]:
        i = self.index().get(account)
        if i is None:
            raise KeyError(account)
        lo, hi = int(self.starts[i]), int(self.starts[i + 1])
        out: dict[str, Any] = {"v": STATE_VERSION, "id": [f"{h:016x}" for h in self.id[lo:hi].tolist()]}
        out.update({name: getattr(self, name)[lo:hi].tolist() for name in PAYMENT_COLUMNS[1:]})
        # Whole day totals: the day records plus the state's own payments on its days.
        newest = int(days.day_number(self.t_ms[hi - 1 : hi])[0])
        pay_day = days.day_number(self.t_ms[lo:hi])
        recent = pay_day > newest - DAY_KEEP
        rlo, rhi = int(self.rest_starts[i]), int(self.rest_starts[i + 1])
        day, n, cents = merge_totals(
            run_totals(pay_day[recent], self.cents[lo:hi][recent]),
            (self.rest_day[rlo:rhi], self.rest_n[rlo:rhi], self.rest_cents[rlo:rhi]),
        )
        out.update({"day": day.tolist(), "day_n": n.tolist(), "day_cents": cents.tolist()})
        return out

    def index(self) -> dict[str, int]:
        """Account -> its position."""
        index: dict[str, int] | None = self.__dict__.get("_index_cache")
        if index is None:
            index = {a: i for i, a in enumerate(self.accounts)}
            object.__setattr__(self, "_index_cache", index)
        return index

    def counts(self) -> np.ndarray:
        return np.diff(self.starts)

    def blob(self, account: str) -> bytes:
        """The account's blob as read."""
        i = self.index()[account]
        return self.buffer[int(self.spans[i, 0]) * SLOT : int(self.spans[i, 1]) * SLOT]

    def select(self, picks: Sequence[int]) -> States:
        """The states of accounts `picks` (positions), in that order."""
        at = np.asarray(picks, dtype=np.int64)
        rows = ranges(self.starts[at], self.starts[at + 1])
        rest = ranges(self.rest_starts[at], self.rest_starts[at + 1])
        return States(
            accounts=[self.accounts[i] for i in at.tolist()],
            starts=offsets(np.diff(self.starts)[at]),
            **{name: getattr(self, name)[rows] for name in (*PAYMENT_COLUMNS, "cents", "slot")},
            rest_starts=offsets(np.diff(self.rest_starts)[at]),
            **{name: getattr(self, name)[rest] for name in ("rest_day", "rest_n", "rest_cents")},
            buffer=self.buffer,
            spans=self.spans[at],
        )


def offsets(counts: np.ndarray) -> np.ndarray:
    """0, then the running sum of `counts`: where each group starts, and the total."""
    out = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The concatenation of `arange(lo[i], hi[i])` over i."""
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return _EMPTY_I
    out: np.ndarray = np.arange(total, dtype=np.int64) + np.repeat(lo - (np.cumsum(counts) - counts), counts)
    return out


def run_totals(key: np.ndarray, cents: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, rows per key, cents per key) of rows whose keys are sorted (ascending, repeats adjacent)."""
    if key.size == 0:
        return _EMPTY_I, _EMPTY_I, _EMPTY_I
    heads = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return key[heads], np.diff(np.r_[heads, key.size]), np.add.reduceat(cents, heads)


def merge_totals(*parts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key, n, cents) tables, each sorted by key, summed into one sorted table with unique keys (integers: exact)."""
    key = np.concatenate([p[0] for p in parts])
    if key.size == 0:
        return _EMPTY_I, _EMPTY_I, _EMPTY_I
    order = np.argsort(key, kind="stable")  # a merge of sorted runs
    key = key[order]
    n = np.concatenate([p[1] for p in parts])[order]
    cents = np.concatenate([p[2] for p in parts])[order]
    heads = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    if heads.size == key.size:
        return key, n, cents
    return key[heads], np.add.reduceat(n, heads), np.add.reduceat(cents, heads)


# --- decoding -----------------------------------------------------------------------------------


class UnusableStateError(ValueError):
    """A stored state that is not a version-3 blob this code can read."""


def decode_many(accounts: Sequence[str], blobs: Sequence[object]) -> tuple[States, list[str]]:
    """The usable states among `blobs` (one per account: bytes, or anything else, which is unusable) as columns,
    and the accounts whose blob was refused."""
    fits = [type(blob) is bytes and _MIN_BLOB <= len(blob) <= _MAX_BLOB and not len(blob) % SLOT for blob in blobs]
    if all(fits):  # the usual case: decode them all at once
        chosen: list[bytes] = list(blobs)  # type: ignore[arg-type]
        names = list(accounts)
        refused: list[int] = []
    else:
        good = list(compress(range(len(blobs)), fits))
        chosen = [blobs[i] for i in good]  # type: ignore[misc]
        names = [accounts[i] for i in good]
        refused = [i for i, ok in enumerate(fits) if not ok]
    while True:
        states, bad = _decode(names, chosen)
        if not bad.any():
            return states, [accounts[i] for i in sorted(refused)] if refused else []
        # Rare: decode the others again without the unusable ones.
        kept = (~bad).tolist()
        positions = [i for i, ok in enumerate(fits) if ok]
        refused += [i for i, ok in zip(positions, kept, strict=True) if not ok]
        fits = [False] * len(blobs)
        for i, ok in zip(positions, kept, strict=True):
            fits[i] = ok
        chosen = list(compress(chosen, kept))
        names = list(compress(names, kept))


def from_texts(texts: Sequence[object]) -> list[object]:
    """Stored texts (base64, as documents hold them) as blobs; anything that is not valid base64 stays as it is
    (and reads as unusable)."""
    return [text if type(text) is bytes else _from_text(text) for text in texts]


def _from_text(text: object) -> object:
    if type(text) is not str or len(text) % 4 or not text.isascii():
        return text
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return text


def to_texts(blobs: Sequence[bytes]) -> list[str]:
    """Blobs as the base64 texts documents hold."""
    return [binascii.b2a_base64(blob, newline=False).decode("ascii") for blob in blobs]


def _decode(accounts: list[str], blobs: list[bytes]) -> tuple[States, np.ndarray]:
    """Columns of `blobs` (each a whole number of slots), and which are unusable (then the columns are not to be
    used: decode again without them)."""
    count = len(blobs)
    if count == 0:
        return States.empty(), np.zeros(0, dtype=bool)
    slots = np.fromiter(map(len, blobs), dtype=np.int64, count=count) // SLOT
    buf = b"".join(blobs)
    grid = np.frombuffer(buf, dtype=np.uint8).reshape(-1, SLOT)
    bounds = offsets(slots)
    head = np.take(grid, bounds[:-1], axis=0)
    header = head[:, : HEADER.itemsize].copy().view(HEADER).ravel()
    flags = header["flags"].astype(np.int64)
    n = header["n"].astype(np.int64)
    m = header["m"].astype(np.int64)
    t0 = header["t0"]
    wide = (flags & WIDE_PAYMENTS) != 0
    wide_days = (flags & WIDE_DAYS) != 0
    pay_slots = np.where(wide, 2, 1) * n
    day_slots = np.where(wide_days, m, -(-m // DAYS_PER_SLOT))
    bad = head[:, HEADER.itemsize :].any(axis=1)
    bad |= (header["version"] != STATE_VERSION) | (flags > (WIDE_PAYMENTS | WIDE_DAYS))
    bad |= (n < 1) | (n > STATE_HARD_LIMIT) | (m > DAY_KEEP) | (slots != 1 + pay_slots + day_slots)
    bad |= (t0 < MS_RANGE[0]) | (t0 > MS_RANGE[1])
    if bad.any():
        return States.empty(), bad
    pay_lo = bounds[:-1] + 1
    pay_hi = pay_lo + pay_slots
    starts = offsets(n)
    first = starts[:-1]
    owner = np.repeat(np.arange(count), n)
    last = starts[1:] - 1

    if not wide.any():  # the usual case: every payment in one slot
        slot = ranges(pay_lo, pay_hi)
        ids, t_ms, amount, balance, cents, code, dt = _narrow_payments(_records(grid, slot, NARROW), n, t0)
        bad |= dt[first] != 0
    else:
        ids = np.empty(owner.size, dtype=np.uint64)
        t_ms = np.empty(owner.size, dtype=np.int64)
        amount = np.empty(owner.size, dtype=np.float64)
        balance = np.empty(owner.size, dtype=np.float64)
        cents = np.empty(owner.size, dtype=np.int64)
        code = np.empty(owner.size, dtype=np.int64)
        slot = np.full(owner.size, -1, dtype=np.int64)
        row_wide = wide[owner]
        if not wide.all():
            narrow = ~wide
            rows = ~row_wide
            slot[rows] = ranges(pay_lo[narrow], pay_hi[narrow])
            columns = _narrow_payments(_records(grid, slot[rows], NARROW), n[narrow], t0[narrow])
            ids[rows], t_ms[rows], amount[rows], balance[rows], cents[rows], code[rows], dt = columns
            bad[np.flatnonzero(narrow)[dt[offsets(n[narrow])[:-1]] != 0]] = True
        pairs = np.take(grid, ranges(pay_lo[wide], pay_hi[wide]), axis=0).reshape(-1, 2 * SLOT)
        rec = pairs[:, : WIDE.itemsize].copy().view(WIDE).ravel()
        ids[row_wide] = rec["id"]
        code[row_wide] = rec["code"]
        t_ms[row_wide] = rec["t"]
        amount[row_wide] = rec["amount"]
        balance[row_wide] = rec["balance"]
        finite = np.isfinite(rec["amount"]) & np.isfinite(rec["balance"])
        cents[row_wide] = days.cents(np.where(finite, rec["amount"], 0.0))
        wide_owner = owner[row_wide]
        bad[wide_owner[pairs[:, WIDE.itemsize :].any(axis=1)]] = True
        bad[wide_owner[~finite | (np.abs(rec["amount"]) > _MAX_AMOUNT)]] = True
        bad[np.flatnonzero(wide)[t0[wide] != rec["t"][offsets(n[wide])[:-1]]]] = True
    out_of_order = np.r_[False, t_ms[1:] < t_ms[:-1]] & (owner == np.r_[-1, owner[:-1]])
    bad[owner[out_of_order]] = True
    bad |= (t_ms[last] < MS_RANGE[0]) | (t_ms[last] > MS_RANGE[1])
    bad[owner[code >= CODE_LIMIT]] = True
    cat, method, kind, foreign = _uncode(np.minimum(code, CODE_LIMIT - 1))

    # Day records: what the state no longer holds of each of its 45 days.
    back, rest_n, rest_cents, outside = _day_records(grid, pay_hi, day_slots, m, wide_days)
    bad |= outside
    day_owner = np.repeat(np.arange(count), m)
    day_bad = (back >= DAY_KEEP) | (rest_n < 1) | (rest_n > _MAX_DAY_N) | (rest_cents > _MAX_DAY_CENTS)
    # Oldest first: `back` falls strictly within a state.
    day_bad |= np.r_[False, back[1:] >= back[:-1]] & (day_owner == np.r_[-1, day_owner[:-1]])
    bad[day_owner[day_bad]] = True
    if bad.any():
        return States.empty(), bad
    newest = days.day_number(t_ms[last])
    states = States(
        accounts=list(accounts),
        starts=starts,
        id=ids,
        t_ms=t_ms,
        amount=amount,
        old_balance=balance,
        category_recipient=cat,
        transaction_method=method,
        transaction_type=kind,
        foreign_transaction=foreign,
        cents=cents,
        slot=slot,
        rest_starts=offsets(m),
        rest_day=newest[day_owner] - back,
        rest_n=rest_n,
        rest_cents=rest_cents,
        buffer=buf,
        spans=np.column_stack([bounds[:-1], bounds[1:]]),
    )
    return states, bad


def _records(grid: np.ndarray, slots: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """The records in `slots` of `grid` (rows of 22 bytes), as `dtype` (a gather of whole rows, then a view)."""
    return np.take(grid, slots, axis=0).view(dtype).ravel()


def _narrow_payments(
    rec: np.ndarray, n: np.ndarray, t0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(id, t_ms, amount, old_balance, cents, code, gap) of narrow records of states with `n` payments each."""
    first = offsets(n)[:-1]
    owner = np.repeat(np.arange(n.size), n)
    dt = rec["dt"].astype(np.int64)
    change = rec["balance"].astype(np.int64)
    # Times and balances are running sums within each state: one cumsum, less each state's start.
    t_run = np.cumsum(dt)
    b_run = np.cumsum(change)
    t_ms = t0[owner] + (t_run - (t_run - dt)[first][owner])
    balance = (b_run - (b_run - change)[first][owner]) / 100.0
    cents = rec["cents"].astype(np.int64)
    return rec["id"].copy(), t_ms, cents / 100.0, balance, cents, rec["code"].astype(np.int64), dt


def _day_records(
    grid: np.ndarray, lo: np.ndarray, day_slots: np.ndarray, m: np.ndarray, wide: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(days back, payments, cents) of every state's `m` day records, from its slots `lo:lo + day_slots`, and which
    states hold bytes outside their records."""
    total = int(m.sum())
    back = np.empty(total, dtype=np.int64)
    rest_n = np.empty(total, dtype=np.int64)
    rest_cents = np.empty(total, dtype=np.int64)
    bad = np.zeros(m.size, dtype=bool)
    row_wide = np.repeat(wide, m)
    narrow = np.flatnonzero(~wide & (m > 0))
    if narrow.size:
        cells = np.take(grid, ranges(lo[narrow], lo[narrow] + day_slots[narrow]), axis=0)
        width = DAYS_PER_SLOT * DAYS_NARROW.itemsize
        entries = cells[:, :width].reshape(-1, DAYS_NARROW.itemsize)
        # A state's records are the first m of the 3 per slot; the other entries are zero.
        entry_lo = offsets(DAYS_PER_SLOT * day_slots[narrow])[:-1]
        used = np.zeros(entries.shape[0], dtype=bool)
        used[ranges(entry_lo, entry_lo + m[narrow])] = True
        rec = entries[used].copy().view(DAYS_NARROW).ravel()
        rows = ~row_wide
        back[rows] = rec["back"]
        rest_n[rows] = rec["n"]
        rest_cents[rows] = rec["cents"]
        cell_state = np.repeat(narrow, day_slots[narrow])
        bad[cell_state[cells[:, width:].any(axis=1)]] = True
        bad[cell_state[np.flatnonzero((~used) & entries.any(axis=1)) // DAYS_PER_SLOT]] = True
    wide_with = np.flatnonzero(wide & (m > 0))
    if wide_with.size:
        cells = np.take(grid, ranges(lo[wide_with], lo[wide_with] + day_slots[wide_with]), axis=0)
        rec = cells[:, : DAYS_WIDE.itemsize].copy().view(DAYS_WIDE).ravel()
        back[row_wide] = rec["back"]
        rest_n[row_wide] = np.minimum(rec["n"], np.uint64(_MAX_DAY_N + 1)).astype(np.int64)
        rest_cents[row_wide] = np.minimum(rec["cents"], np.uint64(_MAX_DAY_CENTS + 1)).astype(np.int64)
        bad[np.repeat(wide_with, day_slots[wide_with])[cells[:, DAYS_WIDE.itemsize :].any(axis=1)]] = True
    return back, rest_n, rest_cents, bad


def load(states: Mapping[str, object]) -> States:
    """States given as account -> stored blob (bytes or base64 text; None: no state), decoded; any unusable one
    raises `UnusableStateError` (callers that must go on use `decode_many`)."""
    accounts = [a for a, s in states.items() if s is not None]
    raws = from_texts([states[a] for a in accounts])
    decoded, refused = decode_many(accounts, raws)
    if refused:
        raise UnusableStateError(
            f"{len(refused)} stored states are not version-{STATE_VERSION} states (account {refused[0]!r})"
        )
    return decoded


def decode(stored: object) -> dict[str, Any]:
    """One stored state (blob, base64 text, or a profile document holding it) as plain lists, for inspection.

    `id` holds the ids' hashes (16 hex digits, `id_hex`); `day`, `day_n` and `day_cents` are the day
    totals the state stands for (its payments plus its day records). `UnusableStateError` if unusable.
    """
    if isinstance(stored, Mapping):
        stored = stored.get("state")
    blob = _from_text(stored)
    states, refused = decode_many(["state"], [blob])
    if refused:
        raise UnusableStateError(f"not a version-{STATE_VERSION} state")
    return states["state"]


# --- encoding -----------------------------------------------------------------------------------


def encode_states(states: States) -> list[bytes]:
    """Each account's blob, every record encoded afresh."""
    rows = np.arange(states.t_ms.size)
    return encode_many(
        states,
        rows,
        states.starts,
        np.full(rows.size, -1),
        b"",
        (states.rest_starts, states.rest_day, states.rest_n, states.rest_cents),
    )


def encode_many(
    payments: PaymentColumns,
    rows: np.ndarray,
    starts: np.ndarray,
    copy_slot: np.ndarray,
    source: bytes,
    rest: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> list[bytes]:
    """Blobs of states: state i holds `payments` rows `rows[starts[i]:starts[i + 1]]` (reading order, 1 to
    `STATE_HARD_LIMIT` of them) and the day records `rest` = (starts, day, payments, cents), days ascending
    within the `DAY_KEEP` days back from the newest payment's day.

    A payment with `copy_slot` >= 0 keeps the narrow record in that slot of `source` as it is: the
    caller vouches that its predecessor in the new state is the one it had there. The others are
    encoded (narrow if every value of the state fits, else wide: then all its records are).
    """
    count = starts.size - 1
    if count == 0:
        return []
    n = np.diff(starts)
    if n.min() < 1 or n.max() > STATE_HARD_LIMIT:
        raise ValueError(f"a state holds 1 to {STATE_HARD_LIMIT} payments")
    first = starts[:-1]
    owner = np.repeat(np.arange(count), n)
    position = np.arange(rows.size) - first[owner]  # a payment's place within its state
    fresh = np.flatnonzero(copy_slot < 0)
    at = rows[fresh]
    before = rows[np.maximum(fresh - 1, 0)]
    leads = position[fresh] == 0
    t = payments.t_ms[at]
    dt = np.where(leads, 0, t - payments.t_ms[before])
    amount, balance = payments.amount[at], payments.old_balance[at]
    cents = np.rint(amount * 100.0)
    balance_cents = np.rint(balance * 100.0)
    exact = (cents / 100.0 == amount) & (balance_cents / 100.0 == balance)
    exact &= (cents >= 0) & (cents < 2**32) & (np.abs(balance_cents) < 2**52)
    change = np.where(leads, balance_cents, balance_cents - np.rint(payments.old_balance[before] * 100.0))
    fits = exact & (dt >= 0) & (dt < 2**32) & (change >= -(2**31)) & (change < 2**31)
    narrow = np.ones(count, dtype=bool)
    narrow[owner[fresh[~fits]]] = False

    r_starts, r_day, r_n, r_cents = rest
    m = np.diff(r_starts)
    if m.max(initial=0) > DAY_KEEP:
        raise ValueError(f"a state keeps at most {DAY_KEEP} day records")
    r_owner = np.repeat(np.arange(count), m)
    r_back = days.day_number(payments.t_ms[rows[starts[1:] - 1]])[r_owner] - r_day
    if np.any(r_back < 0) or np.any(r_back >= DAY_KEEP) or np.any(r_n < 1) or np.any(r_n > _MAX_DAY_N):
        raise ValueError("a day record is out of its state's days")
    if np.any(r_cents < 0) or np.any(r_cents > _MAX_DAY_CENTS):
        raise ValueError("a day record's cents are out of the stored range")
    narrow_days = np.ones(count, dtype=bool)
    narrow_days[r_owner[(r_n >= 256) | (r_cents >= 2**32)]] = False

    pay_slots = np.where(narrow, 1, 2) * n
    day_slots = np.where(narrow_days, -(-m // DAYS_PER_SLOT), m)
    bounds = offsets(1 + pay_slots + day_slots)
    head_slot = bounds[:-1]
    header = np.zeros(count, dtype=HEADER)
    header["version"] = STATE_VERSION
    header["flags"] = np.where(narrow, 0, WIDE_PAYMENTS) | np.where(narrow_days, 0, WIDE_DAYS)
    header["n"] = n
    header["m"] = m
    header["t0"] = payments.t_ms[rows[first]]
    # Every slot of the output is a row of one of these pieces; `source[where]` puts each in its place.
    where = np.empty(int(bounds[-1]), dtype=np.int64)
    pieces: list[np.ndarray] = []
    size = 0

    def put(piece: np.ndarray, slots: np.ndarray, at: np.ndarray | None = None) -> None:
        nonlocal size
        pieces.append(piece)
        where[slots] = size + (np.arange(piece.shape[0]) if at is None else at)
        size += piece.shape[0]

    row_narrow = narrow[owner]
    copied = np.flatnonzero((copy_slot >= 0) & row_narrow)
    if copied.size:
        slot_of = head_slot[owner[copied]] + 1 + position[copied]
        put(np.frombuffer(source, dtype=np.uint8).reshape(-1, SLOT), slot_of, copy_slot[copied])
    head = np.zeros((count, SLOT), dtype=np.uint8)
    head[:, : HEADER.itemsize] = header.view(np.uint8).reshape(count, HEADER.itemsize)
    put(head, head_slot)
    encode_narrow = row_narrow[fresh]
    if encode_narrow.any():
        pick = fresh[encode_narrow]
        rec = np.empty(pick.size, dtype=NARROW)
        rec["id"] = payments.id[rows[pick]]
        rec["dt"] = dt[encode_narrow]
        rec["cents"] = cents[encode_narrow]
        rec["balance"] = change[encode_narrow]
        rec["code"] = _code_of(payments, rows[pick])
        put(rec.view(np.uint8).reshape(-1, SLOT), head_slot[owner[pick]] + 1 + position[pick])
    if not narrow.all():
        pick = np.flatnonzero(~row_narrow)
        wide_rows = rows[pick]
        rec = np.zeros(pick.size, dtype=WIDE)
        rec["id"] = payments.id[wide_rows]
        rec["t"] = payments.t_ms[wide_rows]
        rec["amount"] = payments.amount[wide_rows]
        rec["balance"] = payments.old_balance[wide_rows]
        rec["code"] = _code_of(payments, wide_rows)
        pairs = np.zeros((pick.size, 2 * SLOT), dtype=np.uint8)
        pairs[:, : WIDE.itemsize] = rec.view(np.uint8).reshape(-1, WIDE.itemsize)
        at2 = head_slot[owner[pick]] + 1 + 2 * position[pick]
        put(pairs.reshape(-1, SLOT), np.column_stack([at2, at2 + 1]).ravel())
    if r_owner.size:
        day_lo = head_slot + 1 + pay_slots
        put(_day_slots(r_owner, m, day_slots, narrow_days, (r_back, r_n, r_cents)), ranges(day_lo, day_lo + day_slots))
    grid = np.take(np.concatenate(pieces) if len(pieces) > 1 else pieces[0], where, axis=0)
    buf = grid.tobytes()
    return [buf[lo:hi] for lo, hi in pairwise((bounds * SLOT).tolist())]


def _code_of(payments: PaymentColumns, rows: np.ndarray) -> np.ndarray:
    return _codes(
        *(
            getattr(payments, name)[rows].astype(np.int64)
            for name in ("category_recipient", "transaction_method", "transaction_type", "foreign_transaction")
        )
    ).astype(np.uint16)


def _day_slots(
    r_owner: np.ndarray,
    m: np.ndarray,
    day_slots: np.ndarray,
    narrow_days: np.ndarray,
    values: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """The day-record slots of all states, one after the other: narrow records three to a slot, wide ones one."""
    out = np.zeros((int(day_slots.sum()), SLOT), dtype=np.uint8)
    place = np.arange(r_owner.size) - offsets(m)[:-1][r_owner]
    first_slot = offsets(day_slots)[:-1][r_owner]
    row_narrow = narrow_days[r_owner]
    for narrow, dtype in ((True, DAYS_NARROW), (False, DAYS_WIDE)):
        pick = row_narrow if narrow else ~row_narrow
        if not pick.any():
            continue
        rec = np.empty(int(pick.sum()), dtype=dtype)
        for name, column in zip(("back", "n", "cents"), values, strict=True):
            rec[name] = column[pick]
        raw = rec.view(np.uint8).reshape(-1, dtype.itemsize)
        if narrow:
            cell = first_slot[pick] + place[pick] // DAYS_PER_SLOT
            byte = cell * SLOT + place[pick] % DAYS_PER_SLOT * dtype.itemsize
            out.reshape(-1)[byte[:, None] + np.arange(dtype.itemsize)] = raw
        else:
            out[(first_slot + place)[pick], : dtype.itemsize] = raw
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print a stored state (a profile document, its `state` text, or the text alone) as JSON."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m shared.behaviour.state_codec '<profile document JSON, or its state text>'")
        return 2
    arg = args[0].strip()
    try:
        stored: object = orjson.loads(arg) if arg.startswith(("{", '"')) else arg
    except orjson.JSONDecodeError:
        stored = arg
    try:
        state = decode(stored)
    except UnusableStateError as exc:
        print(f"unusable: {exc}")
        return 1
    print(orjson.dumps(state, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
