"""Tests for model/benchmark/simulator.py: the handbook's published figures, its design rules, and the columns' form."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from model.benchmark import simulator as sim
from shared.contract import schema as contract
from shared.generation.records import records

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def full() -> sim.Simulation:
    """The handbook's run: 5,000 customers, 10,000 terminals, 183 days from 2018-04-01 (seed 0)."""
    return sim.simulate(seed=0)


@pytest.fixture(scope="module")
def small() -> sim.Simulation:
    """A small population over 40 days, for the design rules."""
    return sim.simulate(seed=3, customers=400, terminals=800, days=40)


def _terminal(merchant_ids: np.ndarray) -> np.ndarray:
    return np.asarray([int(m.removeprefix("term-")) for m in merchant_ids], dtype=np.int64)


def test_full_run_matches_the_published_figures(full: sim.Simulation) -> None:
    """Payments, fraud share and the scenarios' shares are near the handbook's 1,754,155 / 0.837% / 973-9,077-4,631."""
    label, kind = full.columns["is_fraud"], full.columns["typology"]
    assert full.size == pytest.approx(sim.PUBLISHED_PAYMENTS, rel=0.04)
    assert 0.0080 <= label.mean() <= 0.0088
    shares = np.bincount(kind[label == 1], minlength=3) / label.sum()
    published = np.asarray(sim.PUBLISHED_BY_TYPOLOGY) / sum(sim.PUBLISHED_BY_TYPOLOGY)
    assert shares == pytest.approx(published, abs=0.015)
    # "around 10000 transactions per day", and a radius of 5 on the grid leaves each customer ~75 terminals.
    assert full.size / full.days == pytest.approx(10_000, rel=0.05)
    assert full.profiles.terminal_counts.mean() == pytest.approx(np.pi * 25, rel=0.06)


def test_payments_use_terminals_within_the_radius(full: sim.Simulation) -> None:
    """Every payment's terminal is strictly closer than r = 5 to its customer."""
    cols, p = full.columns, full.profiles
    rows = np.arange(0, full.size, 97)
    gap = p.customer_xy[cols["account"][rows]] - p.terminal_xy[_terminal(cols["merchant_id"][rows])]
    assert np.sqrt((gap**2).sum(axis=1)).max() < sim.RADIUS


def test_columns_have_the_training_form(small: sim.Simulation) -> None:
    """Contract codes, the constant seed fields, unique ids, event-time order, labels known at once."""
    cols = small.columns
    start_ms = int(datetime(2018, 4, 1, tzinfo=UTC).timestamp() * 1000)
    assert np.all(np.diff(cols["t_ms"]) >= 0)
    assert start_ms <= cols["t_ms"][0]
    assert cols["t_ms"][-1] < start_ms + 40 * 86_400_000
    assert np.unique(cols["id"]).size == small.size
    assert np.array_equal(cols["known_ms"], cols["t_ms"])
    assert np.array_equal(cols["is_fraud"], (cols["typology"] >= 0).astype(np.int64))
    assert np.array_equal(cols["episode"] >= 0, cols["typology"] >= 0)
    assert cols["amount"].min() >= 0.01
    for field, value in sim.CONSTANT_FIELDS.items():
        assert np.all(cols[field] == value)
    assert set(np.unique(cols["month"])) == {3, 4}  # April and May, as codes into contract.MONTHS
    floats = {"amount", "old_balance", "income"}
    assert {k for k, v in cols.items() if v.dtype == np.float64} == floats
    assert {k for k, v in cols.items() if v.dtype == object} == {"id", "account_id", "merchant_id"}
    docs = records(cols, cols["id"].tolist(), cols["account_id"].tolist())
    for i in range(0, len(docs), 97):
        contract.validate({**docs[i], "merchant_id": cols["merchant_id"][i]})
    assert docs[0]["day_of_week"] == "sunday"  # 2018-04-01 was a Sunday


def test_scenario_one_is_an_amount_above_220(small: sim.Simulation) -> None:
    """Every payment named by scenario 1 is above 220, and every amount above 220 is fraud."""
    cols = small.columns
    assert np.all(cols["amount"][cols["typology"] == sim.LARGE_AMOUNT] > sim.AMOUNT_LIMIT)
    assert np.all(cols["is_fraud"][cols["amount"] > sim.AMOUNT_LIMIT] == 1)


def test_a_compromised_terminal_defrauds_all_its_payments_for_28_days(small: sim.Simulation) -> None:
    """A terminal episode is one terminal over less than 28 days, and every payment there in that span is fraud."""
    cols = small.columns
    terminal = _terminal(cols["merchant_id"])
    episodes = np.unique(cols["episode"][cols["typology"] == sim.COMPROMISED_TERMINAL])
    assert episodes.size > 20
    for e in episodes:
        rows = np.flatnonzero(cols["episode"] == e)
        assert np.unique(terminal[rows]).size == 1
        lo, hi = cols["t_ms"][rows].min(), cols["t_ms"][rows].max()
        assert hi - lo < sim.TERMINAL_DAYS * 86_400_000
        span = (terminal == terminal[rows[0]]) & (cols["t_ms"] >= lo) & (cols["t_ms"] <= hi)
        assert np.all(cols["is_fraud"][span] == 1)


def test_a_compromised_customer_pays_five_times_as_much_for_14_days(small: sim.Simulation) -> None:
    """A customer episode is one customer over less than 14 days, a third of the payments, amounts about x5."""
    cols, p = small.columns, small.profiles
    kind = cols["typology"] == sim.COMPROMISED_CUSTOMER
    episodes = np.unique(cols["episode"][kind])
    assert episodes.size > 20
    for e in episodes:
        rows = np.flatnonzero(cols["episode"] == e)
        assert np.unique(cols["account"][rows]).size == 1
        assert np.ptp(cols["t_ms"][rows]) < sim.CUSTOMER_DAYS * 86_400_000
    ratio = cols["amount"][kind].sum() / p.mean_amount[cols["account"][kind]].sum()
    assert ratio == pytest.approx(sim.CUSTOMER_MULTIPLIER, rel=0.15)
    # A third of a compromised customer's payments during 14 days: over all customer episodes, about 1/3 of them.
    share = kind.sum() / np.isin(cols["account"], cols["account"][kind]).sum()
    assert 0.0 < share < 1 / 3


def test_same_seed_same_payments_other_seed_others() -> None:
    """The simulation is a function of its seed."""
    a = sim.simulate(seed=5, customers=200, terminals=400, days=10)
    b = sim.simulate(seed=5, customers=200, terminals=400, days=10)
    c = sim.simulate(seed=6, customers=200, terminals=400, days=10)
    assert a.columns.keys() == b.columns.keys()
    assert all(np.array_equal(a.columns[k], b.columns[k]) for k in a.columns)
    assert not np.array_equal(a.columns["amount"][:100], c.columns["amount"][:100])


def test_too_small_a_population_is_refused() -> None:
    """Two terminals and three customers must exist to be compromised each day."""
    with pytest.raises(ValueError, match="compromise"):
        sim.simulate(customers=2, terminals=10, days=3)
