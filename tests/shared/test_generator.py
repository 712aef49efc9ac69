"""The generator: fraud rate, field domains, reproducibility."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from shared import contract as c
from shared.generator import TransactionGenerator

pytestmark = pytest.mark.unit

N = 50_000


@pytest.fixture(scope="module")
def sample() -> list[dict[str, object]]:
    return TransactionGenerator(fraud_rate=0.10, seed=123).generate(N, now=datetime(2026, 1, 1, tzinfo=UTC))


def test_fraud_rate_close_to_setting(sample: list[dict[str, object]]) -> None:
    """About 10% fraud over a large sample (binomial 4-sigma band)."""
    rate = sum(1 for r in sample if r["is_fraud"]) / N
    assert rate == pytest.approx(0.10, abs=4 * (0.1 * 0.9 / N) ** 0.5)


def test_other_fraud_rates_respected() -> None:
    """The rate is a setting, not a constant."""
    records = TransactionGenerator(fraud_rate=0.3, seed=1).generate(20_000)
    assert sum(1 for r in records if r["is_fraud"]) / 20_000 == pytest.approx(0.3, abs=0.02)


def test_every_record_satisfies_contract(sample: list[dict[str, object]]) -> None:
    """The generator only emits contract-valid records, with unique ids."""
    for record in sample:
        c.validate(record)
    assert len({r["id"] for r in sample}) == N


def test_field_domains_are_covered(sample: list[dict[str, object]]) -> None:
    """Every category value appears, so the one-hot columns are all exercised."""
    for field, values in c.CATEGORIES.items():
        seen = Counter(r[field] for r in sample)
        assert set(seen) == set(values), field


def test_classes_overlap(sample: list[dict[str, object]]) -> None:
    """The amount alone does not separate the classes: some fraud hides among everyday amounts."""
    fraud_amounts = [float(r["amount"]) for r in sample if r["is_fraud"]]  # type: ignore[arg-type]
    legit_amounts = sorted(float(r["amount"]) for r in sample if not r["is_fraud"])  # type: ignore[arg-type]
    legit_p90 = legit_amounts[9 * len(legit_amounts) // 10]
    assert sum(a <= legit_p90 for a in fraud_amounts) / len(fraud_amounts) > 0.05


def test_seed_reproduces_ids_and_values() -> None:
    """Same seed, same clock: the same transactions (a replayed generation yields the same ids)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    a = TransactionGenerator(seed=99).generate(500, now=now)
    b = TransactionGenerator(seed=99).generate(500, now=now)
    assert a == b
    assert TransactionGenerator(seed=100).generate(1, now=now)[0]["id"] != a[0]["id"]
