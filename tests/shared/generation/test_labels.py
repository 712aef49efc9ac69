"""Late labels: when each payment's label becomes known, and the label records the labels path takes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from shared.contract.timestamps import parse_ms
from shared.generation.event_time import DAY_MS
from shared.generation.fraud import TYPOLOGY_KEYS
from shared.generation.generator import TransactionGenerator, labels
from shared.generation.labels import CLEARING_DAYS, FRAUD_LAG_DAYS, LABEL_KEYS

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def cols() -> dict[str, np.ndarray]:
    return TransactionGenerator(fraud_rate=0.10, seed=61, accounts=1_000).columns(40_000, now=START)


def test_known_times_follow_the_label(cols: dict[str, np.ndarray]) -> None:
    """Legitimate labels are known after clearing; fraud labels 1-30 days later (counted from the episode's end)."""
    lag = cols["known_ms"] - cols["t_ms"]
    assert cols["known_ms"].dtype == np.int64
    assert np.all(lag >= 0)
    legit = cols["is_fraud"] == 0
    assert np.all(lag[legit] == CLEARING_DAYS * DAY_MS)
    fraud = ~legit
    assert np.all(lag[fraud] >= FRAUD_LAG_DAYS[0] * DAY_MS)
    # An episode lasts at most a few hours, so 30 days after its last payment is within 31 days of any.
    assert np.all(lag[fraud] <= (FRAUD_LAG_DAYS[1] + 1) * DAY_MS)
    assert 3 * DAY_MS < np.median(lag[fraud]) < 8 * DAY_MS


def test_an_episode_is_reported_at_once_and_a_compromise_customer_by_customer(cols: dict[str, np.ndarray]) -> None:
    """Payments of one account episode labelled fraud become known together; at a compromised merchant, apart."""
    compromised = TYPOLOGY_KEYS.index("compromised_merchant")
    together = apart = 0
    for episode in np.unique(cols["episode"][cols["episode"] >= 0]).tolist():
        rows = (cols["episode"] == episode) & (cols["is_fraud"] == 1)
        known = np.unique(cols["known_ms"][rows])
        if cols["typology"][rows][0] == compromised:
            apart += known.size == rows.sum()
        else:
            assert known.size == 1
            assert known[0] >= cols["t_ms"][rows].max()
            together += 1
    assert together > 100
    assert apart > 5


def test_label_records_carry_exactly_the_label_fields(cols: dict[str, np.ndarray]) -> None:
    """Each record holds the transaction, account, merchant, the label as a bool and when it became known."""
    records = labels({k: v[:500] for k, v in cols.items()})
    assert len(records) == 500
    for i, record in enumerate(records):
        assert tuple(record) == LABEL_KEYS
        assert record["transaction_id"] == cols["id"][i]
        assert record["account_id"] == cols["account_id"][i]
        assert record["merchant_id"] == cols["merchant_id"][i]
        assert record["fraud"] is bool(cols["is_fraud"][i])
        assert parse_ms(record["known_at"]) == cols["known_ms"][i]


def test_labels_are_mostly_the_truth(cols: dict[str, np.ndarray]) -> None:
    """Label noise is small and both ways: the labelled fraud share is the true one."""
    truth = cols["typology"] >= 0
    wrong = (cols["is_fraud"] == 1) != truth
    assert 0 < wrong.sum() < 0.005 * truth.size
    assert cols["is_fraud"].mean() == pytest.approx(truth.mean(), abs=0.001)
