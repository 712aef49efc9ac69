"""Fraud: the documented typologies, when their episodes start, and the payments each episode makes.

`TYPOLOGIES` lists them with each one's share of fraudulent payments (the shares sum to 1), its
pattern, parameters and sources. Three come in episodes on one account: every payment of an
episode is fraud, and its payments follow each other within minutes, so behaviour (bursts, amounts
far above the account's usual, first foreign payments, a draining balance) carries the signal a
real fraud team relies on. Draining amounts are left to the balance walk (`DRAIN`), which knows
what is left when each payment happens. The fourth, `compromised_merchant`, turns the legitimate
payments at a compromised merchant into fraud for 28 days (`compromise.py`); its episode is the
compromise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from shared.generation import labels
from shared.generation.event_time import weekdays
from shared.generation.payments import CATEGORY, DRAIN, FIXED, METHOD, TYPE, ScheduledPayments, over, probs

WEEKEND_FRAUD_WEIGHT: Final = 1.3
"""Fraud episodes start this much more often on Saturdays and Sundays (the seed's fraud skewed to weekends)."""


@dataclass(frozen=True)
class Typology:
    """One documented fraud pattern: its share of fraudulent payments, its parameters and its source."""

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
        share=0.32,
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
        share=0.34,
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
        share=0.09,
        pattern="a thief uses a physical card in shops near home: everyday channels and no foreign flag, amounts a "
        "few times usual, spread over hours; the hardest typology, caught mostly by category and amount",
        parameters="1 + Poisson(1.5) payments, gaps Exp(mean 25 min); on site 80%, online 20%; contactless, card "
        "60/40%; electronics, jewelry, clothing, restaurant, food store, other 30/20/20/10/10/10%; foreign with "
        "p 0.05; amounts 2.5x usual (log-normal, sigma 0.6)",
        based_on="lost and stolen card fraud as UK Finance's Annual Fraud Report counts it (mostly contactless and "
        "chip-and-PIN at the point of sale)",
    ),
    Typology(
        key="compromised_merchant",
        name="Compromised merchant",
        share=0.25,
        pattern="card data is stolen at a merchant (a skimmed terminal, a breached online shop): while the compromise "
        "lasts, every payment there is fraud, made by the merchant's own customers in their everyday way, so only "
        "the merchant's record of confirmed frauds, known days later, tells",
        parameters="compromises last 28 days; merchants picked at random, each equally likely among those whose "
        "expected volume fits, as many at once as keeps their expected legitimate volume at this typology's share "
        "of the fraud rate (so at low rates, smaller merchants); one episode per compromise; amounts, channels, "
        "methods and categories are the customers' own there",
        based_on="scenario 2 of the transaction simulator in the ULB 'Reproducible Machine Learning for Credit Card "
        "Fraud Detection - Practical Handbook' (Le Borgne, Siblini, Lebichot, Bontempi): terminals drawn at random "
        "are compromised for 28 days and every transaction at them in that time is fraudulent; it stands for "
        "card-data compromise at a common point of purchase (skimmed terminals, breached merchants), the fraud "
        "being marked where the data was taken rather than where the stolen cards are used",
    ),
)
TYPOLOGY_KEYS: Final = tuple(t.key for t in TYPOLOGIES)
COMPROMISED: Final = TYPOLOGY_KEYS.index("compromised_merchant")
COMPROMISED_SHARE: Final = TYPOLOGIES[COMPROMISED].share
LOCAL: Final = TYPOLOGY_KEYS.index("stolen_card")
"""The typology whose shops are in the account's home region; other episodes use merchants anywhere."""
EPISODE_PAYMENTS: Final = {"account_takeover": 5.0, "card_testing": 6.0 + 2.0, "stolen_card": 2.5}
"""Mean payments per episode of the episodic typologies, from their parameters above."""
_EPISODIC: Final = np.asarray([TYPOLOGY_KEYS.index(k) for k in EPISODE_PAYMENTS])
_STARTS_BY_KIND: Final = np.asarray([TYPOLOGIES[k].share / EPISODE_PAYMENTS[TYPOLOGY_KEYS[k]] for k in _EPISODIC])
EPISODES_PER_FRAUD_PAYMENT: Final = float(_STARTS_BY_KIND.sum())
"""Episodes started per fraudulent payment (all typologies): the episode rate for a fraud rate."""
_KIND_P: Final = probs(_STARTS_BY_KIND)


def episodes(
    rng: np.random.Generator,
    episode_rate: np.ndarray,
    usual_log: np.ndarray,
    t0: int,
    t1: int,
    first_episode: int,
) -> ScheduledPayments:
    """The payments of every episode starting in [t0, t1), per account's episode rate a day and usual log amount.

    Episodes are numbered from `first_episode` in start order; merchants are left to the caller (-1).
    """
    days = (t1 - t0) / 86_400_000
    # Thinning: draw at the weekend rate, keep weekday starts with probability 1 / weight.
    counts = rng.poisson(episode_rate * days * WEEKEND_FRAUD_WEIGHT * 7.0 / (5.0 + 2.0 * WEEKEND_FRAUD_WEIGHT))
    account = np.repeat(np.arange(episode_rate.size), counts)
    start = rng.integers(t0, max(t1, t0 + 1), account.size)
    keep = (weekdays(start) >= 5) | (rng.random(account.size) < 1.0 / WEEKEND_FRAUD_WEIGHT)
    account, start = account[keep], start[keep]
    kinds = _EPISODIC[rng.choice(_EPISODIC.size, size=account.size, p=_KIND_P)]
    parts = [
        _episode(rng, int(acc), float(np.exp(usual_log[acc])), int(t), int(kind))
        for acc, t, kind in zip(account.tolist(), start.tolist(), kinds.tolist(), strict=True)
    ]
    if not parts:
        return ScheduledPayments.empty()
    out = ScheduledPayments.concat(parts)
    sizes = np.asarray([p.t.size for p in parts])
    # One report per episode, counted from its last payment.
    last = out.t[np.cumsum(sizes) - 1]
    out.episode = np.repeat(first_episode + np.arange(len(parts)), sizes)
    out.reported = np.repeat(last + labels.fraud_lags(rng, len(parts)), sizes)
    return out


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
    else:  # stolen_card
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
        merchant=np.full(n, -1, dtype=np.int64),
        episode=np.full(n, -1, dtype=np.int64),
        reported=np.full(n, -1, dtype=np.int64),
    )
