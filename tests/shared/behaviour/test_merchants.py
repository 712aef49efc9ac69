"""Merchant risk: labels count only once known `delay` whole days before a payment's day; training and serving agree."""

from __future__ import annotations

import numpy as np
import pytest

from shared.behaviour import days, merchants

pytestmark = pytest.mark.unit

DAY = days.DAY_MS
T0 = 1_780_000_000_000 - 1_780_000_000_000 % DAY  # a UTC midnight


def _state_of(merchant: str, ids: np.ndarray, known_ms: np.ndarray, fraud: np.ndarray) -> dict[str, object]:
    """A merchant's state as the aggregation builds it: one known day at a time, in any order."""
    mask = ids == merchant
    totals = merchants.label_totals(np.zeros(int(mask.sum()), dtype=np.int64), known_ms[mask], fraud[mask])
    state: dict[str, object] | None = None
    order = np.random.default_rng(3).permutation(totals.key.size)
    for i in order.tolist():
        state = merchants.merged_state(state, int(totals.day()[i]), int(totals.a[i]), int(totals.b[i]))
    assert state is not None
    return state


def test_a_label_counts_only_after_the_delay() -> None:
    """A fraud known on day 0 is invisible on days 0..7 and counted in the 1-day window on day 8 only (delay 7)."""
    label_m = np.array(["m1"], dtype=object)
    t_pay = T0 + np.arange(0, 12) * DAY + 3_600_000
    out = merchants.replay(
        np.full(t_pay.size, "m1", dtype=object), t_pay, label_m, np.array([T0 + 5]), np.array([1]), delay_days=7
    )
    one_day_n = out[:, merchants.FEATURES.index("merchant_labelled_1d")]
    seven_day_rate = out[:, merchants.FEATURES.index("merchant_fraud_rate_7d")]
    assert one_day_n.tolist() == [0] * 8 + [1] + [0] * 3
    assert seven_day_rate.tolist() == [0.0] * 8 + [1.0] * 4


def test_payments_without_a_merchant_know_nothing() -> None:
    out = merchants.replay(
        np.array([None, "", "m1"], dtype=object),
        np.full(3, T0 + 30 * DAY),
        np.array(["m1", "m1"], dtype=object),
        np.array([T0, T0 + DAY]),
        np.array([1, 0]),
    )
    assert out[:2].sum() == 0.0
    assert out[2, merchants.FEATURES.index("merchant_labelled_30d")] == 2.0
    assert out[2, merchants.FEATURES.index("merchant_fraud_rate_30d")] == 0.5


def test_serving_from_states_equals_training_replay_bit_for_bit() -> None:
    """Features from aggregated states equal those replayed from the raw labels, for every payment."""
    rng = np.random.default_rng(7)
    n_labels = 3000
    ids = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), n_labels)
    known = T0 + rng.integers(0, 60 * DAY, n_labels)
    fraud = (rng.random(n_labels) < 0.2).astype(np.int64)
    pay_m = rng.choice(np.array(["a", "b", "c", "d", "e", None], dtype=object), 500)
    pay_t = T0 + rng.integers(0, 80 * DAY, 500)
    for delay in (0, 7, 12):
        trained = merchants.replay(pay_m, pay_t, ids, known, fraud, delay)
        states = {m: _state_of(m, ids, known, fraud) for m in ("a", "b", "c", "d")}
        for state in states.values():
            assert merchants.usable_state(state) is not None
        served = merchants.features_from_states(list(pay_m), pay_t, states, delay)
        np.testing.assert_array_equal(served, trained)


def test_setting_a_day_twice_changes_nothing() -> None:
    once = merchants.merged_state(None, 100, 5, 1)
    twice = merchants.merged_state(once, 100, 5, 1)
    assert once == twice
    later = merchants.merged_state(twice, 90, 2, 2)
    assert later["day"] == [90, 100]
    assert later["through"] == 100


def test_old_days_are_trimmed() -> None:
    state = merchants.merged_state(None, 10, 1, 0)
    state = merchants.merged_state(state, 10 + merchants.KEEP_DAYS, 1, 1)
    assert state["day"] == [10 + merchants.KEEP_DAYS]


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        {"v": 2, "day": [], "n": [], "fraud": []},
        {"v": 1, "day": [1], "n": [1]},
        {"v": 1, "day": [2, 1], "n": [1, 1], "fraud": [0, 0]},
        {"v": 1, "day": [1], "n": [1], "fraud": [2]},
        {"v": 1, "day": [1], "n": [-1], "fraud": [0]},
        {"v": 1, "day": [1.0], "n": [1], "fraud": [0]},
        {"v": 1, "day": [True], "n": [1], "fraud": [0]},
        {"v": 1, "day": list(range(merchants.KEEP_DAYS + 1)), "n": [1] * 99, "fraud": [0] * 99},
    ],
)
def test_unusable_states_are_refused(raw: object) -> None:
    assert merchants.usable_state(raw) is None


def test_reasons_name_confirmed_frauds() -> None:
    values = {"merchant_labelled_30d": 40.0, "merchant_fraud_rate_30d": 0.3}
    text = merchants.describe("merchant_fraud_rate_30d", values, 7)
    assert text == "merchant with 12 confirmed frauds among 40 labelled payments in the 30 days up to 7 days ago"
