"""Payment-card transactions after the ULB handbook's published simulator design, as training columns.

Written from the description in Le Borgne, Siblini, Lebichot, Bontempi, "Reproducible Machine
Learning for Credit Card Fraud Detection - Practical Handbook" (Université Libre de Bruxelles, 2022),
chapter 3.2 "Transaction data simulator":
https://fraud-detection-handbook.github.io/fraud-detection-handbook/Chapter_3_GettingStarted/SimulatedDataset.html
The design it publishes, all of which this module follows:

- customers and terminals are placed uniformly on a 100 x 100 grid; a customer uses only the
  terminals closer than a radius r (5 in its run, "around 100 available terminals" each);
- a customer's profile: mean amount uniform(5, 100), its standard deviation half of it, a mean
  number of payments per day uniform(0, 4); each day's count is Poisson with that mean;
- a payment's time of day is normal around noon (86,400 / 2 s, sd 20,000 s), kept only when it
  falls inside the day; its amount is normal(mean, sd), a negative draw replaced by uniform(0,
  2 x mean), rounded to cents; its terminal is drawn uniformly from the customer's terminals;
- three fraud scenarios: (1) any amount above 220 is fraud; (2) every day two terminals are drawn
  at random and all their payments in the next 28 days are fraud; (3) every day three customers
  are drawn and a third of their payments in the next 14 days have their amount multiplied by 5
  and are fraud. Scenario 1 is applied to the amounts as drawn, before scenario 3 inflates some;
  where scenarios overlap the later one names the payment (3 over 2 over 1), as in the handbook;
- its run: 5,000 customers, 10,000 terminals, r = 5, 183 days from 2018-04-01.

The figures that run published, which `tests/model/benchmark` and `model/BENCHMARK.md` compare
ours with (same chapter, "Scaling up to a larger dataset" and "Fraud scenarios generation"):
1,754,155 payments; 14,681 frauds (0.837%): 973 from scenario 1, 9,077 from 2, 4,631 from 3
(counted by the scenario that names a payment); about 10,000 payments and 85 frauds a day.

Differences, none of which changes the design: draws come from one seeded NumPy generator (so the
handbook's exact rows are not reproduced, only its distributions); compromises are drawn on every
simulated day (the handbook stops one day before the last, which only touches that last day);
an amount that rounds to 0.00 is raised to the contract's minimum of 0.01.

Output is the project's training-columns form (`model/training/data.py`): the contract's feature
fields as codes, of which only `amount`, `month` and `day_of_week` vary, every other seed field a
constant valid value; plus `id`, `account`/`account_id` (the customer), `merchant_id` (the
terminal), `t_ms`, `is_fraud`, `typology` (-1 legitimate, 0/1/2 for scenarios 1/2/3), `episode`
(the compromise that made the payment fraud; -1 legitimate) and `known_ms` (when its label is
known: at once, the handbook's assumption that labels are all known after the delay).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import numpy as np
from numpy.typing import NDArray

from shared.contract import schema as contract

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

DAY_S: Final = 86_400
START: Final = datetime(2018, 4, 1, tzinfo=UTC)
"""The handbook's first simulated day (its run covers 2018-04-01 to 2018-09-30)."""
CUSTOMERS: Final = 5_000
TERMINALS: Final = 10_000
DAYS: Final = 183
RADIUS: Final = 5.0
GRID: Final = 100.0

MEAN_AMOUNT: Final = (5.0, 100.0)
MEAN_PAYMENTS_PER_DAY: Final = (0.0, 4.0)
TIME_OF_DAY_SD_S: Final = 20_000.0

AMOUNT_LIMIT: Final = 220.0
"""Scenario 1: a payment above this amount is fraud."""
TERMINALS_PER_DAY: Final = 2
TERMINAL_DAYS: Final = 28
"""Scenario 2: terminals compromised each day, and for how many days all their payments are fraud."""
CUSTOMERS_PER_DAY: Final = 3
CUSTOMER_DAYS: Final = 14
CUSTOMER_SHARE_DIVISOR: Final = 3
CUSTOMER_MULTIPLIER: Final = 5.0
"""Scenario 3: customers compromised each day, for how long, a third of their payments taken, and the inflation."""

LEGIT: Final = -1
LARGE_AMOUNT: Final = 0
COMPROMISED_TERMINAL: Final = 1
COMPROMISED_CUSTOMER: Final = 2
TYPOLOGY_NAMES: Final = ("amount above 220", "compromised terminal", "compromised customer")
"""`typology` codes 0, 1, 2: the handbook's scenarios 1, 2, 3."""

PUBLISHED_PAYMENTS: Final = 1_754_155
PUBLISHED_FRAUDS: Final = 14_681
PUBLISHED_BY_TYPOLOGY: Final = (973, 9_077, 4_631)
"""The handbook's run (5,000 customers, 10,000 terminals, 183 days): payments, frauds, frauds named by each scenario."""

CONSTANT_FIELDS: Final[dict[str, float | int]] = {
    "old_balance": 5_000.0,
    "income": 3_000.0,
    "credit": 0,
    "marital_status": 0,
    "children": 0,
    "foreign_transaction": 0,
    "category_recipient": contract.CATEGORY_CODES["category_recipient"]["other"],
    "transaction_type": contract.CATEGORY_CODES["transaction_type"]["onsite"],
    "transaction_method": contract.CATEGORY_CODES["transaction_method"]["card"],
}
"""The seed's fields the handbook has no counterpart for: one valid value each, so they carry no signal."""


@dataclass(frozen=True)
class Profiles:
    """Where customers and terminals are, each customer's spending profile and usable terminals (CSR lists)."""

    customer_xy: FloatArray
    terminal_xy: FloatArray
    mean_amount: FloatArray
    mean_per_day: FloatArray
    terminals_start: IntArray
    """Customer c may use terminals `terminals[terminals_start[c]:terminals_start[c + 1]]`."""
    terminals: IntArray

    @property
    def terminal_counts(self) -> IntArray:
        return np.diff(self.terminals_start)


@dataclass(frozen=True)
class Simulation:
    """The simulated payments in event-time order (training columns), and the profiles that made them."""

    columns: dict[str, np.ndarray]
    profiles: Profiles
    start: datetime
    days: int

    @property
    def size(self) -> int:
        return int(self.columns["t_ms"].size)


def _usable_terminals(customer_xy: FloatArray, terminal_xy: FloatArray, radius: float) -> tuple[IntArray, IntArray]:
    """For each customer, the terminals strictly closer than `radius`, as CSR (start offsets, terminal indexes)."""
    found: list[IntArray] = []
    counts = np.zeros(customer_xy.shape[0], dtype=np.int64)
    block = max(1, 4_000_000 // max(1, terminal_xy.shape[0]))
    for lo in range(0, customer_xy.shape[0], block):
        diff = customer_xy[lo : lo + block, None, :] - terminal_xy[None, :, :]
        near = np.einsum("ijk,ijk->ij", diff, diff) < radius * radius
        rows, cols = np.nonzero(near)
        counts[lo : lo + block] = np.bincount(rows, minlength=near.shape[0])
        found.append(cols.astype(np.int64))
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return start, np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def profiles(customers: int, terminals: int, radius: float, rng: np.random.Generator) -> Profiles:
    """Customer and terminal placements and spending profiles, each customer's usable terminals."""
    customer_xy = rng.uniform(0.0, GRID, size=(customers, 2))
    terminal_xy = rng.uniform(0.0, GRID, size=(terminals, 2))
    mean_amount = rng.uniform(*MEAN_AMOUNT, size=customers)
    mean_per_day = rng.uniform(*MEAN_PAYMENTS_PER_DAY, size=customers)
    start, usable = _usable_terminals(customer_xy, terminal_xy, radius)
    return Profiles(customer_xy, terminal_xy, mean_amount, mean_per_day, start, usable)


def _payments(p: Profiles, days: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Legitimate payments of every customer on every day: customer, day, second of day, amount, terminal."""
    counts = rng.poisson(p.mean_per_day[:, None], size=(p.mean_per_day.size, days))
    flat = counts.ravel()
    customer = np.repeat(np.repeat(np.arange(p.mean_per_day.size, dtype=np.int64), days), flat)
    day = np.repeat(np.tile(np.arange(days, dtype=np.int64), p.mean_per_day.size), flat)
    second = np.trunc(rng.normal(DAY_S / 2, TIME_OF_DAY_SD_S, size=customer.size)).astype(np.int64)
    mean = p.mean_amount[customer]
    amount = rng.normal(mean, mean / 2)
    negative = amount < 0
    amount[negative] = rng.uniform(0.0, 2 * mean[negative])
    pick = rng.random(customer.size)
    n_usable = p.terminal_counts[customer]
    # The handbook drops draws outside the day, and customers with no terminal within reach make no payment.
    keep = (second > 0) & (second < DAY_S) & (n_usable > 0)
    slot = p.terminals_start[customer] + np.floor(pick * n_usable).astype(np.int64)
    terminal = p.terminals[np.minimum(slot, max(p.terminals.size - 1, 0))] if p.terminals.size else slot
    return {
        "customer": customer[keep],
        "day": day[keep],
        "second": second[keep],
        "amount": np.round(amount[keep], 2),
        "terminal": terminal[keep],
    }


def _window_rows(key: IntArray, day: IntArray, members: IntArray, first_day: IntArray, length: int) -> IntArray:
    """Rows whose `key` is `members[e]` and whose day is in [first_day[e], first_day[e] + length), for each episode e.

    Returns a (2, n) array: episode index and row index of every match, episodes in order.
    """
    order = np.lexsort((day, key))
    stride = int(day.max(initial=0)) + length + 1
    sorted_code = key[order] * stride + day[order]
    lo = np.searchsorted(sorted_code, members * stride + first_day, side="left")
    hi = np.searchsorted(sorted_code, members * stride + first_day + length, side="left")
    sizes = hi - lo
    episode = np.repeat(np.arange(members.size, dtype=np.int64), sizes)
    offset = np.arange(episode.size, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.stack([episode, order[np.repeat(lo, sizes) + offset]])


def _first_per_row(rows: IntArray, episode: IntArray, n: int) -> IntArray:
    """For each of `n` rows, the smallest episode id among the (row, episode) pairs naming it; -1 when none does."""
    out = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, rows, episode)
    out[out == np.iinfo(np.int64).max] = LEGIT
    return out


def _frauds(
    pay: dict[str, np.ndarray], p: Profiles, days: int, rng: np.random.Generator
) -> tuple[FloatArray, IntArray, IntArray]:
    """The three scenarios on the drawn payments: final amounts, typology and episode per payment."""
    n = pay["day"].size
    amount = pay["amount"].astype(np.float64)
    typology = np.full(n, LEGIT, dtype=np.int64)
    episode = np.full(n, LEGIT, dtype=np.int64)
    draw_days = np.arange(days, dtype=np.int64)

    large = amount > AMOUNT_LIMIT
    typology[large] = LARGE_AMOUNT

    terminals = np.stack([rng.choice(p.terminal_xy.shape[0], TERMINALS_PER_DAY, replace=False) for _ in draw_days])
    t_first = np.repeat(draw_days, TERMINALS_PER_DAY)
    t_pairs = _window_rows(pay["terminal"], pay["day"], terminals.ravel().astype(np.int64), t_first, TERMINAL_DAYS)
    at_terminal = _first_per_row(t_pairs[1], t_pairs[0], n)
    typology[at_terminal >= 0] = COMPROMISED_TERMINAL

    customers = np.stack([rng.choice(p.customer_xy.shape[0], CUSTOMERS_PER_DAY, replace=False) for _ in draw_days])
    c_first = np.repeat(draw_days, CUSTOMERS_PER_DAY)
    c_pairs = _window_rows(pay["customer"], pay["day"], customers.ravel().astype(np.int64), c_first, CUSTOMER_DAYS)
    # A third of each compromise's payments (rounded down), drawn without replacement: rank by a random key.
    c_episode, c_row = c_pairs
    ranked = np.lexsort((rng.random(c_row.size), c_episode))
    sizes = np.bincount(c_episode, minlength=customers.size)
    rank = np.empty(c_row.size, dtype=np.int64)
    rank[ranked] = np.arange(c_row.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    taken = rank < (sizes // CUSTOMER_SHARE_DIVISOR)[c_episode]
    # A payment taken by two overlapping compromises of one customer is inflated twice, as applying them in turn does.
    np.multiply.at(amount, c_row[taken], CUSTOMER_MULTIPLIER)
    by_customer = _first_per_row(c_row[taken], c_episode[taken], n)
    typology[by_customer >= 0] = COMPROMISED_CUSTOMER

    terminal_ids = at_terminal
    customer_ids = terminals.size + by_customer
    large_ids = terminals.size + customers.size + np.cumsum(large) - 1
    episode = np.where(
        typology == COMPROMISED_CUSTOMER,
        customer_ids,
        np.where(typology == COMPROMISED_TERMINAL, terminal_ids, np.where(typology == LARGE_AMOUNT, large_ids, LEGIT)),
    ).astype(np.int64)
    return np.maximum(amount, contract.FLOAT_RANGES["amount"][0]), typology, episode


def _calendar(t_ms: IntArray) -> tuple[IntArray, IntArray]:
    """Contract codes of the UTC month (0 = January) and weekday (0 = Monday) of each event time."""
    days = t_ms // (DAY_S * 1000)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    return months.astype(np.int64), weekday.astype(np.int64)


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return np.asarray([f"{prefix}-{i:0{width}d}" for i in range(n)], dtype=object)


def simulate(
    *,
    seed: int = 0,
    customers: int = CUSTOMERS,
    terminals: int = TERMINALS,
    days: int = DAYS,
    radius: float = RADIUS,
    start: datetime = START,
) -> Simulation:
    """Simulate `days` of payments of `customers` at `terminals`, seeded; the defaults are the handbook's run."""
    if min(customers, terminals, days) < 1:
        raise ValueError("customers, terminals and days must be at least 1")
    if max(TERMINALS_PER_DAY - terminals, CUSTOMERS_PER_DAY - customers) > 0:
        raise ValueError(f"need at least {TERMINALS_PER_DAY} terminals and {CUSTOMERS_PER_DAY} customers to compromise")
    rng = np.random.default_rng(seed)
    p = profiles(customers, terminals, radius, rng)
    pay = _payments(p, days, rng)
    amount, typology, episode = _frauds(pay, p, days, rng)
    start_ms = int(start.timestamp() * 1000)
    t_ms = start_ms + (pay["day"] * DAY_S + pay["second"]) * 1000
    order = np.argsort(t_ms, kind="stable")
    t_ms = t_ms[order]
    n = t_ms.size
    month, weekday = _calendar(t_ms)
    columns: dict[str, np.ndarray] = {"t_ms": t_ms, "account": pay["customer"][order], "amount": amount[order]}
    for field, value in CONSTANT_FIELDS.items():
        columns[field] = np.full(n, value, dtype=np.float64 if isinstance(value, float) else np.int64)
    columns["month"] = month
    columns["day_of_week"] = weekday
    columns["is_fraud"] = (typology[order] != LEGIT).astype(np.int64)
    columns["typology"] = typology[order]
    columns["episode"] = episode[order]
    columns["known_ms"] = t_ms.copy()
    columns["id"] = _ids("tx", n, 8)
    columns["account_id"] = _ids("cust", customers, 6)[columns["account"]]
    columns["merchant_id"] = _ids("term", terminals, 6)[pay["terminal"][order]]
    return Simulation(columns=columns, profiles=p, start=start, days=days)
