"""Synthetic bank transactions with a known fraud label, following the seed generator's recipe.

Fraud and legitimate transactions are drawn from overlapping distributions (fraud skews to larger
amounts and smaller balances, online and foreign payments, risky recipients, weekends and the
year-end rush) with noise on every field, so no single field separates the classes and the
model has real work to do. A small share of labels is flipped to mimic mislabelled history.
Generation is vectorised with NumPy: a local run needs tens of thousands of events per second.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from shared import contract as c

LABEL_NOISE = 0.002
"""Share of labels flipped, as in any real history: caps achievable recall slightly below 100%."""

ACCOUNT_POOL = 50_000
LARGE_PURCHASE_SHARE = 0.04
"""Legitimate transactions that are large purchases (they overlap with fraud amounts)."""
DRAIN_SHARE = 0.9
"""Fraud that drains a share of the balance; the rest uses everyday amounts."""


def _probs(weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    out: np.ndarray = w / w.sum()
    return out


# Per-class category weights, in the contract's category order.
_DAY_W = {False: _probs([15, 15, 15, 15, 16, 12, 12]), True: _probs([10, 10, 11, 12, 17, 20, 20])}
_RECIPIENT_W = {
    False: _probs([26, 18, 12, 8, 10, 5, 6, 1.5, 1, 5, 7.5]),
    True: _probs([4, 4, 1, 1, 6, 12, 24, 16, 14, 13, 5]),
}
_TYPE_W = {False: _probs([60, 33, 7]), True: _probs([25, 62, 13])}
_METHOD_W = {False: _probs([38, 30, 18, 6, 3, 5]), True: _probs([22, 12, 22, 26, 6, 12])}
_MONTH_W = {False: _probs([8] * 10 + [9, 11]), True: _probs([7] * 10 + [12, 16])}


class TransactionGenerator:
    """Seeded source of labelled transactions; one instance keeps one random stream."""

    def __init__(self, fraud_rate: float = 0.10, seed: int | None = None) -> None:
        if not 0.0 <= fraud_rate <= 1.0:
            raise ValueError("fraud_rate must be within [0, 1]")
        self.fraud_rate = fraud_rate
        self._rng = np.random.default_rng(seed)

    def columns(self, n: int) -> dict[str, np.ndarray]:
        """Draw `n` transactions as NumPy columns: categories as codes, the form `features.encode` takes."""
        rng = self._rng
        fraud = rng.random(n) < self.fraud_rate
        nf = int(fraud.sum())

        income = rng.lognormal(mean=7.9, sigma=0.45, size=n)
        balance_months = np.where(fraud, rng.gamma(1.6, 4.0, n), rng.gamma(2.2, 6.0, n))
        old_balance = income * balance_months + rng.normal(0.0, 300.0, n)
        # Legitimate spending: mostly small, with occasional large purchases. Most fraud drains a
        # share of the balance; the rest mimics everyday amounts and is only caught by context
        # (channel, recipient, country), which keeps the task from being trivial.
        everyday = rng.lognormal(mean=3.6, sigma=1.0, size=n)
        large = rng.lognormal(mean=6.3, sigma=0.9, size=n)
        legit_amount = np.where(rng.random(n) < LARGE_PURCHASE_SHARE, large, everyday)
        drain = np.maximum(old_balance, 50.0) * rng.beta(2.0, 5.0, n)
        mimic = rng.lognormal(mean=4.0, sigma=1.0, size=n)
        fraud_amount = np.where(rng.random(n) < DRAIN_SHARE, drain, mimic)
        amount = np.where(fraud, fraud_amount, legit_amount)
        amount = np.clip(np.round(amount, 2), 0.01, 50_000.0)

        credit = rng.random(n) < np.where(fraud, 0.42, 0.28)
        marital = rng.random(n) < np.where(fraud, 0.38, 0.52)
        children = np.minimum(rng.poisson(np.where(fraud, 0.9, 1.3)), 8)
        foreign = rng.random(n) < np.where(fraud, 0.40, 0.05)

        def pick(weights: dict[bool, np.ndarray], k: int) -> np.ndarray:
            out = rng.choice(k, size=n, p=weights[False])
            out[fraud] = rng.choice(k, size=nf, p=weights[True])
            return out

        day = pick(_DAY_W, len(c.DAYS_OF_WEEK))
        recipient = pick(_RECIPIENT_W, len(c.CATEGORY_RECIPIENTS))
        ttype = pick(_TYPE_W, len(c.TRANSACTION_TYPES))
        method = pick(_METHOD_W, len(c.TRANSACTION_METHODS))
        month = pick(_MONTH_W, len(c.MONTHS))

        flip = rng.random(n) < LABEL_NOISE
        label = fraud ^ flip

        return {
            "account": rng.integers(0, ACCOUNT_POOL, n),
            "amount": amount,
            "old_balance": np.round(old_balance, 2),
            "income": np.round(income, 2),
            "credit": credit.astype(np.int64),
            "marital_status": marital.astype(np.int64),
            "children": children.astype(np.int64),
            "foreign_transaction": foreign.astype(np.int64),
            "month": month,
            "day_of_week": day,
            "category_recipient": recipient,
            "transaction_type": ttype,
            "transaction_method": method,
            "is_fraud": label.astype(np.int64),
        }

    def generate(self, n: int, now: datetime | None = None) -> list[dict[str, Any]]:
        """Draw `n` transactions as JSON-ready records that satisfy the contract."""
        if n < 0:
            raise ValueError("n must be >= 0")
        cols = self.columns(n)
        # Ids come from the seeded stream too, so a seeded run (and its replay) yields the same ids.
        raw_ids = self._rng.bytes(16 * n)
        ids = [str(uuid.UUID(bytes=raw_ids[i : i + 16], version=4)) for i in range(0, 16 * n, 16)]
        start = now or datetime.now(UTC)
        offsets_ms = np.sort(self._rng.integers(0, 1000, n))
        stamps = [
            (start + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for ms in offsets_ms.tolist()
        ]
        months, days, recips = c.MONTHS, c.DAYS_OF_WEEK, c.CATEGORY_RECIPIENTS
        types, methods = c.TRANSACTION_TYPES, c.TRANSACTION_METHODS
        return [
            {
                "id": ids[i],
                "timestamp": stamps[i],
                "account_id": f"acct-{acct:06d}",
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
            for i, (
                acct,
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
            ) in enumerate(
                zip(
                    cols["account"].tolist(),
                    cols["amount"].tolist(),
                    cols["old_balance"].tolist(),
                    cols["income"].tolist(),
                    cols["credit"].tolist(),
                    cols["marital_status"].tolist(),
                    cols["children"].tolist(),
                    cols["month"].tolist(),
                    cols["day_of_week"].tolist(),
                    cols["category_recipient"].tolist(),
                    cols["transaction_type"].tolist(),
                    cols["transaction_method"].tolist(),
                    cols["foreign_transaction"].tolist(),
                    cols["is_fraud"].tolist(),
                    strict=True,
                )
            )
        ]
