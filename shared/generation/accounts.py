"""The population's accounts: stable attributes, spending scaled to income, and a modest overdraft limit.

Each account has income, family and credit (the seed's static fields), an activity rate, a usual
amount, its own mix of recipient categories, methods and channels, a home region (where its
physical merchants are, `merchants.py`), whether it travels, a starting balance and a payday.

Spending is budgeted from income: the expected legitimate spending of a month, large purchases
included, is `SPEND_SHARE` of the monthly salary, so balances do not drift into overdraft. An
account may overdraw down to its `overdraft_limit` (none for `NO_OVERDRAFT_SHARE` of accounts, else
0.2-0.6 of a month's income); a legitimate payment that would go past it is made smaller or not
at all (`population.py`), as a bank declines it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from shared.generation.event_time import MONTH_MS
from shared.generation.payments import probs

SESSION_SHARE: Final = 0.15
"""Legitimate payments that open a shopping session of 1-3 more payments within the hour."""
SESSION_MEAN_EXTRA: Final = 2.0
SESSION_FACTOR: Final = 1.0 + SESSION_SHARE * SESSION_MEAN_EXTRA
"""Payments per scheduled legitimate payment, its session included."""
LARGE_PURCHASE_SHARE: Final = 0.04
"""Legitimate payments that are large purchases: their log amount is raised by Normal(2.0, 0.5)."""
LARGE_PURCHASE_LOG: Final = (2.0, 0.5)
LARGE_FACTOR: Final = 1.0 + LARGE_PURCHASE_SHARE * (np.exp(LARGE_PURCHASE_LOG[0] + LARGE_PURCHASE_LOG[1] ** 2 / 2) - 1)
"""Mean amount over the mean everyday amount, large purchases included (about 1.3)."""
SPEND_SHARE: Final = (0.55, 0.9)
"""Range of the share of monthly income an account spends in legitimate payments (drawn per account)."""
NO_OVERDRAFT_SHARE: Final = 0.4
OVERDRAFT_OF_INCOME: Final = (0.2, 0.6)
TRAVELLER_SHARE: Final = 0.25
DAYS_PER_MONTH: Final = MONTH_MS / 86_400_000

# Population-wide legitimate mixes (contract order); each account draws its own mix around them.
LEGIT_CATEGORY: Final = probs([26, 18, 12, 8, 10, 5, 6, 1.5, 1, 5, 7.5])
LEGIT_METHOD: Final = probs([38, 30, 18, 6, 3, 5])
LEGIT_TYPE: Final = probs([60, 33, 7])


@dataclass(frozen=True)
class Accounts:
    """Stable per-account attributes, one array entry per account."""

    income: np.ndarray
    """Monthly salary, paid on the account's payday."""
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
    home: np.ndarray
    """Region of the account's physical merchants."""
    overdraft_limit: np.ndarray
    initial_balance: np.ndarray
    payday_offset_ms: np.ndarray

    @property
    def size(self) -> int:
        return int(self.income.size)

    @classmethod
    def draw(cls, n: int, regions: int, rng: np.random.Generator) -> Accounts:
        income = rng.lognormal(mean=7.9, sigma=0.45, size=n)
        credit = (rng.random(n) < 0.3).astype(np.int64)
        marital = (rng.random(n) < 0.5).astype(np.int64)
        children = np.minimum(rng.poisson(1.2, n), 8).astype(np.int64)
        activity = np.clip(rng.lognormal(mean=0.25, sigma=0.55, size=n), 0.15, 12.0)
        sigma = rng.uniform(0.6, 1.0, n)
        # The budget: SPEND_SHARE of income a month over all of the account's payments, sessions and
        # large purchases included (fraud's share of `activity` only lowers legitimate spending).
        spend = rng.uniform(*SPEND_SHARE, n) * income
        mean_amount = spend / (DAYS_PER_MONTH * activity * LARGE_FACTOR)
        usual_log = np.log(np.maximum(mean_amount, 2.0)) - sigma**2 / 2.0
        # Small Dirichlet concentrations: each account uses a few categories, methods and channels a lot
        # and the rest rarely, so a first payment to a rare one means something.
        category = rng.dirichlet(6.0 * LEGIT_CATEGORY * len(LEGIT_CATEGORY), n)
        method = rng.dirichlet(4.0 * LEGIT_METHOD * len(LEGIT_METHOD), n)
        ttype = rng.dirichlet(6.0 * LEGIT_TYPE * len(LEGIT_TYPE), n)
        traveller = rng.random(n) < TRAVELLER_SHARE
        foreign_at_home = np.where(rng.random(n) < 0.1, 0.03, 0.002)
        risk = np.exp(0.6 * credit - 0.5 * marital - 0.25 * (children - 1.2) - 0.4 * (np.log(income) - 7.9))
        risk *= activity.sum() / (activity * risk).sum()
        limit = np.where(
            rng.random(n) < NO_OVERDRAFT_SHARE, 0.0, np.round(income * rng.uniform(*OVERDRAFT_OF_INCOME, n))
        )
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
            home=rng.integers(0, regions, n),
            overdraft_limit=limit,
            initial_balance=np.maximum(balance, 0.0),
            payday_offset_ms=rng.integers(0, MONTH_MS, n),
        )
