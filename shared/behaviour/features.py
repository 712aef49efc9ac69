"""Behavioural features of a payment from its own account's past only: one definition for training and serving.

A payment's features are a pure function of the payments of the same account strictly before it
in event time, ties broken by id: the last `WINDOW` of them within `HORIZON_MS`. Never the future,
never another account. Because nothing depends on arrival order or on how many times a payment was
seen, the same function gives the same values when history is replayed for training, when a batch
is redelivered, and when a batch arrives shuffled.

Per-account state is exactly what the definition needs: the account's most recent payments
(`STATE_LIMIT` of them, deduplicated by id), as a JSON-ready dict, so it can live in a Cosmos DB
document per account. `replay` computes features for a whole history at once (training);
`score_batch_features` takes a batch and the states of its accounts and returns features and the
new states (serving). Both run `_window`, so they cannot drift apart; a test checks they agree on
the same stream. With no history (an unknown account, or a client that sends none), the features
are those of an account's first payment, which training sees for every new account and, by
design, for a share of rows with history withheld (`model/training/`).

Exactness has one limit, set by the bound: a payment that arrives after more than
`STATE_LIMIT - WINDOW` (20) newer payments of its own account were stored *in earlier batches*
finds some of its predecessors evicted, and its features are computed from those still kept. The
latest batch is always exact when redelivered (Event Hubs redelivers from the last checkpoint): a
new state keeps the batch's payments and the `WINDOW` before the earliest of them, however many.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from shared.behaviour import days, merchants
from shared.contract import schema as c
from shared.contract.timestamps import batch_ms

WINDOW: Final = 20
"""Prior payments the features read (the most recent ones within the horizon)."""
STATE_LIMIT: Final = 40
"""Payments kept per account: the window plus as many newer ones, so that a late or redelivered payment
still finds all its predecessors while no more than `STATE_LIMIT - WINDOW` newer payments of its account
were stored before it."""
STATE_HARD_LIMIT: Final = 200
"""Payments a state may hold whatever the batch: `_new_states` keeps more than `STATE_LIMIT` only to
keep the latest batch exact on redelivery, and a batch with one payment of an account dated long
before its others would otherwise keep everything in between (a state is one Cosmos DB item, at most
2 MB; 200 payments are about 14 KB). Past this, the oldest go first, and a redelivery of a batch that
held more than `STATE_HARD_LIMIT - WINDOW` payments of one account is no longer exact for its oldest."""
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
HORIZON_MS: Final = 30 * DAY_MS
"""Payments older than this relative to the one scored are not its history."""
MAX_SPENT_SHARE: Final = 100.0
STATE_VERSION: Final = 2
"""2 added the day totals (`DAY_FIELDS`); a version-1 state is unusable and rewritten by the next write."""
DAY_KEEP: Final = 45
"""Days of totals a state keeps, counted back from its newest: the 30-day window plus 15 days, so a
payment up to 15 days older than its account's newest still finds its whole window."""
DAY_FIELDS: Final = ("day", "day_n", "day_cents")
"""Per-day totals in a state: day number (`days.day_number`), payments, amount in cents."""

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
    """Rows in (account, event time, id) order: the one order every path uses, so ties resolve the same way.

    `code` groups rows by account (any integers; only equality matters). Ids are ranked only when
    two payments of one account share a millisecond, which is rare, because ranking strings costs
    more than the rest of the sort.
    """
    order: np.ndarray = np.lexsort((t_ms, code))
    c_sorted, t_sorted = code[order], t_ms[order]
    if np.any((c_sorted[1:] == c_sorted[:-1]) & (t_sorted[1:] == t_sorted[:-1])):
        _, id_rank = np.unique(ids, return_inverse=True)
        order = np.lexsort((id_rank, t_ms, code))
    return order


_LAGS: Final = np.arange(1, WINDOW + 1, dtype=np.int64)


def _window(p: Payments, same: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Features of the payments at `rows` of `p`, which is sorted by (account, time, id) and free of duplicates.

    `same` holds an account code per row (equal codes = same account). Lag k of a row is the row k
    places before it; its predecessors within the window form a prefix of the lags, because an
    account's rows are contiguous and ever older. Sums run lag by lag (`cumsum`), so two calls that
    see the same predecessors for a payment return the same bits for it, whatever else they hold.
    """
    n = rows.size
    t, amount, balance = p.t_ms[rows], p.amount[rows], p.old_balance[rows]
    lag = rows[:, None] - _LAGS
    ok = lag >= 0
    lag = np.maximum(lag, 0)
    dt = t[:, None] - p.t_ms[lag]
    ok &= (same[lag] == same[rows][:, None]) & (dt < HORIZON_MS)
    count = ok.sum(axis=1)
    known = count > 0
    hour = ok & (dt < HOUR_MS)
    day = ok & (dt < DAY_MS)
    prior_amount = p.amount[lag]
    hour_n, day_n = hour.sum(axis=1), day.sum(axis=1)
    hour_amount = np.cumsum(np.column_stack([amount, np.where(hour, prior_amount, 0.0)]), axis=1)[:, -1]
    day_amount = np.cumsum(np.column_stack([amount, np.where(day, prior_amount, 0.0)]), axis=1)[:, -1]
    r = np.arange(n)
    # The balance before the oldest payment of the last hour: what the hour started with.
    hour_balance = np.where(hour_n > 0, p.old_balance[lag[r, np.maximum(hour_n - 1, 0)]], balance)
    seen_category = (ok & (p.category_recipient[lag] == p.category_recipient[rows][:, None])).any(axis=1)
    seen_method = (ok & (p.transaction_method[lag] == p.transaction_method[rows][:, None])).any(axis=1)
    seen_type = (ok & (p.transaction_type[lag] == p.transaction_type[rows][:, None])).any(axis=1)
    seen_foreign = (ok & (p.foreign_transaction[lag] == 1)).any(axis=1)
    ordered = np.sort(np.where(ok, prior_amount, np.inf), axis=1)  # the known amounts lead each row
    usual = (ordered[r, np.maximum(count - 1, 0) // 2] + ordered[r, count // 2]) / 2.0
    out = np.empty((n, len(LIST_FEATURES)), dtype=np.float64)
    out[:, 0] = count
    out[:, 1] = np.where(known, dt[:, 0], HORIZON_MS) / 1000.0
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


def _day_windows(totals: days.DayTotals, code: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
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


# --- serving: state in, features and state out -------------------------------------------------


def empty_state() -> dict[str, Any]:
    """The state of an account with no history yet."""
    return {
        "v": STATE_VERSION,
        "id": [],
        "t_ms": [],
        **{name: [] for name in PAYMENT_FIELDS},
        **{name: [] for name in DAY_FIELDS},
    }


def score_batch_features(
    batch: Payments, states: Mapping[Any, Mapping[str, Any] | None]
) -> tuple[np.ndarray, dict[Any, dict[str, Any]]]:
    """Features of a batch (rows in any order) from its accounts' states; and each account's new state.

    `states` maps an account to its stored state, or to None (or leaves it out) when it has none.
    A payment already in the state, or repeated within the batch, is not counted again: its
    features are computed where it sits in event time, as on its first delivery. The new states
    hold each account's `STATE_LIMIT` most recent payments and are JSON-ready.
    """
    if len(batch) == 0:
        return np.empty((0, len(FEATURES)), dtype=np.float64), {}
    batch_accounts = batch.account.tolist()
    code_of: dict[Any, int] = {}
    batch_code = [code_of.setdefault(a, len(code_of)) for a in batch_accounts]
    # The stored payments first, then the batch: one list per column, converted to arrays once.
    columns: dict[str, list[Any]] = {name: [] for name in ("id", "t_ms", *PAYMENT_FIELDS)}
    code: list[int] = []
    day_columns: dict[str, list[int]] = {name: [] for name in DAY_FIELDS}
    day_code: list[int] = []
    for account, account_code in code_of.items():
        state = states.get(account)
        if not state:
            continue
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"behaviour state version {state.get('v')!r} is not {STATE_VERSION}")
        for name, values in columns.items():
            values.extend(state[name])
        code.extend([account_code] * len(state["id"]))
        for name, day_values in day_columns.items():
            day_values.extend(state[name])
        day_code.extend([account_code] * len(state["day"]))
    stored = len(code)
    merged_code = np.asarray(code + batch_code, dtype=np.int64)
    merged = Payments(
        id=np.concatenate([np.asarray(columns["id"], dtype=object), batch.id]),
        account=merged_code,
        t_ms=np.concatenate([np.asarray(columns["t_ms"], dtype=np.int64), batch.t_ms]),
        **{
            name: np.concatenate([np.asarray(columns[name], dtype=getattr(batch, name).dtype), getattr(batch, name)])
            for name in PAYMENT_FIELDS
        },
    )
    order = _sorted_order(merged_code, merged.t_ms, merged.id)
    s = merged.take(order)
    # Copies of one payment sort next to each other; the first is kept (a stored copy comes first in
    # `merged`, and the sort is stable).
    first = np.ones(order.size, dtype=bool)
    first[1:] = (s.id[1:] != s.id[:-1]) | (s.account[1:] != s.account[:-1])
    owner = np.cumsum(first) - 1
    k = s.take(np.flatnonzero(first))
    position = np.empty(order.size, dtype=np.int64)
    position[order] = owner
    wanted, back = np.unique(position[stored:], return_inverse=True)
    # Day totals: the stored ones plus this batch's new payments (first copies not from a state).
    new = first & (order >= stored)
    totals = days.DayTotals.of(
        np.concatenate([np.asarray(day_code, dtype=np.int64), s.account[new]]),
        np.concatenate([np.asarray(day_columns["day"], dtype=np.int64), days.day_number(s.t_ms[new])]),
        np.concatenate([np.asarray(day_columns["day_n"], dtype=np.int64), np.ones(int(new.sum()), dtype=np.int64)]),
        np.concatenate([np.asarray(day_columns["day_cents"], dtype=np.int64), days.cents(s.amount[new])]),
    )
    feats = np.empty((wanted.size, len(FEATURES)), dtype=np.float64)
    feats[:, : len(LIST_FEATURES)] = _window(k, k.account, wanted)
    feats[:, len(LIST_FEATURES) :] = _day_windows(totals, k.account[wanted], k.t_ms[wanted])
    feats = feats[back]
    # Each account's earliest payment of this batch (a row of `k`): its predecessors stay in the state.
    earliest = np.full(len(code_of), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(earliest, k.account[wanted], wanted)
    accounts = list(code_of)
    new_states = _new_states(k, earliest)
    _add_day_totals(new_states, totals)
    return feats, {accounts[c_]: state for c_, state in new_states.items()}


def _add_day_totals(states: dict[int, dict[str, Any]], totals: days.DayTotals) -> None:
    """Each account's day totals into its new state: the `DAY_KEEP` days back from its newest."""
    for state in states.values():
        state["day"], state["day_n"], state["day_cents"] = [], [], []
    code, day = totals.code(), totals.day()
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if code.size else np.empty(0, dtype=np.int64)
    ends = np.r_[starts[1:], code.size].astype(np.int64)
    day_list, n_list, cents_list = day.tolist(), totals.a.tolist(), totals.b.tolist()
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        # The newest kept day sets the span; whole days older than DAY_KEEP before it go.
        first = int(np.searchsorted(day[lo:hi], day[hi - 1] - DAY_KEEP + 1)) + lo
        state = states[int(code[lo])]
        state["day"], state["day_n"], state["day_cents"] = day_list[first:hi], n_list[first:hi], cents_list[first:hi]


def _concat(parts: Sequence[Payments]) -> Payments:
    return Payments(
        **{name: np.concatenate([getattr(p, name) for p in parts]) for name in Payments.__dataclass_fields__}
    )


def _new_states(k: Payments, earliest: np.ndarray) -> dict[int, dict[str, Any]]:
    """Each account code's most recent `STATE_LIMIT` payments, from rows sorted by (account, time, id).

    Never fewer than the batch's own payments of the account and the `WINDOW` before the earliest of
    them (`earliest[code]`, a row of `k`): the latest batch, redelivered after its state was written,
    then finds every predecessor it read the first time, however many payments the account made in
    it. The next batch trims the state back to `STATE_LIMIT`.
    """
    same = k.account
    starts = np.flatnonzero(np.r_[True, same[1:] != same[:-1]])
    ends = np.r_[starts[1:], same.size]
    codes = same[starts]
    # Where each account's kept rows begin, for all accounts at once.
    lows = np.maximum(starts, np.minimum(ends - STATE_LIMIT, earliest[codes] - WINDOW))
    lows = np.maximum(lows, ends - STATE_HARD_LIMIT)
    names = ("v", "id", "t_ms", *PAYMENT_FIELDS)
    columns = [k.id.tolist(), k.t_ms.tolist(), *(getattr(k, name).tolist() for name in PAYMENT_FIELDS)]
    out: dict[int, dict[str, Any]] = {}
    for code_, lo, end in zip(codes.tolist(), lows.tolist(), ends.tolist(), strict=True):
        out[code_] = dict(zip(names, [STATE_VERSION, *[values[lo:end] for values in columns]], strict=True))
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
