"""Merchants: ids, categories and channels per merchant, regular customers, sizes, and compromised merchants."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, datetime

import numpy as np
import pytest

from shared.generation.compromise import COMPROMISE_MS
from shared.generation.fraud import TYPOLOGIES, TYPOLOGY_KEYS
from shared.generation.generator import TransactionGenerator

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, tzinfo=UTC)

COMPROMISED = TYPOLOGY_KEYS.index("compromised_merchant")


@pytest.fixture(scope="module")
def cols() -> dict[str, np.ndarray]:
    return TransactionGenerator(fraud_rate=0.10, seed=41, accounts=2_000).columns(80_000, now=START)


def test_every_payment_names_a_merchant_with_one_category_and_channel(cols: dict[str, np.ndarray]) -> None:
    """Every payment has a merchant id (m-000123); a merchant's payments all carry its category and channel."""
    assert cols["merchant_id"].dtype == object
    assert all(re.fullmatch(r"m-[0-9]{6}", m) for m in set(cols["merchant_id"].tolist()))
    kinds: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for m, category, channel in zip(
        cols["merchant_id"].tolist(),
        cols["category_recipient"].tolist(),
        cols["transaction_type"].tolist(),
        strict=True,
    ):
        kinds[m].add((category, channel))
    assert all(len(k) == 1 for k in kinds.values())


def test_accounts_return_to_their_regular_merchants(cols: dict[str, np.ndarray]) -> None:
    """Most legitimate payments go to a merchant the account has paid before; an account uses few merchants."""
    legit = cols["typology"] < 0
    seen: set[tuple[int, str]] = set()
    repeats = 0
    for account, merchant, own in zip(
        cols["account"].tolist(), cols["merchant_id"].tolist(), legit.tolist(), strict=True
    ):
        repeats += own and (account, merchant) in seen
        seen.add((account, merchant))
    assert repeats / legit.sum() > 0.5
    payments = Counter(cols["account"][legit].tolist())
    merchants = Counter(
        a
        for a, _ in {
            (a, m)
            for a, m, own in zip(cols["account"].tolist(), cols["merchant_id"].tolist(), legit.tolist(), strict=True)
            if own
        }
    )
    busy = [a for a, n in payments.items() if n >= 40]
    assert busy
    assert np.median([merchants[a] / payments[a] for a in busy]) < 0.4


def test_merchants_differ_in_size(cols: dict[str, np.ndarray]) -> None:
    """A tenth of the merchants take far more than a tenth of the payments: big stores have many customers."""
    counts = np.sort(np.asarray(list(Counter(cols["merchant_id"].tolist()).values())))[::-1]
    assert counts[: counts.size // 10].sum() / counts.sum() > 0.25
    customers = Counter(m for _, m in set(zip(cols["account"].tolist(), cols["merchant_id"].tolist(), strict=True)))
    assert max(customers.values()) > 50


def test_side_by_side_populations_name_different_merchants() -> None:
    """Populations placed side by side (account_offset) never share a merchant id."""
    a = TransactionGenerator(seed=1, accounts=100).columns(2_000, now=START)
    b = TransactionGenerator(seed=2, accounts=100, account_offset=100).columns(2_000, now=START)
    assert not set(a["merchant_id"].tolist()) & set(b["merchant_id"].tolist())


def test_a_compromise_makes_every_payment_at_its_merchant_fraud_for_28_days(cols: dict[str, np.ndarray]) -> None:
    """A compromised-merchant episode is one merchant within 28 days, and no legitimate payment is made there then."""
    at = cols["typology"] == COMPROMISED
    episodes = np.unique(cols["episode"][at])
    assert episodes.size >= 10
    for episode in episodes.tolist():
        rows = cols["episode"] == episode
        merchants = np.unique(cols["merchant_id"][rows])
        assert merchants.size == 1
        t = cols["t_ms"][rows]
        assert t.max() - t.min() < COMPROMISE_MS
        during = (cols["merchant_id"] == merchants[0]) & (cols["t_ms"] >= t.min()) & (cols["t_ms"] <= t.max())
        assert not np.any(during & (cols["typology"] < 0))
    # Payments there are the customers' own: several customers per compromise, not one account's burst.
    customers = [np.unique(cols["account"][cols["episode"] == e]).size for e in episodes.tolist()]
    assert np.median(customers) > 1


def test_no_compromise_without_fraud() -> None:
    """At a fraud rate of 0 no merchant is compromised and no payment is fraud."""
    cols = TransactionGenerator(fraud_rate=0.0, seed=3, accounts=500).columns(20_000, now=START)
    assert not np.any(cols["typology"] >= 0)
    assert not np.any(cols["episode"] >= 0)


def test_compromised_merchant_is_documented_with_its_source() -> None:
    """The typology names the ULB handbook's 28-day compromised terminals as its source."""
    typology = TYPOLOGIES[COMPROMISED]
    assert "28 days" in typology.parameters
    assert "Handbook" in typology.based_on
    assert 0.0 < typology.share < 1.0
