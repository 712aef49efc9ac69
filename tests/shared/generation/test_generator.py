"""The customer generator: contract, fraud rate, event-time order, stable accounts, episodes, reproducibility."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from shared.contract import schema as c
from shared.contract.timestamps import parse_ms
from shared.generation.fraud import TYPOLOGIES, TYPOLOGY_KEYS
from shared.generation.generator import TransactionGenerator

pytestmark = pytest.mark.unit

N = 60_000
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample() -> list[dict[str, object]]:
    return TransactionGenerator(fraud_rate=0.10, seed=123, accounts=2_000).generate(N, now=START)


def test_fraud_share_close_to_setting(sample: list[dict[str, object]]) -> None:
    """About 10% of transactions are fraud; episodes cluster them, so the band is wider than a binomial one."""
    rate = sum(1 for r in sample if r["is_fraud"]) / N
    assert rate == pytest.approx(0.10, abs=0.015)


@pytest.mark.parametrize(("rate", "tolerance"), [(0.005, 0.001), (0.10, 0.01)])
def test_fraud_rate_holds_at_realistic_prevalence(rate: float, tolerance: float) -> None:
    """The labelled and the true fraud share are the setting, compromised merchants included, down to 0.5%."""
    cols = TransactionGenerator(fraud_rate=rate, seed=17, accounts=2_000).columns(150_000, now=START)
    assert cols["is_fraud"].mean() == pytest.approx(rate, abs=tolerance)
    assert (cols["typology"] >= 0).mean() == pytest.approx(rate, abs=tolerance)
    compromised = (cols["typology"] == TYPOLOGY_KEYS.index("compromised_merchant")).mean()
    assert compromised == pytest.approx(rate * TYPOLOGIES[TYPOLOGY_KEYS.index("compromised_merchant")].share, rel=0.3)


def test_typology_shares_are_shares_of_fraud_payments() -> None:
    """Each typology's observed share of the fraudulent payments is its documented share; the shares sum to 1."""
    assert sum(t.share for t in TYPOLOGIES) == pytest.approx(1.0)
    cols = TransactionGenerator(fraud_rate=0.2, seed=23, accounts=2_000).columns(100_000, now=START)
    kinds = cols["typology"][cols["typology"] >= 0]
    for k, typology in enumerate(TYPOLOGIES):
        assert (kinds == k).mean() == pytest.approx(typology.share, abs=0.03), typology.key


@pytest.mark.parametrize("share", [0.0, 0.3])
def test_other_fraud_shares_respected(share: float) -> None:
    """The share is a setting, not a constant."""
    records = TransactionGenerator(fraud_rate=share, seed=1, accounts=1_000).generate(30_000)
    assert sum(1 for r in records if r["is_fraud"]) / 30_000 == pytest.approx(share, abs=0.03)


def test_every_record_satisfies_contract(sample: list[dict[str, object]]) -> None:
    """The generator only emits contract-valid records, with unique ids."""
    for record in sample:
        assert c.validate(record).merchant_id == record["merchant_id"]
    assert len({r["id"] for r in sample}) == N


def test_field_domains_are_covered(sample: list[dict[str, object]]) -> None:
    """Every category value appears (months over a long history), so the one-hot columns are all exercised."""
    for field, values in c.CATEGORIES.items():
        if field == "month":
            continue
        assert set(Counter(r[field] for r in sample)) == set(values), field
    year = TransactionGenerator(seed=2, accounts=20).generate(20 * 2 * 400, now=START)
    assert {r["month"] for r in year} == set(c.MONTHS)


def test_event_time_order_across_calls() -> None:
    """Consecutive calls continue one stream in event-time order across accounts, starting at `now`."""
    gen = TransactionGenerator(seed=5, accounts=300)
    stamps = [r["timestamp"] for n in (1, 700, 33, 2_000) for r in gen.generate(n, now=START)]
    times = [parse_ms(s) for s in stamps]
    assert times == sorted(times)
    assert times[0] >= parse_ms("2026-01-01T00:00:00Z")


def test_call_sizes_do_not_change_the_stream() -> None:
    """The same seed gives the same transactions however the stream is cut into calls, over many blocks."""
    whole = TransactionGenerator(fraud_rate=0.2, seed=9, accounts=200).generate(20_000, now=START)
    cut = TransactionGenerator(fraud_rate=0.2, seed=9, accounts=200)
    parts = [r for n in (1, 999, 2_000, 9_000, 3, 7_997) for r in cut.generate(n, now=START)]
    assert parts == whole


def test_accounts_keep_their_attributes_and_their_balance_walks(sample: list[dict[str, object]]) -> None:
    """Income and family never change within an account; a balance is the last minus its payment, or more.

    Only a salary or the refund of a payment reported as fraud moves a balance up between two payments.
    """
    by_account: dict[object, list[dict[str, object]]] = {}
    for r in sample:
        by_account.setdefault(r["account_id"], []).append(r)
    steps = raised = 0
    for rows in by_account.values():
        assert len({(r["income"], r["credit"], r["marital_status"], r["children"]) for r in rows}) == 1
        for prev, nxt in itertools.pairwise(rows):
            expected = float(prev["old_balance"]) - float(prev["amount"])  # type: ignore[arg-type]
            steps += 1
            if abs(float(nxt["old_balance"]) - expected) > 0.011:  # type: ignore[arg-type]
                raised += 1
                assert float(nxt["old_balance"]) > expected  # type: ignore[arg-type]
    assert steps > N * 0.9
    assert raised < steps * 0.06


def test_fraud_comes_in_episodes_of_each_typology() -> None:
    """Every typology occurs; an episode's payments share its id and typology; episodes on one account are bursts."""
    cols = TransactionGenerator(seed=11, accounts=1_000).columns(40_000, now=START)
    assert set(np.unique(cols["typology"][cols["typology"] >= 0]).tolist()) == set(range(len(TYPOLOGIES)))
    assert np.array_equal(cols["episode"] >= 0, cols["typology"] >= 0)
    episode, first = np.unique(cols["episode"][cols["episode"] >= 0], return_index=True)
    kind_of = dict(zip(episode.tolist(), cols["typology"][cols["episode"] >= 0][first].tolist(), strict=True))
    assert all(
        kind_of[e] == k for e, k in zip(cols["episode"].tolist(), cols["typology"].tolist(), strict=True) if e >= 0
    )
    episodic = cols["typology"] != TYPOLOGY_KEYS.index("compromised_merchant")
    accounts_of: dict[int, set[int]] = {e: set() for e in episode.tolist()}
    for e, a in zip(cols["episode"][episodic].tolist(), cols["account"][episodic].tolist(), strict=True):
        if e >= 0:
            accounts_of[e].add(a)
    assert all(len(accounts) <= 1 for accounts in accounts_of.values())
    fraud = (cols["typology"] >= 0) & episodic
    order = np.lexsort((cols["t_ms"], cols["account"]))
    acct, t, f = cols["account"][order], cols["t_ms"][order], fraud[order]
    follows = (acct[1:] == acct[:-1]) & f[1:] & f[:-1]
    gaps = (t[1:] - t[:-1])[follows]
    assert np.median(gaps) < 30 * 60_000
    testing = cols["typology"] == [t.key for t in TYPOLOGIES].index("card_testing")
    assert (cols["amount"][testing] <= 5.0).mean() > 0.5


def test_classes_overlap(sample: list[dict[str, object]]) -> None:
    """The amount alone does not separate the classes: some fraud hides among everyday amounts."""
    fraud_amounts = [float(r["amount"]) for r in sample if r["is_fraud"]]  # type: ignore[arg-type]
    legit_amounts = sorted(float(r["amount"]) for r in sample if not r["is_fraud"])  # type: ignore[arg-type]
    legit_p90 = legit_amounts[9 * len(legit_amounts) // 10]
    assert sum(a <= legit_p90 for a in fraud_amounts) / len(fraud_amounts) > 0.05


def test_seed_reproduces_ids_and_values() -> None:
    """Same seed, same clock: the same transactions (a replayed generation yields the same ids)."""
    a = TransactionGenerator(seed=99).generate(500, now=START)
    b = TransactionGenerator(seed=99).generate(500, now=START)
    assert a == b
    assert TransactionGenerator(seed=100).generate(1, now=START)[0]["id"] != a[0]["id"]


def test_rejects_a_fraud_share_outside_0_1() -> None:
    """A share is a probability."""
    with pytest.raises(ValueError, match="fraud_rate"):
        TransactionGenerator(fraud_rate=1.5)
