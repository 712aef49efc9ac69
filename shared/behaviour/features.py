"""Behavioural features of a payment from its own account's past only: one definition for training and serving.

A payment's features are a pure function of the payments of the same account strictly before it
in event time, ties broken by id: the last `WINDOW` of them within `HORIZON_MS`. Never the future,
never another account. Because nothing depends on arrival order or on how many times a payment was
seen, the same function gives the same values when history is replayed for training, when a batch
is redelivered, and when a batch arrives shuffled.

Per-account state is exactly what the definition needs: the account's most recent payments
(`STATE_LIMIT` of them, deduplicated by id) and its per-day totals, in the binary form of
`state_codec` (one Cosmos DB document per account). `replay` computes features for a whole history
at once (training); `score_batch_features` takes a batch and the states of its accounts and returns
features and the states of the accounts it changed (serving). Both run `_window`, so they cannot
drift apart; a test checks they agree on the same stream. With no history (an unknown account, or a
client that sends none), the features are those of an account's first payment, which training sees
for every new account and, by design, for a share of rows with history withheld (`model/training/`).

Exactness has two limits. One is set by the bound: a payment that arrives after more than
`STATE_LIMIT - WINDOW` (20) newer payments of its own account were stored *in earlier batches*
finds some of its predecessors evicted, and its features are computed from those still kept. The
latest batch is always exact when redelivered (Event Hubs redelivers from the last checkpoint): a
new state keeps the batch's payments and the `WINDOW` before the earliest of them, however many.
The other is set by the ids a state keeps, 64-bit hashes: two ids of one account with one hash are
one payment (odds of 1 in 2**64 a pair). Payments of one account in the very same millisecond are
ordered by id hash everywhere, so a late one lands among stored ones where replay puts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np

from shared.behaviour import days, merchants, state_codec
from shared.behaviour.state_codec import DAY_KEEP as DAY_KEEP
from shared.behaviour.state_codec import STATE_HARD_LIMIT as STATE_HARD_LIMIT
from shared.behaviour.state_codec import STATE_VERSION as STATE_VERSION
from shared.contract import schema as c
from shared.contract.timestamps import batch_ms

WINDOW: Final = 20
"""Prior payments the features read (the most recent ones within the horizon)."""
STATE_LIMIT: Final = 40
"""Payments kept per account: the window plus as many newer ones, so that a late or redelivered payment
still finds all its predecessors while no more than `STATE_LIMIT - WINDOW` newer payments of its account
were stored before it."""
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
HORIZON_MS: Final = 30 * DAY_MS
"""Payments older than this relative to the one scored are not its history."""
MAX_SPENT_SHARE: Final = 100.0

LIST_FEATURES: Final = (
    "history_count",
    "seconds_since_previous",
    "payments_last_hour",
    "amount_last_hour",
    "payments_last_day",
    "amount_last_day",
    "amount_to_usual",
    "new_recipient_category",
    "new_transaction_method",
    "new_transaction_type",
    "first_foreign",
    "balance_spent_last_hour",
)
"""Features read from the last `WINDOW` payments (`_window`)."""
DAY_FEATURES: Final = tuple(f"{what}_prior_{w}d" for w in days.WINDOWS_DAYS for what in ("payments", "mean_amount"))
"""Payments and their mean amount over the 1, 7 and 30 whole UTC days before the payment's own day,
as the handbook's customer windows (`days.py`): they reach past the last `WINDOW` payments."""
FEATURES: Final = (*LIST_FEATURES, *DAY_FEATURES)
"""Feature names, in the model's column order (appended after the seed's columns)."""

PAYMENT_FIELDS: Final = (
    "amount",
    "old_balance",
    "category_recipient",
    "transaction_method",
    "transaction_type",
    "foreign_transaction",
)


@dataclass(frozen=True)
class Payments:
    """Payments as columns: identity, event time and the fields the features read (categories as codes)."""

    id: np.ndarray  # object (str)
    account: np.ndarray  # object (str) or int
    t_ms: np.ndarray  # int64, ms since the Unix epoch
    amount: np.ndarray  # float64
    old_balance: np.ndarray  # float64
    category_recipient: np.ndarray  # int64 codes into contract.CATEGORY_RECIPIENTS
    transaction_method: np.ndarray
    transaction_type: np.ndarray
    foreign_transaction: np.ndarray

    def __len__(self) -> int:
        return int(self.t_ms.size)

    @classmethod
    def of(
        cls,
        ids: Sequence[str] | np.ndarray,
        accounts: Sequence[Any] | np.ndarray,
        t_ms: Sequence[int] | np.ndarray,
        columns: Mapping[str, Sequence[Any] | np.ndarray],
    ) -> Payments:
        """From ids, accounts, event times and contract columns (`features.encode`'s form)."""
        return cls(
            id=np.asarray(ids, dtype=object),
            account=np.asarray(accounts),
            t_ms=np.asarray(t_ms, dtype=np.int64),
            amount=np.asarray(columns["amount"], dtype=np.float64),
            old_balance=np.asarray(columns["old_balance"], dtype=np.float64),
            category_recipient=np.asarray(columns["category_recipient"], dtype=np.int64),
            transaction_method=np.asarray(columns["transaction_method"], dtype=np.int64),
            transaction_type=np.asarray(columns["transaction_type"], dtype=np.int64),
            foreign_transaction=np.asarray(columns["foreign_transaction"], dtype=np.int64),
        )

    def take(self, rows: np.ndarray) -> Payments:
        return Payments(**{name: getattr(self, name)[rows] for name in self.__dataclass_fields__})


def timestamps_ms(timestamps: Sequence[str]) -> np.ndarray:
    """Contract timestamps as int64 ms since the epoch (`shared.contract.timestamps`); `ValueError` if any is not."""
    t_ms, bad = batch_ms(timestamps)
    if bad:
        raise ValueError(f"{len(bad)} of {len(timestamps)} are not contract timestamps, the first at {bad[0]}")
    return t_ms


def _sorted_order(code: np.ndarray, t_ms: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Rows in (account, event time, id hash) order: the one order every path uses, so ties resolve the same way.

    `code` groups rows by account (any integers; only equality matters). Payments of one account in
    one millisecond are ordered by their ids' 64-bit hashes (`state_codec.id_hashes`), because a
    stored state keeps only the hashes: serving can then place a late payment among stored ones of
    its millisecond exactly where replay does. Hashes are computed only when such ties exist, which
    is rare; ids with one hash are then ordered by id, so copies of a payment stay next to each other.
    """
    order: np.ndarray = np.lexsort((t_ms, code))
    c_sorted, t_sorted = code[order], t_ms[order]
    if np.any((c_sorted[1:] == c_sorted[:-1]) & (t_sorted[1:] == t_sorted[:-1])):
        h = state_codec.id_hashes(ids)
        order = np.lexsort((h, t_ms, code))
        h_sorted = h[order]
        if np.any(
            (code[order][1:] == code[order][:-1])
            & (t_ms[order][1:] == t_ms[order][:-1])
            & (h_sorted[1:] == h_sorted[:-1])
        ):
            _, id_rank = np.unique(ids, return_inverse=True)
            order = np.lexsort((id_rank, h, t_ms, code))
    return order


_LAGS: Final = np.arange(1, WINDOW + 1, dtype=np.int64)


def _window(p: Payments, same: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Features of the payments at `rows` of `p`, which is sorted by (account, time, id) and free of duplicates.

    `same` holds an account code per row (equal codes = same account). Lag k of a row is the row k
    places before it; its predecessors within the window form a prefix of the lags, because an
    account's rows are contiguous and ever older. Sums run lag by lag, from the payment's own amount,
    so two calls that see the same predecessors for a payment return the same bits for it, whatever
    else they hold.
    """
    n = rows.size
    t, amount, balance = p.t_ms[rows], p.amount[rows], p.old_balance[rows]
    # Lags run down the first axis (lag k is row k - 1), so each lag's values are contiguous.
    lag = rows - _LAGS[:, None]
    ok = lag >= 0
    lag = np.maximum(lag, 0)
    dt = t - p.t_ms[lag]
    ok &= (same[lag] == same[rows]) & (dt < HORIZON_MS)
    count = ok.sum(axis=0)
    known = count > 0
    hour = ok & (dt < HOUR_MS)
    day = ok & (dt < DAY_MS)
    prior_amount = p.amount[lag]
    hour_n, day_n = hour.sum(axis=0), day.sum(axis=0)
    # Added lag by lag from the payment's own amount: a running sum down the first axis (`cumsum` adds
    # strictly in order, one whole row of payments at a time).
    hour_amount = np.cumsum(np.vstack([amount, np.where(hour, prior_amount, 0.0)]), axis=0)[-1]
    day_amount = np.cumsum(np.vstack([amount, np.where(day, prior_amount, 0.0)]), axis=0)[-1]
    r = np.arange(n)
    # The balance before the oldest payment of the last hour: what the hour started with.
    hour_balance = np.where(hour_n > 0, p.old_balance[lag[np.maximum(hour_n - 1, 0), r]], balance)
    seen_category = (ok & (p.category_recipient[lag] == p.category_recipient[rows])).any(axis=0)
    seen_method = (ok & (p.transaction_method[lag] == p.transaction_method[rows])).any(axis=0)
    seen_type = (ok & (p.transaction_type[lag] == p.transaction_type[rows])).any(axis=0)
    seen_foreign = (ok & (p.foreign_transaction[lag] == 1)).any(axis=0)
    ordered = np.sort(np.where(ok, prior_amount, np.inf).T, axis=1)  # the known amounts lead each row
    usual = (ordered[r, np.maximum(count - 1, 0) // 2] + ordered[r, count // 2]) / 2.0
    out = np.empty((n, len(LIST_FEATURES)), dtype=np.float64)
    out[:, 0] = count
    out[:, 1] = np.where(known, dt[0], HORIZON_MS) / 1000.0
    out[:, 2] = hour_n + 1
    out[:, 3] = hour_amount
    out[:, 4] = day_n + 1
    out[:, 5] = day_amount
    out[:, 6] = np.where(known, amount / np.maximum(np.where(known, usual, 1.0), 0.01), 1.0)
    out[:, 7] = known & ~seen_category
    out[:, 8] = known & ~seen_method
    out[:, 9] = known & ~seen_type
    out[:, 10] = known & (p.foreign_transaction[rows] == 1) & ~seen_foreign
    out[:, 11] = np.minimum(hour_amount / np.maximum(hour_balance, 1.0), MAX_SPENT_SHARE)
    return out


class DaySums(Protocol):
    """Day totals to sum over windows (`days.DayTotals`, or a batch's states and payments in serving)."""

    def sums(self, code: np.ndarray, day: np.ndarray, back_from: int, back_to: int) -> tuple[np.ndarray, np.ndarray]:
        """Per query (owner code, day): the totals over days [day - back_from, day - back_to) of that owner."""
        ...


def _day_windows(totals: DaySums, code: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
    """`DAY_FEATURES` of payments (owner code, event time) from their owners' day totals (payments, cents)."""
    day = days.day_number(t_ms)
    out = np.zeros((day.size, len(DAY_FEATURES)), dtype=np.float64)
    for j, w in enumerate(days.WINDOWS_DAYS):
        n, amount = totals.sums(code, day, w, 0)
        out[:, 2 * j] = n
        out[:, 2 * j + 1] = np.where(n > 0, amount / np.maximum(n, 1) / 100.0, 0.0)
    return out


def no_history(columns: Mapping[str, Sequence[Any] | np.ndarray]) -> np.ndarray:
    """Features as for an account's first payment: what scoring uses when the account's history is unknown."""
    amount = np.asarray(columns["amount"], dtype=np.float64)
    balance = np.asarray(columns["old_balance"], dtype=np.float64)
    n = amount.size
    out = np.zeros((n, len(FEATURES)), dtype=np.float64)
    # The values `_window` gives a payment with no predecessor (a test holds the two together).
    out[:, 1] = HORIZON_MS / 1000.0
    out[:, 2] = 1.0
    out[:, 3] = amount
    out[:, 4] = 1.0
    out[:, 5] = amount
    out[:, 6] = 1.0
    out[:, 11] = np.minimum(amount / np.maximum(balance, 1.0), MAX_SPENT_SHARE)
    return out


def replay(p: Payments, chunk: int = 1 << 16) -> np.ndarray:
    """Features of every payment of a history (rows in any order), each from its own account's past.

    A payment seen twice (same id) counts once: its copies get the first copy's features.
    """
    _, code = np.unique(p.account, return_inverse=True)
    order = _sorted_order(code, p.t_ms, p.id)
    ids_sorted, code_sorted = p.id[order], code[order]
    first = np.ones(order.size, dtype=bool)
    # Duplicates of a payment share its account, time and id, so they sort next to each other; a
    # payment is (account, id), as serving keys it, so one id in two accounts is two payments.
    first[1:] = (ids_sorted[1:] != ids_sorted[:-1]) | (code_sorted[1:] != code_sorted[:-1])
    kept = order[first]
    s = p.take(kept)
    same = code[kept]
    feats = np.empty((kept.size, len(FEATURES)), dtype=np.float64)
    for start in range(0, kept.size, chunk):
        rows = np.arange(start, min(start + chunk, kept.size))
        feats[rows, : len(LIST_FEATURES)] = _window(s, same, rows)
    totals = days.DayTotals.of(same, days.day_number(s.t_ms), np.ones(kept.size, dtype=np.int64), days.cents(s.amount))
    feats[:, len(LIST_FEATURES) :] = _day_windows(totals, same, s.t_ms)
    # Each sorted position takes the features of the last kept copy at or before it (its first copy).
    owner = np.cumsum(first) - 1
    out = np.empty((order.size, len(FEATURES)), dtype=np.float64)
    out[order] = feats[owner]
    return out


# --- serving: states in, features and changed states out ---------------------------------------

_KEY_BITS: Final = 46
"""Bits of event time in a merge key (account code above them): spans up to 2,230 years, else ranked."""


def score_batch_features(
    batch: Payments,
    states: state_codec.States | Mapping[Any, object],
    hashes: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[Any, bytes]]:
    """Features of a batch (rows in any order) from its accounts' states; and the new state of each changed account.

    `states` are the accounts' decoded states (`state_codec.States`, as a store reads them), or a
    mapping account -> stored blob (None or absent: no state), decoded here; an unusable one raises
    `state_codec.UnusableStateError`. `hashes` are the batch ids' `state_codec.id_hashes`, when
    the caller has them. A payment already in the state, or repeated within the batch, is not
    counted again: its features are computed where it sits in event time, as on its first delivery.
    Only accounts the batch adds a payment to get a new state (blobs, `state_codec`): a batch
    redelivered whole changes nothing and writes nothing.

    Payments of one account in the very same millisecond are ordered by id hash, stored or not, as
    `replay` orders them (the state keeps ids as hashes, `state_codec`).
    """
    if len(batch) == 0:
        return np.empty((0, len(FEATURES)), dtype=np.float64), {}
    stored = states if isinstance(states, state_codec.States) else state_codec.load(states)
    h = state_codec.id_hashes(batch.id) if hashes is None else hashes
    batch_accounts = batch.account.tolist()
    seen = dict.fromkeys(batch_accounts)
    index = stored.index()
    picks = [i for a in seen if (i := index.get(a)) is not None]
    if picks != list(range(len(stored))):
        stored = stored.select(picks)
    code_of = {a: i for i, a in enumerate(stored.accounts)}
    for account in seen:
        code_of.setdefault(account, len(code_of))
    accounts = list(code_of)
    b_code = np.fromiter(map(code_of.__getitem__, batch_accounts), dtype=np.int64, count=len(batch_accounts))
    merge = _Merge.of(stored, batch, b_code, h)
    k = merge.kept
    wanted, back = np.unique(merge.batch_rows, return_inverse=True)
    feats = np.empty((wanted.size, len(FEATURES)), dtype=np.float64)
    feats[:, : len(LIST_FEATURES)] = _window(k, k.account, wanted)
    feats[:, len(LIST_FEATURES) :] = _day_windows(_DaySums.of(stored, merge), k.account[wanted], k.t_ms[wanted])
    changed = np.unique(k.account[merge.new])
    if changed.size == 0:
        return feats[back], {}
    blobs = _new_states(stored, merge, wanted, changed)
    return feats[back], dict(zip((accounts[c_] for c_ in changed.tolist()), blobs, strict=True))


@dataclass(frozen=True)
class _Merge:
    """Stored payments and a batch in one (account, event time) order, each payment once."""

    code: np.ndarray
    """Account code of each merged row (stored rows and batch rows, copies included)."""
    day: np.ndarray
    cents: np.ndarray
    counted: np.ndarray
    """Rows the day totals count: stored ones on their state's days, and the batch's new payments."""
    first: np.ndarray
    """Rows that are not a copy of the row before them."""
    kept: Payments
    """The merged payments, copies removed (`id` holds hashes, `account` codes)."""
    kept_stored: np.ndarray
    """The stored row each kept payment is, or -1 (a batch row)."""
    batch_rows: np.ndarray
    """The row of `kept` each batch row is (its first copy)."""
    new: np.ndarray
    """Rows of `kept` that are the batch's own new payments."""

    @classmethod
    def of(cls, stored: state_codec.States, batch: Payments, b_code: np.ndarray, h: np.ndarray) -> _Merge:
        counts = stored.counts()
        s_code = np.repeat(np.arange(len(stored)), counts)
        s_t, b_t = stored.t_ms, batch.t_ms
        s_key, b_key = _merge_keys(s_code, s_t, b_code, b_t)
        # Stored rows are already in (account, time, id hash) order; a batch row goes right after the
        # stored copy of itself (same account, time and id hash), else among the stored rows of its
        # account and millisecond by id hash, as replay orders them (`_sorted_order`).
        lo = np.searchsorted(s_key, b_key, side="left")
        hi = np.searchsorted(s_key, b_key, side="right")
        insert = lo.copy()
        one = np.flatnonzero(hi - lo == 1)  # the common tie: the stored copy of a redelivered payment
        insert[one] += stored.id[lo[one]] <= h[one]
        for j in np.flatnonzero(hi - lo > 1).tolist():
            tie = stored.id[lo[j] : hi[j]]
            match = np.flatnonzero(tie == h[j])
            insert[j] = lo[j] + (int(match[0]) + 1 if match.size else int(np.count_nonzero(tie < h[j])))
        order = np.lexsort((b_key, insert))
        tied = (insert[order][1:] == insert[order][:-1]) & (b_key[order][1:] == b_key[order][:-1])
        if tied.any():  # payments of one account in one millisecond: by id hash, then id, as replay orders them
            _, id_rank = np.unique(batch.id, return_inverse=True)
            order = np.lexsort((id_rank, h, b_key, insert))
        n_stored = s_t.size
        b_pos = insert[order] + np.arange(order.size)
        # Each stored row moves down by the batch rows inserted before it.
        s_pos = np.arange(n_stored) + np.cumsum(np.bincount(insert, minlength=n_stored + 1))[:n_stored]
        size = n_stored + order.size

        def merged(s_col: np.ndarray, b_col: np.ndarray) -> np.ndarray:
            out = np.empty(size, dtype=np.result_type(s_col, b_col))
            out[s_pos] = s_col
            out[b_pos] = b_col[order]
            return out

        m_code = merged(s_code, b_code)
        m_hash = merged(stored.id, h)
        m_t = merged(s_t, b_t)
        is_batch = np.zeros(size, dtype=bool)
        is_batch[b_pos] = True
        # Copies of one payment sit next to each other; the first is kept (a stored copy comes first).
        first = np.ones(size, dtype=bool)
        first[1:] = (m_hash[1:] != m_hash[:-1]) | (m_code[1:] != m_code[:-1])
        day = days.day_number(m_t)
        # A state stands for its payments on its DAY_KEEP days (older ones are only in its list).
        newest = days.day_number(s_t[np.maximum(np.cumsum(counts) - 1, 0)]) if n_stored else _NONE
        since = np.full(int(m_code.max()) + 1, np.iinfo(np.int64).min, dtype=np.int64)
        since[: newest.size] = newest - (DAY_KEEP - 1)
        counted = np.where(is_batch, first, day >= since[m_code])
        rows = np.empty(order.size, dtype=np.int64)
        rows[order] = b_pos
        columns = {
            "id": m_hash,
            "account": m_code,
            "t_ms": m_t,
            **{name: merged(getattr(stored, name), getattr(batch, name)) for name in PAYMENT_FIELDS},
        }
        src = merged(np.arange(n_stored), np.full(order.size, -1))
        cents = merged(stored.cents, days.cents(batch.amount))
        if first.all():
            kept = Payments(**columns)
            return cls(m_code, day, cents, counted, first, kept, src, rows, is_batch)
        owner = np.cumsum(first) - 1
        keep = np.flatnonzero(first)
        kept = Payments(**{name: values[keep] for name, values in columns.items()})
        return cls(m_code, day, cents, counted, first, kept, src[keep], owner[rows], is_batch[keep])


_NONE: Final = np.zeros(0, dtype=np.int64)


def _merge_keys(
    s_code: np.ndarray, s_t: np.ndarray, b_code: np.ndarray, b_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One int64 per row ordered as (account code, event time): code above the time's bits, or above its rank."""
    both = np.concatenate([s_t, b_t])
    low = both.min()
    codes = int(max(s_code.max(initial=0), b_code.max(initial=0))) + 1
    if int(both.max()) - int(low) < 1 << _KEY_BITS and codes < 1 << (62 - _KEY_BITS):
        return (s_code << _KEY_BITS) | (s_t - low), (b_code << _KEY_BITS) | (b_t - low)
    _, rank = np.unique(both, return_inverse=True)
    width = np.int64(rank.max() + 1)
    return s_code * width + rank[: s_t.size], b_code * width + rank[s_t.size :]


@dataclass(frozen=True)
class _DaySums:
    """Day totals of the batch's accounts as `days.DayTotals.sums` reads them: the states' day records, plus
    prefix sums over the merged payments they count (`_Merge.counted`), both keyed account code, day."""

    payment_key: np.ndarray
    payment_n: np.ndarray
    payment_cents: np.ndarray
    rest: days.DayTotals

    @classmethod
    def of(cls, stored: state_codec.States, merge: _Merge) -> _DaySums:
        shift = np.int64(state_codec.KEY_SHIFT)
        counted = merge.counted
        owner = np.repeat(np.arange(len(stored)), np.diff(stored.rest_starts))
        return cls(
            merge.code * shift + merge.day,
            state_codec.offsets(counted.astype(np.int64)),
            state_codec.offsets(np.where(counted, merge.cents, 0)),
            days.DayTotals.sorted(owner * shift + stored.rest_day, stored.rest_n, stored.rest_cents),
        )

    def sums(self, code: np.ndarray, day: np.ndarray, back_from: int, back_to: int) -> tuple[np.ndarray, np.ndarray]:
        """Per query (owner code, day): the totals over days [day - back_from, day - back_to) of that owner."""
        base = code * np.int64(state_codec.KEY_SHIFT) + day
        lo = np.searchsorted(self.payment_key, base - back_from, side="left")
        hi = np.searchsorted(self.payment_key, base - back_to, side="left")
        n, cents = self.rest.sums(code, day, back_from, back_to)
        return (
            n + self.payment_n[hi] - self.payment_n[lo],
            cents + self.payment_cents[hi] - self.payment_cents[lo],
        )


def _new_states(stored: state_codec.States, merge: _Merge, wanted: np.ndarray, changed: np.ndarray) -> list[bytes]:
    """The blobs of the `changed` account codes: each one's most recent `STATE_LIMIT` payments, and its day records.

    Never fewer than the batch's own payments of the account and the `WINDOW` before the earliest of
    them (`wanted`: the rows of `kept` the batch holds): the latest batch, redelivered after its
    state was written, then finds every predecessor it read the first time, however many payments
    the account made in it. The next batch trims the state back to `STATE_LIMIT`. A stored payment
    that keeps its predecessor keeps its record as it is.
    """
    k = merge.kept
    starts = np.searchsorted(k.account, changed, side="left")
    ends = np.searchsorted(k.account, changed, side="right")
    earliest = wanted[np.searchsorted(k.account[wanted], changed, side="left")]
    lows = np.maximum(starts, np.minimum(ends - STATE_LIMIT, earliest - WINDOW))
    lows = np.maximum(lows, ends - STATE_HARD_LIMIT)
    rows = state_codec.ranges(lows, ends)
    src = merge.kept_stored[rows]
    follows = np.zeros(rows.size, dtype=bool)
    follows[1:] = (src[:-1] >= 0) & (src[:-1] == src[1:] - 1)  # -1 marks a batch row: never a predecessor
    follows[state_codec.offsets(ends - lows)[:-1]] = False
    slot = stored.slot[np.maximum(src, 0)] if stored.slot.size else src
    copy_slot = np.where(follows, slot, -1)
    # Day records: the state's records on the new days, plus what the merged payments it counts but no
    # longer holds bring to those days.
    shift = np.int64(state_codec.KEY_SHIFT)
    since = np.full(int(merge.code.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    since[changed] = days.day_number(k.t_ms[ends - 1]) - (DAY_KEEP - 1)
    kept_rows = np.zeros(k.account.size, dtype=bool)
    kept_rows[rows] = True
    in_kept = np.zeros(merge.code.size, dtype=bool)
    in_kept[np.flatnonzero(merge.first)] = kept_rows
    dropped = merge.counted & ~in_kept & (merge.day >= since[merge.code])
    r_owner = np.repeat(np.arange(len(stored)), np.diff(stored.rest_starts))
    on_days = stored.rest_day >= since[r_owner]
    key, n, cents = state_codec.merge_totals(
        (r_owner[on_days] * shift + stored.rest_day[on_days], stored.rest_n[on_days], stored.rest_cents[on_days]),
        state_codec.run_totals(merge.code[dropped] * shift + merge.day[dropped], merge.cents[dropped]),
    )
    at = np.searchsorted(changed, key // shift)
    return state_codec.encode_many(
        k,
        rows,
        state_codec.offsets(ends - lows),
        copy_slot,
        stored.buffer,
        (state_codec.offsets(np.bincount(at, minlength=changed.size)), key % shift, n, cents),
    )


def id_conflicts(batch: Payments, states: state_codec.States, hashes: np.ndarray) -> np.ndarray:
    """Rows whose (account, id) the account's stored state holds with other content: a reused id, not a redelivery.

    Compared with the last stored payment of that id hash. Detected as far back as the state reaches
    (its last `STATE_LIMIT` payments or more); an id reused after its payment left the state, or
    across accounts, is not seen here.
    """
    out = np.zeros(len(batch), dtype=bool)
    if len(states) == 0 or len(batch) == 0:
        return out
    index = states.index()
    code = np.fromiter((index.get(a, -1) for a in batch.account.tolist()), dtype=np.int64, count=len(batch))
    # A bitmap of stored hashes sets most rows aside at once; the rest are compared with their account's ids.
    width = min(20, max(10, (16 * states.id.size).bit_length()))  # ~16 bits per stored id, at most 2**20
    shift = np.uint64(64 - width)
    bits = np.zeros(1 << width, dtype=bool)
    bits[(states.id >> shift).astype(np.int64)] = True
    maybe = np.flatnonzero((code >= 0) & bits[(hashes >> shift).astype(np.int64)])
    if maybe.size == 0:
        return out
    lo = states.starts[code[maybe]]
    width = int((states.starts[code[maybe] + 1] - lo).max())
    at = lo[:, None] + np.arange(width)
    inside = at < states.starts[code[maybe] + 1][:, None]
    equal = inside & (states.id[np.where(inside, at, 0)] == hashes[maybe][:, None])
    found = equal.any(axis=1)
    rows, hit = maybe[found], equal[found]
    j = lo[found] + (width - 1 - np.argmax(hit[:, ::-1], axis=1))  # the last stored payment with the hash
    differs = states.t_ms[j] != batch.t_ms[rows]
    for name in PAYMENT_FIELDS:
        differs |= getattr(states, name)[j] != getattr(batch, name)[rows]
    out[rows[differs]] = True
    return out


# --- reasons in an analyst's words --------------------------------------------------------------

_CATEGORY_WORDS: Final = {name: name.replace("_", " ") for name in c.CATEGORY_RECIPIENTS}


def describe(
    field: str, features: Mapping[str, float], record: Mapping[str, Any], delay_days: int = merchants.DEFAULT_DELAY_DAYS
) -> str:
    """One reason in words an analyst reads, from the payment's behavioural and merchant features and its record.

    `features` maps `FEATURES` (and `merchants.FEATURES`) names to this payment's values; `record` is
    the contract record (categories as their values). Static fields read as the field and its value.
    """
    if field in merchants.FEATURES:
        return merchants.describe(field, features, delay_days)
    value = features.get(field)
    if field == "history_count":
        n = int(value or 0)
        return "no account history" if n == 0 else f"{n} earlier payments on record"
    if field == "seconds_since_previous":
        seconds = float(value or 0.0)
        if seconds >= HORIZON_MS / 1000:
            return "first payment in 30 days"
        return f"{_duration(seconds)} after the previous payment"
    if field == "payments_last_hour":
        return f"{int(value or 1)} payments in the last hour"
    if field == "payments_last_day":
        return f"{int(value or 1)} payments in the last 24 hours"
    if field == "amount_last_hour":
        return f"{float(value or 0.0):,.2f} spent in the last hour"
    if field == "amount_last_day":
        return f"{float(value or 0.0):,.2f} spent in the last 24 hours"
    if field == "amount_to_usual":
        ratio = float(value or 1.0)
        return f"amount {ratio:.0f}x usual" if ratio >= 1.95 else f"amount {ratio:.2g}x usual"
    if field == "new_recipient_category":
        what = _CATEGORY_WORDS.get(str(record.get("category_recipient")), "this recipient category")
        return f"first payment to {what}" if value else f"usual recipient category ({what})"
    if field == "new_transaction_method":
        what = str(record.get("transaction_method", "this method")).replace("_", " ")
        return f"first {what} payment" if value else f"usual method ({what})"
    if field == "new_transaction_type":
        what = str(record.get("transaction_type", "this channel"))
        return f"first {what} payment" if value else f"usual channel ({what})"
    if field == "first_foreign":
        return "first foreign payment" if value else "foreign payments seen before"
    if field.startswith(("payments_prior_", "mean_amount_prior_")):
        w = int(field.rsplit("_", 1)[1][:-1])
        span = "the day" if w == 1 else f"the {w} days"
        n = int(features.get(f"payments_prior_{w}d", 0.0))
        if n == 0:
            return f"no payments in {span} before this one's"
        mean = float(features.get(f"mean_amount_prior_{w}d", 0.0))
        return f"{n} payments averaging {mean:,.2f} in {span} before this one's"
    if field == "balance_spent_last_hour":
        return f"{100.0 * float(value or 0.0):.0f}% of the balance spent in the last hour"
    shown = record.get(field)
    return f"{field.replace('_', ' ')}: {shown}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86_400:.0f} days"
