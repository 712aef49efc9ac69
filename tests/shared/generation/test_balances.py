"""Balances stay plausible: spending fits income, the overdraft limit holds, fraud is refunded once reported."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from shared.generation.generator import TransactionGenerator

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def run() -> tuple[TransactionGenerator, dict[str, np.ndarray]]:
    """A quarter of a year of 1,000 accounts at a 10% fraud rate."""
    generator = TransactionGenerator(fraud_rate=0.10, seed=71, accounts=1_000)
    cols = generator.columns(140_000, now=START)
    assert cols["t_ms"][-1] - cols["t_ms"][0] > 85 * 86_400_000
    return generator, cols


def test_few_legitimate_payments_start_in_overdraft(run: tuple[TransactionGenerator, dict[str, np.ndarray]]) -> None:
    """Under 2% of legitimate payments start from a negative balance, and under 15% of accounts ever do."""
    _, cols = run
    legit = cols["typology"] < 0
    negative = cols["old_balance"] < 0
    assert negative[legit].mean() < 0.02
    accounts = np.unique(cols["account"])
    assert np.unique(cols["account"][legit & negative]).size < 0.15 * accounts.size


def test_no_own_payment_goes_past_the_overdraft_limit(run: tuple[TransactionGenerator, dict[str, np.ndarray]]) -> None:
    """A customer's own payment never takes the balance below minus the account's overdraft limit."""
    generator, cols = run
    limit = generator.population.accounts.overdraft_limit[cols["account"]]
    legit = cols["typology"] < 0
    after = cols["old_balance"] - cols["amount"]
    assert np.all(after[legit] >= -limit[legit] - 0.01)
    # Some do reach into the overdraft they have: the limit is used, not just never approached.
    assert np.any(after[legit] < 0)


def test_balances_do_not_drift_away_from_income(run: tuple[TransactionGenerator, dict[str, np.ndarray]]) -> None:
    """After a quarter, balances are still of the order of a few months' income (fraud refunded, spending budgeted)."""
    generator, _ = run
    accounts = generator.population.accounts
    ratio = np.median(np.asarray(generator.population.balances) / accounts.income)
    start = np.median(accounts.initial_balance / accounts.income)
    assert 0.7 * start < ratio < 2.0 * start
