"""Merchant risk from confirmed labels, delayed as labels really are: one definition for training and serving.

A payment's merchant features count the labels of its merchant (the terminal or payee it goes to)
that became known more than `delay_days` whole UTC days before the payment's own day, over the 1, 7
and 30 days before that cut-off: how many labelled payments, and the share confirmed as fraud. The
ULB handbook's terminal features are this definition with every label known at its transaction's
time and a 7-day delay (its "delay period"): a bank learns outcomes late, so a model that reads
fresher labels in training than serving will ever have is measured on a leak.

Whole days, counted as integers (`days.py`), make the features a pure function of the labels with
known day < payment day - delay, whatever order they arrived in. Serving reads each merchant's day
totals from its state (`MerchantState`, built by the label aggregation from the `labels` container,
one known day at a time once the day is over: `shared/labels/`); training builds the same totals
from the labelled rows. A label's known time is when the outcome reached the app: the later of the
time the client says it became known and the time it was recorded, so a label sent late never
changes the features of payments already scored (exact under replays while the aggregation runs
within `delay_days` of a day's end).

Payments without a merchant, and merchants without labels, get zero counts and a zero fraud share:
"nothing known", which training sees for every new merchant.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from operator import le
from typing import Any, Final

import numpy as np

from shared.behaviour import days

DEFAULT_DELAY_DAYS: Final = 7
"""Days between a label becoming known and its use (MERCHANT_RISK_DELAY_DAYS), the handbook's delay."""
MAX_DELAY_DAYS: Final = 60
STATE_VERSION: Final = 1
KEEP_DAYS: Final = MAX_DELAY_DAYS + max(days.WINDOWS_DAYS) + 2
"""Known days a merchant state keeps back from its newest: the longest window after the longest delay."""
STATE_FIELDS: Final = ("day", "n", "fraud")
"""Per known day (`days.day_number`): labels that became known that day, and how many said fraud."""

FEATURES: Final = tuple(f"merchant_{what}_{w}d" for w in days.WINDOWS_DAYS for what in ("labelled", "fraud_rate"))
"""Labelled payments of the merchant and their fraud share, per window, as model columns."""


def empty_totals() -> days.DayTotals:
    z = np.zeros(0, dtype=np.int64)
    return days.DayTotals.sorted(z, z, z)


def label_totals(merchant_code: np.ndarray, known_ms: np.ndarray, fraud: np.ndarray) -> days.DayTotals:
    """Day totals of labels (merchant code, known time, fraud 0/1): labels per known day and frauds among them."""
    code = np.asarray(merchant_code, dtype=np.int64)
    fraud = np.asarray(fraud, dtype=np.int64)
    return days.DayTotals.of(code, days.day_number(known_ms), np.ones(code.size, dtype=np.int64), fraud)


def from_totals(totals: days.DayTotals, merchant_code: np.ndarray, t_ms: np.ndarray, delay_days: int) -> np.ndarray:
    """`FEATURES` of payments (merchant code, event time; code < 0: no merchant) from label day totals."""
    code = np.asarray(merchant_code, dtype=np.int64)
    day = days.day_number(t_ms)
    out = np.zeros((code.size, len(FEATURES)), dtype=np.float64)
    known = code >= 0
    if not known.any() or totals.key.size == 0:
        return out
    for j, w in enumerate(days.WINDOWS_DAYS):
        n, fraud = totals.sums(np.where(known, code, 0), day, delay_days + w, delay_days)
        n = np.where(known, n, 0)
        fraud = np.where(known, fraud, 0)
        out[:, 2 * j] = n
        out[:, 2 * j + 1] = np.where(n > 0, fraud / np.maximum(n, 1), 0.0)
    return out


def merchant_codes(merchant_ids: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """(a code per row, -1 where there is no merchant; the merchants in code order)."""
    seen = dict.fromkeys(merchant_ids)  # first appearance order, as codes are given
    seen.pop(None, None)
    seen.pop("", None)
    merchants = list(seen)
    code_of: dict[Any, int] = {m: i for i, m in enumerate(merchants)}
    code_of[None] = code_of[""] = -1
    codes = np.fromiter(map(code_of.__getitem__, merchant_ids), dtype=np.int64, count=len(merchant_ids))
    return codes, merchants


def replay(
    merchant_ids: Sequence[Any] | np.ndarray,
    t_ms: np.ndarray,
    label_merchants: Sequence[Any] | np.ndarray,
    label_known_ms: np.ndarray,
    label_fraud: np.ndarray,
    delay_days: int = DEFAULT_DELAY_DAYS,
) -> np.ndarray:
    """Merchant features of every payment of a history from a set of labels (training).

    In training, the labelled rows are both the payments and the labels: a row's label counts for
    later payments once its known time is `delay_days` whole days before theirs.
    """
    codes, _ = merchant_codes(np.concatenate([np.asarray(merchant_ids, dtype=object), label_merchants]))
    n = len(merchant_ids)
    pay_code, label_code = codes[:n], codes[n:]
    has = label_code >= 0
    totals = label_totals(label_code[has], np.asarray(label_known_ms)[has], np.asarray(label_fraud)[has])
    return from_totals(totals, pay_code, np.asarray(t_ms, dtype=np.int64), delay_days)


# --- serving: merchant states in, features out ------------------------------------------------


def usable_state(raw: object) -> dict[str, Any] | None:
    """A stored merchant state if it has this version's shape and sane values; None otherwise (no labels known)."""
    if isinstance(raw, CheckedState):
        return raw  # checked when it was built
    if type(raw) is not dict or raw.get("v") != STATE_VERSION:
        return None
    columns = [raw.get(name) for name in STATE_FIELDS]
    if any(type(col) is not list for col in columns):
        return None
    day: list[Any] = raw["day"]
    n: list[Any] = raw["n"]
    fraud: list[Any] = raw["fraud"]
    if len(day) > KEEP_DAYS or len(n) != len(day) or len(fraud) != len(day):
        return None
    if not day:
        return raw
    # Checked with builtins over whole lists (a scoring batch reads thousands of states): ints only,
    # days ascending without repeats within [0, 2**22), 0 <= fraud <= n <= 2**40.
    if not set(map(type, day + n + fraud)) <= {int}:
        return None
    if day[0] < 0 or day[-1] >= 1 << 22 or day != sorted(set(day)):
        return None
    if min(fraud) < 0 or max(n) > 1 << 40 or not all(map(le, fraud, n)):
        return None
    return raw


class CheckedState(dict[str, Any]):
    """A usable state (`usable_state` passed) with its day columns as int64 arrays, built once.

    Scoring reads the same merchants batch after batch while their states change at most once an
    aggregation run: the stores keep these per merchant and document version (`merchant_store`), so
    a state is checked and converted once per version rather than once per batch. Equal to the state
    it holds, as a dict; shared between batches, so never to be modified.
    """

    __slots__ = ("columns",)

    def __init__(self, state: Mapping[str, Any]) -> None:
        super().__init__(state)
        self.columns = _columns(state)


def _columns(state: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _int64(state["day"]), _int64(state["n"]), _int64(state["fraud"])


def features_from_states(
    merchant_ids: Sequence[str | None], t_ms: np.ndarray, states: Mapping[str, Mapping[str, Any]], delay_days: int
) -> np.ndarray:
    """`FEATURES` of a batch's payments from their merchants' states (a merchant without one: nothing known).

    States are usable ones (`usable_state`), as dicts or as the stores' `CheckedState`s.
    """
    codes, merchants = merchant_codes(merchant_ids)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    owners: list[int] = []
    for code, merchant in enumerate(merchants):
        state = states.get(merchant)
        if not state:
            continue
        columns = state.columns if isinstance(state, CheckedState) else _columns(state)
        if columns[0].size:
            parts.append(columns)
            owners.append(code)
    if not parts:
        return np.zeros((len(merchant_ids), len(FEATURES)), dtype=np.float64)
    day, n, fraud = (np.concatenate([part[k] for part in parts]) for k in range(3))
    owner = np.repeat(np.asarray(owners, dtype=np.int64), [part[0].size for part in parts])
    key = day + owner * (1 << 22)
    # States are per merchant with ascending days, and codes ascend: the keys are sorted.
    totals = days.DayTotals.sorted(key, n, fraud)
    return from_totals(totals, codes, np.asarray(t_ms, dtype=np.int64), delay_days)


def _int64(values: list[int]) -> np.ndarray:
    """Python ints (a usable state's: below 2**63) as int64, through `array` (faster than numpy for lists)."""
    return np.frombuffer(array("q", values), dtype=np.int64)


def merged_state(
    state: Mapping[str, Any] | None, known_day: int, n: int, fraud: int, *, through: int | None = None
) -> dict[str, Any]:
    """A merchant state with one known day's label totals set (not added: applying a day twice changes nothing).

    Days older than `KEEP_DAYS` before the newest go. `through` records the last known day the
    aggregation has applied to this merchant.
    """
    day = list(state["day"]) if state else []
    n_list = list(state["n"]) if state else []
    fraud_list = list(state["fraud"]) if state else []
    at = int(np.searchsorted(np.asarray(day, dtype=np.int64), known_day)) if day else 0
    if at < len(day) and day[at] == known_day:
        n_list[at], fraud_list[at] = n, fraud
    else:
        day.insert(at, known_day)
        n_list.insert(at, n)
        fraud_list.insert(at, fraud)
    first = int(np.searchsorted(np.asarray(day, dtype=np.int64), day[-1] - KEEP_DAYS + 1))
    out: dict[str, Any] = {
        "v": STATE_VERSION,
        "day": day[first:],
        "n": n_list[first:],
        "fraud": fraud_list[first:],
    }
    if through is None:
        through = max(known_day, int(state.get("through", known_day))) if state else known_day
    out["through"] = through
    return out


# --- reasons in an analyst's words --------------------------------------------------------------


def describe(field: str, features: Mapping[str, float], delay_days: int = DEFAULT_DELAY_DAYS) -> str:
    """One merchant-risk reason in words: confirmed frauds at the merchant in a window, from labels delay days old."""
    for w in days.WINDOWS_DAYS:
        if field in (f"merchant_labelled_{w}d", f"merchant_fraud_rate_{w}d"):
            n = int(features.get(f"merchant_labelled_{w}d", 0.0))
            rate = float(features.get(f"merchant_fraud_rate_{w}d", 0.0))
            frauds = round(rate * n)
            span = "day" if w == 1 else f"{w} days"
            if n == 0:
                return f"merchant with no confirmed outcomes in the {span} up to {delay_days} days ago"
            plural = "" if frauds == 1 else "s"
            return (
                f"merchant with {frauds} confirmed fraud{plural} among {n} labelled payments "
                f"in the {span} up to {delay_days} days ago"
            )
    raise KeyError(field)
