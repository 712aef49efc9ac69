"""Merchant risk: labels count only once known `delay` whole days before a payment's day; training and serving agree."""

from __future__ import annotations

from itertools import pairwise

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
        checked = {m: merchants.CheckedState(state) for m, state in states.items()}  # as the stores keep them
        np.testing.assert_array_equal(merchants.features_from_states(list(pay_m), pay_t, checked, delay), trained)


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


def _usable_by_definition(raw: object) -> bool:
    """The checks `usable_state` makes, one value at a time: the specification its whole-list checks must meet."""
    if type(raw) is not dict or raw.get("v") != merchants.STATE_VERSION:
        return False
    day, n, fraud = (raw.get(name) for name in merchants.STATE_FIELDS)
    if type(day) is not list or type(n) is not list or type(fraud) is not list:
        return False
    if len(day) > merchants.KEEP_DAYS or len(n) != len(day) or len(fraud) != len(day):
        return False
    if not all(type(v) is int for col in (day, n, fraud) for v in col):
        return False
    if not all(0 <= d < 1 << 22 for d in day) or any(a >= b for a, b in pairwise(day)):
        return False
    return all(0 <= f <= k <= 1 << 40 for k, f in zip(n, fraud, strict=True))


def test_usable_state_refuses_exactly_what_its_definition_refuses() -> None:
    """Thousands of damaged states (a value replaced, swapped, out of range, of another type): the fast checks agree
    with the value-by-value definition on every one, and a usable state comes back as it is."""
    rng = np.random.default_rng(11)
    odd: list[object] = [
        -1,
        0,
        1,
        2,
        1 << 22,
        (1 << 22) - 1,
        1 << 40,
        (1 << 40) + 1,
        True,
        False,
        1.0,
        "1",
        None,
        10**30,
    ]
    agreed = refused = 0
    for _ in range(3_000):
        size = int(rng.integers(0, 6))
        start = int(rng.integers(0, 1 << 22))
        day: list[object] = [*sorted({min(start + int(d), (1 << 22) - 1) for d in rng.integers(0, 50, size)})]
        counts = [int(k) for k in rng.integers(0, 5, len(day))]
        n: list[object] = list(counts)
        fraud: list[object] = [int(rng.integers(0, k + 1)) for k in counts]
        column = [day, n, fraud][int(rng.integers(0, 3))]
        if column and rng.random() < 0.8:
            column[int(rng.integers(0, len(column)))] = odd[int(rng.integers(0, len(odd)))]
        if len(day) > 1 and rng.random() < 0.2:
            day[0], day[1] = day[1], day[0]
        raw = {"v": merchants.STATE_VERSION, "day": day, "n": n, "fraud": fraud}
        expected = _usable_by_definition(raw)
        assert (merchants.usable_state(raw) is raw) == expected, raw
        agreed += 1
        refused += not expected
    assert agreed == 3_000
    assert 500 < refused < 2_800


def test_one_day_number_for_one_time_and_for_many() -> None:
    """`days.day_of_ms` (labels, the aggregation's clock) gives `days.day_number`'s days, before 1970 too."""
    rng = np.random.default_rng(3)
    t_ms = np.concatenate([rng.integers(-62_135_596_800_000, 253_402_300_799_999, 2000), [-1, 0, 1, DAY - 1, DAY]])
    assert [days.day_of_ms(int(t)) for t in t_ms] == days.day_number(t_ms).tolist()
