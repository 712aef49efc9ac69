"""Fraud in episodes: the documented typologies, when episodes start, and the payments each one makes.

Every payment of an episode is fraud, and an episode's payments follow each other within minutes,
so behaviour (bursts, amounts far above the account's usual, first foreign payments, a draining
balance) carries the signal a real fraud team relies on. Draining amounts are left to the balance
walk (`DRAIN`), which knows what is left when each payment happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from shared.generation.event_time import weekdays
from shared.generation.payments import CATEGORY, DRAIN, FIXED, METHOD, TYPE, ScheduledPayments, over, probs

WEEKEND_FRAUD_WEIGHT: Final = 1.3
"""Fraud episodes start this much more often on Saturdays and Sundays (the seed's fraud skewed to weekends)."""


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
_TYPOLOGY_SHARES = probs([t.share for t in TYPOLOGIES])
EXPECTED_EPISODE_LENGTH: Final = 0.45 * 5.0 + 0.30 * (6.0 + 2.0) + 0.25 * 2.5
"""Mean payments per episode, from the parameters above; sets the episode rate for a fraud share."""


def episodes(
    rng: np.random.Generator, episode_rate: np.ndarray, usual_log: np.ndarray, t0: int, t1: int, days: float
) -> ScheduledPayments:
    """The payments of every episode starting in [t0, t1), per account's episode rate a day and usual log amount."""
    # Thinning: draw at the weekend rate, keep weekday starts with probability 1 / weight.
    counts = rng.poisson(episode_rate * days * WEEKEND_FRAUD_WEIGHT * 7.0 / (5.0 + 2.0 * WEEKEND_FRAUD_WEIGHT))
    account = np.repeat(np.arange(episode_rate.size), counts)
    start = rng.integers(t0, t1, account.size)
    keep = (weekdays(start) >= 5) | (rng.random(account.size) < 1.0 / WEEKEND_FRAUD_WEIGHT)
    account, start = account[keep], start[keep]
    kinds = rng.choice(len(TYPOLOGIES), size=account.size, p=_TYPOLOGY_SHARES)
    parts = [
        _episode(rng, int(acc), float(np.exp(usual_log[acc])), int(t), int(kind))
        for acc, t, kind in zip(account, start, kinds, strict=True)
    ]
    return ScheduledPayments.concat(parts) if parts else ScheduledPayments.empty()


def _episode(rng: np.random.Generator, account: int, usual: float, start: int, kind: int) -> ScheduledPayments:
    """One episode of typology `kind` on `account` (whose usual amount is `usual`), starting at `start`."""
    key = TYPOLOGIES[kind].key
    if key == "account_takeover":
        n = 2 + int(rng.poisson(3.0))
        gaps = rng.exponential(4 * 60_000, n)
        ttype = rng.choice(3, n, p=over(TYPE, {"online": 75, "atm": 10, "onsite": 15}))
        method = rng.choice(6, n, p=over(METHOD, {"bank_transfer": 35, "mobile": 35, "card": 20, "other": 10}))
        category = rng.choice(
            11,
            n,
            p=over(CATEGORY, {"money_transfer": 40, "electronics": 20, "jewelry": 15, "gambling": 15, "travel": 10}),
        )
        foreign = np.full(n, int(rng.random() < 0.55))
        kind_ = np.full(n, DRAIN)
        param = rng.beta(2.0, 4.0, n)
    elif key == "card_testing":
        tests, cash = 3 + int(rng.poisson(3.0)), 1 + int(rng.poisson(1.0))
        n = tests + cash
        gaps = np.concatenate(
            [rng.exponential(40_000, tests), [rng.exponential(20 * 60_000)], rng.exponential(3 * 60_000, cash - 1)]
        )
        ttype = np.full(n, TYPE["online"])
        method = np.concatenate([np.full(tests, METHOD["card"]), rng.choice([METHOD["card"], METHOD["mobile"]], cash)])
        category = np.concatenate(
            [
                rng.choice(
                    [CATEGORY["other"], CATEGORY["electronics"], CATEGORY["clothing"], CATEGORY["food_store"]], tests
                ),
                rng.choice([CATEGORY["electronics"], CATEGORY["jewelry"], CATEGORY["travel"], CATEGORY["other"]], cash),
            ]
        )
        foreign = np.full(n, int(rng.random() < 0.3))
        kind_ = np.full(n, FIXED)
        param = np.concatenate([rng.uniform(0.5, 5.0, tests), usual * 8.0 * rng.lognormal(0.0, 0.5, cash)])
    else:
        n = 1 + int(rng.poisson(1.5))
        gaps = rng.exponential(25 * 60_000, n)
        ttype = rng.choice(3, n, p=over(TYPE, {"onsite": 80, "online": 20}))
        method = rng.choice(6, n, p=over(METHOD, {"contactless": 60, "card": 40}))
        category = rng.choice(
            11,
            n,
            p=over(
                CATEGORY,
                {"electronics": 30, "jewelry": 20, "clothing": 20, "restaurant": 10, "food_store": 10, "other": 10},
            ),
        )
        foreign = (rng.random(n) < 0.05).astype(np.int64)
        kind_ = np.full(n, FIXED)
        param = usual * 2.5 * rng.lognormal(0.0, 0.6, n)
    gaps[0] = 0.0
    t = start + np.cumsum(gaps).astype(np.int64)
    return ScheduledPayments(
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
