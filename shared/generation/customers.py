"""A seeded population of bank customers whose transactions unfold in event time, with fraud in episodes.

Each account has stable attributes (income, family, credit, a usual spending level, its own mix of
recipient categories, methods and channels, an activity rate, how often it travels) and a balance
that every payment lowers and a monthly salary raises. Legitimate payments arrive as a Poisson
process per account, some in short shopping sessions, some abroad during trips. Fraud arrives in
*episodes* drawn from the typologies in `TYPOLOGIES`: every payment of an episode is fraud, and an
episode's payments follow each other within minutes, so behaviour (bursts, amounts far above the
account's usual, first foreign payments, a draining balance) carries the signal a real fraud
team relies on, while the seed's twelve static fields keep their names, types and domains.

The simulation advances the whole population one block of event time at a time, vectorised with
NumPy; only the balance walk is sequential (a drain takes a share of whatever is left). Episode
payments that fall after a block's end wait for the next block, so the output is in event-time
order across accounts however it is cut into calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from shared.contract import schema as c
from shared.contract import timestamps

LABEL_NOISE: Final = 0.002
"""Share of labels flipped, as in any real history: caps achievable recall slightly below 100%."""

DAY_MS: Final = 86_400_000
MONTH_MS: Final = 2_629_746_000  # a mean Gregorian month: salaries arrive at a steady rhythm
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
WEEKEND_FRAUD_WEIGHT: Final = 1.3
"""Fraud episodes start this much more often on Saturdays and Sundays (the seed's fraud skewed to weekends)."""

# Category indexes in contract order, named for readability below.
_CAT = {name: i for i, name in enumerate(c.CATEGORY_RECIPIENTS)}
_METHOD = {name: i for i, name in enumerate(c.TRANSACTION_METHODS)}
_TYPE = {name: i for i, name in enumerate(c.TRANSACTION_TYPES)}


def _probs(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    out: np.ndarray = w / w.sum()
    return out


def _over(index: dict[str, int], weights: dict[str, float]) -> np.ndarray:
    """A probability vector over a contract category list from a sparse {value: weight}."""
    w = np.zeros(len(index), dtype=np.float64)
    for name, weight in weights.items():
        w[index[name]] = weight
    return _probs(w)


# Population-wide legitimate mixes (contract order); each account draws its own mix around them.
_LEGIT_CATEGORY = _probs([26, 18, 12, 8, 10, 5, 6, 1.5, 1, 5, 7.5])
_LEGIT_METHOD = _probs([38, 30, 18, 6, 3, 5])
_LEGIT_TYPE = _probs([60, 33, 7])
_TRIP_CATEGORY = _over(_CAT, {"restaurant": 30, "travel": 25, "food_store": 20, "clothing": 10, "other": 15})


@dataclass(frozen=True)
class Typology:
    """One documented fraud pattern: how often it occurs among episodes, its parameters and its source."""

    key: str
    name: str
    share: float
    pattern: str
    parameters: str
    based_on: str


TYPOLOGIES: Final = (
    Typology(
        key="account_takeover",
        name="Account takeover",
        share=0.45,
        pattern="someone who took over online or mobile banking drains the account in a burst of transfers and "
        "purchases, often from abroad, in categories the customer rarely uses",
        parameters="2 + Poisson(3) payments, gaps Exp(mean 4 min); online 75%, ATM 10%, on site 15%; bank transfer, "
        "mobile, card, other 35/35/20/10%; money transfer, electronics, jewelry, gambling, travel 40/20/15/15/10%; "
        "foreign for the whole episode with p 0.55; each payment takes Beta(2, 4) of the balance left (at least "
        "the usual amount)",
        based_on="the remote banking fraud described in UK Finance's Annual Fraud Report (internet and mobile "
        "banking taken over, money moved out fast) and FinCEN's advisories on account takeover",
    ),
    Typology(
        key="card_testing",
        name="Card testing",
        share=0.30,
        pattern="a fraudster checks stolen card details with several tiny online payments within minutes, then "
        "spends large amounts once the card is known to work",
        parameters="3 + Poisson(3) test payments of Uniform(0.50, 5.00), online card, gaps Exp(mean 40 s); then after "
        "Exp(mean 20 min) 1 + Poisson(1) cash-out payments of 8x usual (log-normal, sigma 0.5), online card or "
        "mobile, electronics, jewelry, travel, other; foreign with p 0.3",
        based_on="card testing (enumeration) as Visa's merchant guidance and Stripe's documentation describe it: "
        "many small authorisations in a short time, larger fraud once a card works",
    ),
    Typology(
        key="stolen_card",
        name="Lost or stolen card used locally",
        share=0.25,
        pattern="a thief uses a physical card in shops near home: everyday channels and no foreign flag, amounts a "
        "few times usual, spread over hours; the hardest typology, caught mostly by category and amount",
        parameters="1 + Poisson(1.5) payments, gaps Exp(mean 25 min); on site 80%, online 20%; contactless, card "
        "60/40%; electronics, jewelry, clothing, restaurant, food store, other 30/20/20/10/10/10%; foreign with "
        "p 0.05; amounts 2.5x usual (log-normal, sigma 0.6)",
        based_on="lost and stolen card fraud as UK Finance's Annual Fraud Report counts it (mostly contactless and "
        "chip-and-PIN at the point of sale)",
    ),
)
_TYPOLOGY_SHARES = _probs([t.share for t in TYPOLOGIES])
_EXPECTED_EPISODE_LENGTH: Final = 0.45 * 5.0 + 0.30 * (6.0 + 2.0) + 0.25 * 2.5
"""Mean payments per episode, from the parameters above; sets the episode rate for a fraud share."""

# Amount kinds resolved during the balance walk.
_FIXED, _DRAIN = 0, 1


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


def _pick(cdf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row from each row's cumulative distribution."""
    u = np.asarray(rng.random(cdf.shape[0]))[:, None]
    picked: np.ndarray = np.minimum((cdf < u).sum(axis=1), cdf.shape[1] - 1)
    return picked


@dataclass
class _Skeleton:
    """Payments scheduled but not yet resolved: amounts of drains depend on the balance when they happen."""

    t: np.ndarray
    account: np.ndarray
    fraud: np.ndarray
    category: np.ndarray
    method: np.ndarray
    ttype: np.ndarray
    foreign: np.ndarray
    kind: np.ndarray
    param: np.ndarray
    typology: np.ndarray
    """Index into `TYPOLOGIES` for fraud, -1 for legitimate payments."""

    @classmethod
    def empty(cls) -> _Skeleton:
        i, f = np.empty(0, np.int64), np.empty(0, np.float64)
        return cls(i, i, np.empty(0, bool), i, i, i, i, i, f, i)

    @classmethod
    def concat(cls, parts: Sequence[_Skeleton]) -> _Skeleton:
        names = cls.__dataclass_fields__
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})

    def take(self, rows: np.ndarray) -> _Skeleton:
        return _Skeleton(**{name: getattr(self, name)[rows] for name in self.__dataclass_fields__})


Columns = dict[str, np.ndarray]


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
        self.clock_ms = _epoch_ms(start)
        a = self.accounts
        self._balance = a.initial_balance.astype(np.float64).tolist()
        self._payday = (self.clock_ms + a.payday_offset_ms).tolist()
        self._trip_start = np.full(a.size, -1, dtype=np.int64)
        self._trip_end = np.full(a.size, -1, dtype=np.int64)
        # Legitimate and fraud rates split each account's activity by the fraud share: with sessions
        # and episode lengths accounted for, about `fraud_rate` of all payments are fraud.
        self._legit_rate = a.activity * (1.0 - fraud_rate) / (1.0 + SESSION_SHARE * SESSION_MEAN_EXTRA)
        self._episode_rate = a.activity * a.risk * fraud_rate / _EXPECTED_EPISODE_LENGTH
        self._pending = _Skeleton.empty()
        self._sequence = 0

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
        skeleton = _Skeleton.concat([self._pending, self._legit(t0, t1, days), self._episodes(t0, t1, days)])
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
            "month": _months(block.t),
            "day_of_week": _weekdays(block.t),
            "category_recipient": block.category,
            "transaction_type": block.ttype,
            "transaction_method": block.method,
            "is_fraud": label.astype(np.int64),
            "typology": block.typology,
        }

    def _legit(self, t0: int, t1: int, days: float) -> _Skeleton:
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
        category = _pick(a.category_cdf[account], rng)
        n_trip = int(on_trip.sum())
        category[on_trip] = rng.choice(len(_TRIP_CATEGORY), size=n_trip, p=_TRIP_CATEGORY)
        foreign = rng.random(n) < np.where(on_trip, TRIP_FOREIGN, a.foreign_at_home[account])
        log_amount = rng.normal(a.usual_log[account], a.amount_sigma[account])
        large = rng.random(n) < LARGE_PURCHASE_SHARE
        log_amount[large] += rng.normal(2.0, 0.5, int(large.sum()))
        return _Skeleton(
            t=t,
            account=account,
            fraud=np.zeros(n, dtype=bool),
            category=category,
            method=_pick(a.method_cdf[account], rng),
            ttype=_pick(a.type_cdf[account], rng),
            foreign=foreign.astype(np.int64),
            kind=np.full(n, _FIXED, dtype=np.int64),
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

    def _episodes(self, t0: int, t1: int, days: float) -> _Skeleton:
        rng, a = self._rng, self.accounts
        # Thinning: draw at the weekend rate, keep weekday starts with probability 1 / weight.
        counts = rng.poisson(
            self._episode_rate * days * WEEKEND_FRAUD_WEIGHT * 7.0 / (5.0 + 2.0 * WEEKEND_FRAUD_WEIGHT)
        )
        account = np.repeat(np.arange(a.size), counts)
        start = rng.integers(t0, t1, account.size)
        keep = (_weekdays(start) >= 5) | (rng.random(account.size) < 1.0 / WEEKEND_FRAUD_WEIGHT)
        account, start = account[keep], start[keep]
        kinds = rng.choice(len(TYPOLOGIES), size=account.size, p=_TYPOLOGY_SHARES)
        parts = [self._episode(int(acc), int(t), int(kind)) for acc, t, kind in zip(account, start, kinds, strict=True)]
        return _Skeleton.concat(parts) if parts else _Skeleton.empty()

    def _episode(self, account: int, start: int, kind: int) -> _Skeleton:
        rng = self._rng
        usual = float(np.exp(self.accounts.usual_log[account]))
        key = TYPOLOGIES[kind].key
        if key == "account_takeover":
            n = 2 + int(rng.poisson(3.0))
            gaps = rng.exponential(4 * 60_000, n)
            ttype = rng.choice(3, n, p=_over(_TYPE, {"online": 75, "atm": 10, "onsite": 15}))
            method = rng.choice(6, n, p=_over(_METHOD, {"bank_transfer": 35, "mobile": 35, "card": 20, "other": 10}))
            category = rng.choice(
                11,
                n,
                p=_over(_CAT, {"money_transfer": 40, "electronics": 20, "jewelry": 15, "gambling": 15, "travel": 10}),
            )
            foreign = np.full(n, int(rng.random() < 0.55))
            kind_ = np.full(n, _DRAIN)
            param = rng.beta(2.0, 4.0, n)
        elif key == "card_testing":
            tests, cash = 3 + int(rng.poisson(3.0)), 1 + int(rng.poisson(1.0))
            n = tests + cash
            gaps = np.concatenate(
                [rng.exponential(40_000, tests), [rng.exponential(20 * 60_000)], rng.exponential(3 * 60_000, cash - 1)]
            )
            ttype = np.full(n, _TYPE["online"])
            method = np.concatenate(
                [np.full(tests, _METHOD["card"]), rng.choice([_METHOD["card"], _METHOD["mobile"]], cash)]
            )
            category = np.concatenate(
                [
                    rng.choice([_CAT["other"], _CAT["electronics"], _CAT["clothing"], _CAT["food_store"]], tests),
                    rng.choice([_CAT["electronics"], _CAT["jewelry"], _CAT["travel"], _CAT["other"]], cash),
                ]
            )
            foreign = np.full(n, int(rng.random() < 0.3))
            kind_ = np.full(n, _FIXED)
            param = np.concatenate([rng.uniform(0.5, 5.0, tests), usual * 8.0 * rng.lognormal(0.0, 0.5, cash)])
        else:
            n = 1 + int(rng.poisson(1.5))
            gaps = rng.exponential(25 * 60_000, n)
            ttype = rng.choice(3, n, p=_over(_TYPE, {"onsite": 80, "online": 20}))
            method = rng.choice(6, n, p=_over(_METHOD, {"contactless": 60, "card": 40}))
            category = rng.choice(
                11,
                n,
                p=_over(
                    _CAT,
                    {"electronics": 30, "jewelry": 20, "clothing": 20, "restaurant": 10, "food_store": 10, "other": 10},
                ),
            )
            foreign = (rng.random(n) < 0.05).astype(np.int64)
            kind_ = np.full(n, _FIXED)
            param = usual * 2.5 * rng.lognormal(0.0, 0.6, n)
        gaps[0] = 0.0
        t = start + np.cumsum(gaps).astype(np.int64)
        return _Skeleton(
            t=t,
            account=np.full(n, account, dtype=np.int64),
            fraud=np.ones(n, dtype=bool),
            category=np.asarray(category, dtype=np.int64),
            method=np.asarray(method, dtype=np.int64),
            ttype=np.asarray(ttype, dtype=np.int64),
            foreign=np.asarray(foreign, dtype=np.int64),
            kind=np.asarray(kind_, dtype=np.int64),
            param=np.asarray(param, dtype=np.float64),
            typology=np.full(n, kind, dtype=np.int64),
        )

    def _walk_balances(self, block: _Skeleton) -> tuple[np.ndarray, np.ndarray]:
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
            amount = max(b, 0.0) * param if kind == _DRAIN else param
            if kind == _DRAIN and amount < usual[acct]:
                amount = usual[acct] * (1.0 + param)
            amount = round(min(max(amount, MIN_AMOUNT), MAX_AMOUNT), 2)
            before[i] = round(b, 2)
            amounts[i] = amount
            balance[acct] = b - amount
        return np.asarray(amounts, dtype=np.float64), np.asarray(before, dtype=np.float64)


def _epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("event time must be timezone-aware (UTC)")
    return round(moment.timestamp() * 1000)


def _days(t_ms: np.ndarray) -> np.ndarray:
    return t_ms.astype("datetime64[ms]").astype("datetime64[D]")


def _weekdays(t_ms: np.ndarray) -> np.ndarray:
    """Monday = 0, as the contract's `DAYS_OF_WEEK` order (1970-01-01 was a Thursday)."""
    out: np.ndarray = (t_ms // DAY_MS + 3) % 7
    return out.astype(np.int64)


def _months(t_ms: np.ndarray) -> np.ndarray:
    """Month as its contract code (month - 1)."""
    out: np.ndarray = _days(t_ms).astype("datetime64[M]").astype(np.int64) % 12
    return out


# The contract's timestamp form lives in `shared.contract.timestamps`; these names stay for their callers.
format_timestamps: Final = timestamps.format_many
parse_timestamp_ms: Final = timestamps.parse_ms


def uuids(rng: np.random.Generator, n: int) -> list[str]:
    """`n` version-4 UUIDs from a seeded stream, so a seeded run (and its replay) yields the same ids."""
    raw = rng.bytes(16 * n)
    return [str(uuid.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, 16 * n, 16)]


def records(columns: Columns, ids: Sequence[str], account_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Contract records (categories as their values) from simulated columns."""
    stamps = timestamps.format_many(columns["t_ms"])
    months, days, recips = c.MONTHS, c.DAYS_OF_WEEK, c.CATEGORY_RECIPIENTS
    types, methods = c.TRANSACTION_TYPES, c.TRANSACTION_METHODS
    return [
        {
            "id": id_,
            "timestamp": stamp,
            "account_id": account,
            "amount": amount,
            "old_balance": balance,
            "income": income,
            "credit": credit,
            "marital_status": marital,
            "children": children,
            "month": months[month],
            "day_of_week": days[day],
            "category_recipient": recips[recip],
            "transaction_type": types[ttype],
            "transaction_method": methods[method],
            "foreign_transaction": foreign,
            "is_fraud": label,
        }
        for (
            id_,
            stamp,
            account,
            amount,
            balance,
            income,
            credit,
            marital,
            children,
            month,
            day,
            recip,
            ttype,
            method,
            foreign,
            label,
        ) in zip(
            ids,
            stamps,
            account_ids,
            columns["amount"].tolist(),
            columns["old_balance"].tolist(),
            columns["income"].tolist(),
            columns["credit"].tolist(),
            columns["marital_status"].tolist(),
            columns["children"].tolist(),
            columns["month"].tolist(),
            columns["day_of_week"].tolist(),
            columns["category_recipient"].tolist(),
            columns["transaction_type"].tolist(),
            columns["transaction_method"].tolist(),
            columns["foreign_transaction"].tolist(),
            columns["is_fraud"].tolist(),
            strict=True,
        )
    ]


def utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)
