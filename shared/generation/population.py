"""A seeded population of bank customers and merchants whose payments unfold in event time, legitimate and fraudulent.

Accounts (`accounts.py`) pay merchants (`merchants.py`): mostly their few regular ones, sometimes
others, each payment's category and channel those of its merchant. Legitimate payments arrive as a
Poisson process per account, some in short shopping sessions, some abroad during trips (to
merchants of the trip's region). Every payment lowers its account's balance; a monthly salary
raises it, and so does the refund of a payment labelled fraud, when its label becomes known
(`labels.py`), as banks refund unauthorised payments once reported (PSD2 article 73). A payment of
the customer's own that would overdraw the account past its limit is made smaller, or not at all.
Fraud comes in episodes on one account (`fraud.py`) and at compromised merchants (`compromise.py`),
in the shares `fraud.TYPOLOGIES` give, so that about `fraud_rate` of all payments are fraud.

The simulation advances the whole population one block of event time at a time, vectorised with
NumPy; only the balance walk is sequential (a drain takes a share of whatever is left). Episode
and session payments that fall after a block's end wait for the next block, so the output is in
event-time order across accounts however it is cut into calls.
"""

from __future__ import annotations

import heapq
import math
from datetime import datetime
from typing import Final

import numpy as np

from shared.generation import fraud, labels
from shared.generation.accounts import (
    LARGE_PURCHASE_LOG,
    LARGE_PURCHASE_SHARE,
    LEGIT_CATEGORY,
    LEGIT_TYPE,
    SESSION_FACTOR,
    SESSION_SHARE,
    Accounts,
)
from shared.generation.compromise import Compromises
from shared.generation.event_time import DAY_MS, MONTH_MS, epoch_ms, months, weekdays
from shared.generation.merchants import Favourites, Merchants, region_count
from shared.generation.payments import CATEGORY, DRAIN, FIXED, Columns, ScheduledPayments, over, pick

LABEL_NOISE: Final = 0.002
"""Share of frauds labelled legitimate (never reported); as many legitimate payments, in expectation, are
labelled fraud (false claims). Caps achievable recall slightly below 100% and keeps the labelled rate
at the fraud rate, however low."""

MAX_AMOUNT: Final = 50_000.0
MIN_AMOUNT: Final = 0.01
SMALLER_AT_LEAST: Final = 0.25
"""A payment past the overdraft limit is made smaller if at least this share of it fits, else not made."""
SESSION_GAP_MS: Final = 12 * 60_000
TRIP_RATE_PER_DAY: Final = 1.0 / 60.0
TRIP_DAYS: Final = (3, 10)
TRIP_FOREIGN: Final = 0.85
_TRIP_CATEGORY = over(CATEGORY, {"restaurant": 30, "travel": 25, "food_store": 20, "clothing": 10, "other": 15})


class Population:
    """The simulation: accounts, merchants, their balances and whatever payments are still to come."""

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
        self._rng = rng = np.random.default_rng(seed)
        self.accounts = a = Accounts.draw(n_accounts, region_count(n_accounts), rng)
        self.merchants = Merchants.draw(n_accounts, LEGIT_CATEGORY, LEGIT_TYPE, rng, id_offset=account_offset)
        self.favourites = Favourites.draw(self.merchants, a.category_cdf, a.type_cdf, a.home, rng)
        self.clock_ms = epoch_ms(start)
        self._balance = a.initial_balance.astype(np.float64).tolist()
        self._payday = (self.clock_ms + a.payday_offset_ms).tolist()
        self._income = a.income.tolist()
        self._usual = np.exp(a.usual_log).tolist()
        self._limit = a.overdraft_limit.tolist()
        self._refunds: dict[int, list[tuple[int, float]]] = {}
        self._trip_start = np.full(a.size, -1, dtype=np.int64)
        self._trip_end = np.full(a.size, -1, dtype=np.int64)
        self._trip_region = a.home.copy()
        # Payments scheduled as legitimate: all but the episodes' share of fraud. Compromised merchants
        # turn `compromised` of their volume into fraud, so all typologies together are `fraud_rate`.
        scheduled = 1.0 - (1.0 - fraud.COMPROMISED_SHARE) * fraud_rate
        compromised = fraud.COMPROMISED_SHARE * fraud_rate / scheduled
        self._legit_rate = a.activity * scheduled / SESSION_FACTOR
        self._episode_rate = a.activity * a.risk * fraud_rate * fraud.EPISODES_PER_FRAUD_PAYMENT
        volume = self.favourites.expected_volume(
            self.merchants, a.activity * scheduled, a.category_cdf, a.type_cdf, a.home
        )
        self._compromises = Compromises(volume, compromised)
        self._false_report = LABEL_NOISE * fraud_rate / (1.0 - fraud_rate) if fraud_rate < 1.0 else 0.0
        self._next_episode = 0
        self._pending = ScheduledPayments.empty()

    @property
    def events_per_day(self) -> float:
        """Expected payments per day of event time, over the whole population."""
        return float(self.accounts.activity.sum())

    @property
    def balances(self) -> np.ndarray:
        """Each account's balance now (after the last payment simulated)."""
        return np.asarray(self._balance, dtype=np.float64)

    def account_ids(self, account: np.ndarray) -> list[str]:
        return [f"acct-{i + self.account_offset:06d}" for i in account.tolist()]

    def advance(self, duration_ms: int) -> Columns:
        """Simulate the next `duration_ms` of event time; its payments in event-time order, as columns.

        `merchant` is an index into `merchants`; `episode` the fraud episode (-1 legitimate); `known_ms`
        when the label `is_fraud` became known.
        """
        rng, a = self._rng, self.accounts
        t0, t1 = self.clock_ms, self.clock_ms + int(duration_ms)
        # The order of draws from the one seeded stream is the stream.
        self._next_episode += self._compromises.update(rng, t0, t1, self._next_episode)
        legit = self._legit(t0, t1)
        episodes = fraud.episodes(rng, self._episode_rate, a.usual_log, t0, t1, self._next_episode)
        if episodes.t.size:
            self._next_episode = int(episodes.episode[-1]) + 1
            local = episodes.typology == fraud.LOCAL
            region = np.where(local, a.home[episodes.account], rng.integers(0, self.merchants.regions, local.size))
            episodes.merchant = self.merchants.pick(episodes.category, episodes.ttype, region, rng)
        skeleton = ScheduledPayments.concat([self._pending, legit, episodes])
        order = np.argsort(skeleton.t, kind="stable")
        self._pending = skeleton.take(order[skeleton.t[order] >= t1])
        block = skeleton.take(order[skeleton.t[order] < t1])
        self.clock_ms = t1

        own = block.typology < 0
        compromise = self._compromises.episodes_at(block.merchant, block.t)
        hit = own & (compromise >= 0)
        block.fraud[hit] = True
        block.typology[hit] = fraud.COMPROMISED
        block.episode[hit] = compromise[hit]
        n = block.t.size
        u = rng.random(n)
        label = np.where(block.fraud, u >= LABEL_NOISE, u < self._false_report)
        known = labels.known_times(rng, block.t, label, block.reported)
        amount, old_balance, made = self._walk_balances(block, own | hit, np.where(label, known, -1))
        b = block.take(made)
        account = b.account
        return {
            "t_ms": b.t,
            "account": account + self.account_offset,
            "amount": amount[made],
            "old_balance": old_balance[made],
            "income": a.income[account],
            "credit": a.credit[account],
            "marital_status": a.marital_status[account],
            "children": a.children[account],
            "foreign_transaction": b.foreign,
            "month": months(b.t),
            "day_of_week": weekdays(b.t),
            "category_recipient": b.category,
            "transaction_type": b.ttype,
            "transaction_method": b.method,
            "is_fraud": label[made].astype(np.int64),
            "typology": b.typology,
            "episode": b.episode,
            "merchant": b.merchant,
            "known_ms": known[made],
        }

    def _legit(self, t0: int, t1: int) -> ScheduledPayments:
        rng, a, m, fav = self._rng, self.accounts, self.merchants, self.favourites
        days = (t1 - t0) / DAY_MS
        counts = rng.poisson(self._legit_rate * days)
        account = np.repeat(np.arange(a.size), counts)
        t = rng.integers(t0, max(t1, t0 + 1), account.size)
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
        # A regular merchant, or an occasional one by the account's own mix (a trip's mix abroad).
        regular = (rng.random(n) < fav.regular[account]) & ~on_trip
        merchant = np.empty(n, dtype=np.int64)
        r_account = account[regular]
        merchant[regular] = fav.merchant[r_account, pick(fav.cdf[r_account], rng)]
        o_account, o_trip = account[~regular], on_trip[~regular]
        category = pick(a.category_cdf[o_account], rng)
        category[o_trip] = rng.choice(len(_TRIP_CATEGORY), size=int(o_trip.sum()), p=_TRIP_CATEGORY)
        region = np.where(o_trip, self._trip_region[o_account], a.home[o_account])
        merchant[~regular] = m.pick(category, pick(a.type_cdf[o_account], rng), region, rng)

        foreign = rng.random(n) < np.where(on_trip, TRIP_FOREIGN, a.foreign_at_home[account])
        log_amount = rng.normal(a.usual_log[account], a.amount_sigma[account])
        large = rng.random(n) < LARGE_PURCHASE_SHARE
        log_amount[large] += rng.normal(*LARGE_PURCHASE_LOG, int(large.sum()))
        none = np.full(n, -1, dtype=np.int64)
        return ScheduledPayments(
            t=t,
            account=account,
            fraud=np.zeros(n, dtype=bool),
            category=m.category[merchant],
            method=m.method(merchant, pick(a.method_cdf[account], rng), rng),
            ttype=m.channel[merchant],
            foreign=foreign.astype(np.int64),
            kind=np.full(n, FIXED, dtype=np.int64),
            param=np.exp(log_amount),
            typology=none,
            merchant=merchant,
            episode=none.copy(),
            reported=none.copy(),
        )

    def _plan_trips(self, t0: int, t1: int, days: float) -> None:
        rng = self._rng
        free = self.accounts.traveller & (self._trip_end < t0)
        leaving = free & (rng.random(free.size) < TRIP_RATE_PER_DAY * days)
        k = int(leaving.sum())
        start = rng.integers(t0, max(t1, t0 + 1), k)
        self._trip_start[leaving] = start
        self._trip_end[leaving] = start + rng.integers(TRIP_DAYS[0], TRIP_DAYS[1] + 1, k) * DAY_MS
        self._trip_region[leaving] = rng.integers(0, self.merchants.regions, k)

    def _walk_balances(
        self, block: ScheduledPayments, own: np.ndarray, refund_at: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each payment's amount, the balance before it and whether it was made, walking the block in event time.

        `own` marks the customer's own payments, which the overdraft limit bounds; a payment with a
        `refund_at` time (>= 0) is refunded then.
        """
        balance, payday, income, usual, limit = self._balance, self._payday, self._income, self._usual, self._limit
        refunds = self._refunds
        n = block.t.size
        amounts = [0.0] * n
        before = [0.0] * n
        made = [True] * n
        rows = zip(
            block.t.tolist(),
            block.account.tolist(),
            block.kind.tolist(),
            block.param.tolist(),
            own.tolist(),
            refund_at.tolist(),
            strict=True,
        )
        for i, (t, acct, kind, param, mine, back) in enumerate(rows):
            while t >= payday[acct]:
                balance[acct] += income[acct]
                payday[acct] += MONTH_MS
            queue = refunds.get(acct)
            if queue is not None:
                while queue and queue[0][0] <= t:
                    balance[acct] += heapq.heappop(queue)[1]
                if not queue:
                    del refunds[acct]
            b = balance[acct]
            # A drain takes a share of what is there, but a thief still moves at least a usual amount.
            amount = max(b, 0.0) * param if kind == DRAIN else param
            if kind == DRAIN and amount < usual[acct]:
                amount = usual[acct] * (1.0 + param)
            amount = round(min(max(amount, MIN_AMOUNT), MAX_AMOUNT), 2)
            if mine and b - amount < -limit[acct]:
                room = math.floor((b + limit[acct]) * 100.0) / 100.0
                if room < MIN_AMOUNT or room < amount * SMALLER_AT_LEAST:
                    made[i] = False
                    continue
                amount = room
            before[i] = round(b, 2)
            amounts[i] = amount
            balance[acct] = b - amount
            if back >= 0:
                heapq.heappush(refunds.setdefault(acct, []), (back, amount))
        return (
            np.asarray(amounts, dtype=np.float64),
            np.asarray(before, dtype=np.float64),
            np.asarray(made, dtype=bool),
        )
