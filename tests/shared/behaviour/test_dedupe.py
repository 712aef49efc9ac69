"""A payment is its (account, id) on both paths: an id another account reuses is another payment."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from shared.behaviour import features as behaviour

pytestmark = pytest.mark.unit

Features = Callable[[behaviour.Payments], np.ndarray]


def _replay(p: behaviour.Payments) -> np.ndarray:
    return behaviour.replay(p)


def _serving(p: behaviour.Payments) -> np.ndarray:
    features, _ = behaviour.score_batch_features(p, {})
    return features


def _payments(rows: list[tuple[str, str, int, float, float, int]]) -> behaviour.Payments:
    """(account, id, t_ms, amount, old_balance, category code) per row."""
    accounts, ids, t_ms, amounts, balances, categories = zip(*rows, strict=True)
    n = len(rows)
    columns = {
        "amount": amounts,
        "old_balance": balances,
        "category_recipient": categories,
        "transaction_method": [0] * n,
        "transaction_type": [1] * n,
        "foreign_transaction": [0] * n,
    }
    return behaviour.Payments.of(list(ids), list(accounts), list(t_ms), columns)


# Account a's last payment and account b's first share the id "p-7" with different content; sorted by
# (account, time, id), the two sit next to each other.
ROWS = [
    ("acct-a", "a-1", 0, 120.0, 5_000.0, 0),
    ("acct-a", "p-7", 600_000, 80.0, 4_880.0, 2),
    ("acct-b", "p-7", 300_000, 2_500.0, 9_000.0, 5),
    ("acct-b", "b-2", 900_000, 40.0, 6_500.0, 5),
    ("acct-b", "b-3", 1_200_000, 700.0, 6_460.0, 1),
]


@pytest.mark.parametrize(
    "features",
    [
        pytest.param(_replay, id="training"),
        pytest.param(_serving, id="serving"),
    ],
)
def test_an_id_reused_by_another_account_is_its_own_payment(features: Features) -> None:
    """Each account's features with both in the history equal those computed from its own payments alone."""
    together = features(_payments(ROWS))
    for account in ("acct-a", "acct-b"):
        mine = [i for i, row in enumerate(ROWS) if row[0] == account]
        alone = features(_payments([ROWS[i] for i in mine]))
        np.testing.assert_array_equal(together[mine], alone)


@pytest.mark.parametrize("features", [pytest.param(_replay, id="training"), pytest.param(_serving, id="serving")])
def test_a_copy_within_one_account_still_counts_once(features: Features) -> None:
    """The same (account, id) twice is one payment: both copies get its features, and it is counted once."""
    copied = [*ROWS, ROWS[1]]
    out = features(_payments(copied))
    np.testing.assert_array_equal(out[: len(ROWS)], features(_payments(ROWS)))
    np.testing.assert_array_equal(out[-1], out[1])
