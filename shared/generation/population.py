"""A seeded population of bank customers whose payments unfold in event time, legitimate and fraudulent.

Each account has stable attributes (income, family, credit, a usual spending level, its own mix of
recipient categories, methods and channels, an activity rate, how often it travels) and a balance
that every payment lowers and a monthly salary raises. Legitimate payments arrive as a Poisson
process per account, some in short shopping sessions, some abroad during trips. Fraud arrives in
episodes (`shared.generation.fraud`), while the seed's twelve static fields keep their names, types
and domains.

The simulation advances the whole population one block of event time at a time, vectorised with
NumPy; only the balance walk is sequential (a drain takes a share of whatever is left). Episode
payments that fall after a block's end wait for the next block, so the output is in event-time
order across accounts however it is cut into calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np

from shared.generation import fraud
from shared.generation.event_time import DAY_MS, MONTH_MS, epoch_ms, months, weekdays
from shared.generation.payments import CATEGORY, DRAIN, FIXED, Columns, ScheduledPayments, over, pick, probs

LABEL_NOISE: Final = 0.002
"""Share of labels flipped, as in any real history: caps achievable recall slightly below 100%."""

MAX_AMOUNT: Final = 50_000.0
MIN_AMOUNT: Final = 0.01

SESSION_SHARE: Final = 0.15
"""Legitimate payments that open a shopping session of 1-3 more payments within the hour."""
SESSION_MEAN_EXTRA: Final = 2.0
SESSION_GAP_MS: Final = 12 * 60_000
LARGE_PURCHASE_SHARE: Final = 0.04
"""Legitimate payments that are large purchases (about 7x usual): they overlap with fraud amounts."""
TRAVELLER_SHARE: Final = 0.25
TRIP_RATE_PER_DAY: Final = 1.0 / 60.0
TRIP_DAYS: Final = (3, 10)
TRIP_FOREIGN: Final = 0.85

# Population-wide legitimate mixes (contract order); each account draws its own mix around them.
_LEGIT_CATEGORY = probs([26, 18, 12, 8, 10, 5, 6, 1.5, 1, 5, 7.5])
_LEGIT_METHOD = probs([38, 30, 18, 6, 3, 5])
_LEGIT_TYPE = probs([60, 33, 7])
_TRIP_CATEGORY = over(CATEGORY, {"restaurant": 30, "travel": 25, "food_store": 20, "clothing": 10, "other": 15})


@dataclass(frozen=True)
class Accounts:
    """Stable per-account attributes, one array entry per account."""

    income: np.ndarray
    credit: np.ndarray
    marital_status: np.ndarray
    children: np.ndarray
    activity: np.ndarray
    """Legitimate and fraudulent payments per day together (fraud takes its share of it)."""
    usual_log: np.ndarray
    """Log of the account's median everyday amount."""
    amount_sigma: np.ndarray
    category_cdf: np.ndarray
    method_cdf: np.ndarray
    type_cdf: np.ndarray
    foreign_at_home: np.ndarray
    traveller: np.ndarray
    risk: np.ndarray
    """Relative fraud exposure (static attributes carry some signal, as in the seed), mean 1 weighted by activity."""
    initial_balance: np.ndarray
    payday_offset_ms: np.ndarray

    @property
    def size(self) -> int:
        return int(self.income.size)

    @classmethod
    def draw(cls, n: int, rng: np.random.Generator) -> Accounts:
        income = rng.lognormal(mean=7.9, sigma=0.45, size=n)
        credit = (rng.random(n) < 0.3).astype(np.int64)
        marital = (rng.random(n) < 0.5).astype(np.int64)
        children = np.minimum(rng.poisson(1.2, n), 8).astype(np.int64)
        activity = np.clip(rng.lognormal(mean=0.25, sigma=0.55, size=n), 0.15, 12.0)
        sigma = rng.uniform(0.6, 1.0, n)
        # Everyday spending is about 70% of income a month, so balances drift slowly rather than run away.
        monthly_share = rng.uniform(0.5, 0.9, n)
        mean_amount = monthly_share * income / (30.0 * activity * (1.0 + SESSION_SHARE * SESSION_MEAN_EXTRA))
        usual_log = np.log(np.maximum(mean_amount, 2.0)) - sigma**2 / 2.0
        # Small Dirichlet concentrations: each account uses a few categories, methods and channels a lot
        # and the rest rarely, so a first payment to a rare one means something.
        category = rng.dirichlet(6.0 * _LEGIT_CATEGORY * len(_LEGIT_CATEGORY), n)
        method = rng.dirichlet(4.0 * _LEGIT_METHOD * len(_LEGIT_METHOD), n)
        ttype = rng.dirichlet(6.0 * _LEGIT_TYPE * len(_LEGIT_TYPE), n)
        traveller = rng.random(n) < TRAVELLER_SHARE
        foreign_at_home = np.where(rng.random(n) < 0.1, 0.03, 0.002)
        risk = np.exp(0.6 * credit - 0.5 * marital - 0.25 * (children - 1.2) - 0.4 * (np.log(income) - 7.9))
        risk *= activity.sum() / (activity * risk).sum()
        balance = income * rng.gamma(2.2, 2.0, n) + rng.normal(0.0, 300.0, n)
        return cls(
            income=np.round(income, 2),
            credit=credit,
            marital_status=marital,
            children=children,
            activity=activity,
            usual_log=usual_log,
            amount_sigma=sigma,
            category_cdf=np.cumsum(category, axis=1),
            method_cdf=np.cumsum(method, axis=1),
            type_cdf=np.cumsum(ttype, axis=1),
            foreign_at_home=foreign_at_home,
            traveller=traveller,
            risk=risk,
            initial_balance=balance,
            payday_offset_ms=rng.integers(0, MONTH_MS, n),
        )


class Population:
    """The simulation: accounts, their balances and whatever episode payments are still to come."""

    def __init__(
        self,
        n_accounts: int,
        *,
        fraud_rate: float,
        seed: int | None,
        start: datetime,
        account_offset: int = 0,
    ) -> None:
        if n_accounts < 1:
            raise ValueError("a population needs at least one account")
        if not 0.0 <= fraud_rate <= 1.0:
            raise ValueError("fraud_rate must be within [0, 1]")
        self.fraud_rate = fraud_rate
        self.account_offset = account_offset
        self._rng = np.random.default_rng(seed)
        self.accounts = Accounts.draw(n_accounts, self._rng)
        self.clock_ms = epoch_ms(start)
        a = self.accounts
        self._balance = a.initial_balance.astype(np.float64).tolist()
        self._payday = (self.clock_ms + a.payday_offset_ms).tolist()
        self._trip_start = np.full(a.size, -1, dtype=np.int64)
        self._trip_end = np.full(a.size, -1, dtype=np.int64)
        # Legitimate and fraud rates split each account's activity by the fraud share: with sessions
        # and episode lengths accounted for, about `fraud_rate` of all payments are fraud.
        self._legit_rate = a.activity * (1.0 - fraud_rate) / (1.0 + SESSION_SHARE * SESSION_MEAN_EXTRA)
        self._episode_rate = a.activity * a.risk * fraud_rate / fraud.EXPECTED_EPISODE_LENGTH
        self._pending = ScheduledPayments.empty()

    @property
    def events_per_day(self) -> float:
        """Expected payments per day of event time, over the whole population."""
        return float(self.accounts.activity.sum())

    def account_ids(self, account: np.ndarray) -> list[str]:
        return [f"acct-{i + self.account_offset:06d}" for i in account.tolist()]

    def advance(self, duration_ms: int) -> Columns:
        """Simulate the next `duration_ms` of event time; its payments in event-time order, as columns."""
        rng, a = self._rng, self.accounts
        t0, t1 = self.clock_ms, self.clock_ms + int(duration_ms)
        days = (t1 - t0) / DAY_MS
        # Legitimate payments first: the order of draws from the one seeded stream is the stream.
        legit = self._legit(t0, t1, days)
        episodes = fraud.episodes(rng, self._episode_rate, a.usual_log, t0, t1, days)
        skeleton = ScheduledPayments.concat([self._pending, legit, episodes])
        order = np.argsort(skeleton.t, kind="stable")
        now_rows = order[skeleton.t[order] < t1]
        later_rows = order[skeleton.t[order] >= t1]
        self._pending = skeleton.take(later_rows)
        block = skeleton.take(now_rows)
        self.clock_ms = t1
        amount, old_balance = self._walk_balances(block)
        n = block.t.size
        label = block.fraud ^ (rng.random(n) < LABEL_NOISE)
        account = block.account
        return {
            "t_ms": block.t,
            "account": account + self.account_offset,
            "amount": amount,
            "old_balance": old_balance,
            "income": a.income[account],
            "credit": a.credit[account],
            "marital_status": a.marital_status[account],
            "children": a.children[account],
            "foreign_transaction": block.foreign,
            "month": months(block.t),
            "day_of_week": weekdays(block.t),
            "category_recipient": block.category,
            "transaction_type": block.ttype,
            "transaction_method": block.method,
            "is_fraud": label.astype(np.int64),
            "typology": block.typology,
        }

    def _legit(self, t0: int, t1: int, days: float) -> ScheduledPayments:
        rng, a = self._rng, self.accounts
        counts = rng.poisson(self._legit_rate * days)
        account = np.repeat(np.arange(a.size), counts)
        t = rng.integers(t0, t1, account.size)
        # Shopping sessions: a few more payments within the hour after some payments.
        opens = rng.random(account.size) < SESSION_SHARE
        extra = rng.integers(1, 4, int(opens.sum()))
        s_account = np.repeat(account[opens], extra)
        s_t = np.repeat(t[opens], extra) + rng.exponential(SESSION_GAP_MS, s_account.size).astype(np.int64)
        account = np.concatenate([account, s_account])
        t = np.concatenate([t, s_t])
        n = account.size

        self._plan_trips(t0, t1, days)
        on_trip = (t >= self._trip_start[account]) & (t < self._trip_end[account])
        category = pick(a.category_cdf[account], rng)
        n_trip = int(on_trip.sum())
        category[on_trip] = rng.choice(len(_TRIP_CATEGORY), size=n_trip, p=_TRIP_CATEGORY)
        foreign = rng.random(n) < np.where(on_trip, TRIP_FOREIGN, a.foreign_at_home[account])
        log_amount = rng.normal(a.usual_log[account], a.amount_sigma[account])
        large = rng.random(n) < LARGE_PURCHASE_SHARE
        log_amount[large] += rng.normal(2.0, 0.5, int(large.sum()))
        return ScheduledPayments(
            t=t,
            account=account,
            fraud=np.zeros(n, dtype=bool),
            category=category,
            method=pick(a.method_cdf[account], rng),
            ttype=pick(a.type_cdf[account], rng),
            foreign=foreign.astype(np.int64),
            kind=np.full(n, FIXED, dtype=np.int64),
            param=np.exp(log_amount),
            typology=np.full(n, -1, dtype=np.int64),
        )

    def _plan_trips(self, t0: int, t1: int, days: float) -> None:
        rng = self._rng
        free = self.accounts.traveller & (self._trip_end < t0)
        leaving = free & (rng.random(free.size) < TRIP_RATE_PER_DAY * days)
        k = int(leaving.sum())
        start = rng.integers(t0, t1, k)
        self._trip_start[leaving] = start
        self._trip_end[leaving] = start + rng.integers(TRIP_DAYS[0], TRIP_DAYS[1] + 1, k) * DAY_MS

    def _walk_balances(self, block: ScheduledPayments) -> tuple[np.ndarray, np.ndarray]:
        """Each payment's amount and the balance before it, walking the block in event time."""
        balance, payday, income = self._balance, self._payday, self.accounts.income.tolist()
        usual = np.exp(self.accounts.usual_log).tolist()
        n = block.t.size
        amounts = [0.0] * n
        before = [0.0] * n
        for i, (t, acct, kind, param) in enumerate(
            zip(block.t.tolist(), block.account.tolist(), block.kind.tolist(), block.param.tolist(), strict=True)
        ):
            while t >= payday[acct]:
                balance[acct] += income[acct]
                payday[acct] += MONTH_MS
            b = balance[acct]
            # A drain takes a share of what is there, but a thief still moves at least a usual amount.
            amount = max(b, 0.0) * param if kind == DRAIN else param
            if kind == DRAIN and amount < usual[acct]:
                amount = usual[acct] * (1.0 + param)
            amount = round(min(max(amount, MIN_AMOUNT), MAX_AMOUNT), 2)
            before[i] = round(b, 2)
            amounts[i] = amount
            balance[acct] = b - amount
        return np.asarray(amounts, dtype=np.float64), np.asarray(before, dtype=np.float64)
