"""Tests for model/training/protocol.py: periods in event time and the protocol's metrics, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from model.training import protocol as pr

pytestmark = pytest.mark.unit

DAY = pr.DAY_MS
START = 1_532_476_800_000  # 2018-07-25T00:00:00Z


def test_period_split_counts_whole_days_from_the_start() -> None:
    """Two training days, one delay day, two test days; rows outside belong to no period; event-time order."""
    days = np.array([4, 0, 1, 2, 3, -1, 5, 0], dtype=np.int64)
    t_ms = START + days * DAY + 3_600_000 * np.arange(8)
    split = pr.period_split(t_ms, train_days=2, delay_days=1, test_days=2, start_ms=START)
    assert split.train.tolist() == [1, 7, 2]
    assert split.delay.tolist() == [3]
    assert split.test.tolist() == [4, 0]
    assert split.test_start_ms == START + 3 * DAY
    assert split.end_ms == START + 5 * DAY
    assert split.day(t_ms).tolist() == days.tolist()


def test_period_split_starts_at_the_first_midnight_by_default() -> None:
    """Without a start, the first period begins at the UTC midnight of the earliest event."""
    t_ms = np.array([START + 5 * 3_600_000, START + DAY + 1, START + 2 * DAY])
    split = pr.period_split(t_ms, train_days=1, delay_days=0, test_days=2)
    assert split.start_ms == START
    assert split.train.tolist() == [0]
    assert split.test.tolist() == [1, 2]


def test_period_split_refuses_empty_periods() -> None:
    """A split needs training and test days."""
    with pytest.raises(ValueError, match="train_days"):
        pr.period_split(np.array([START]), train_days=0, delay_days=1, test_days=1)


def test_known_compromised_cards_leave_the_test_set() -> None:
    """Train 2 days, delay 1, test days 3-5: a fraud on day f hides its card from test day D when f < D - 1."""
    #               account: 1 fraud on day 0; 2 on day 2 (delay); 3 on day 3 (test); 4 on day -1 (before training)
    account = np.array([1, 2, 3, 4, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5])
    day = np.array([0, 2, 3, -1, 3, 5, 3, 4, 5, 3, 4, 5, 4, 5])
    label = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    t_ms = START + day * DAY + 1_000
    split = pr.period_split(t_ms, train_days=2, delay_days=1, test_days=3, start_ms=START)
    kept = pr.drop_known_compromised(split, t_ms=t_ms, accounts=account, labels=label, known_ms=t_ms)
    # Card 1: gone on every test day. Card 2 (fraud day 2): kept on day 3, gone on 4 and 5.
    # Card 3 (fraud day 3, itself a test row): gone on day 5 only. Card 4: its fraud predates training.
    assert sorted(kept.tolist()) == [2, 6, 9, 10, 12, 13]


def test_a_late_label_keeps_its_card_in_the_test_set_longer() -> None:
    """A fraud whose label is known only on day 3 hides its card from day 5 on, not day 2."""
    account = np.array([1, 1, 1, 1])
    day = np.array([0, 3, 4, 5])
    label = np.array([1, 0, 0, 0])
    t_ms = START + day * DAY
    known = t_ms + np.array([3 * DAY, 0, 0, 0])
    split = pr.period_split(t_ms, train_days=2, delay_days=1, test_days=3, start_ms=START)
    kept = pr.drop_known_compromised(split, t_ms=t_ms, accounts=account, labels=label, known_ms=known)
    assert kept.tolist() == [1, 2]


def _three_days() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # Day 0: A 0.9 fraud (and 0.1 legit), B 0.8 legit, C 0.7 fraud.  Top 2: A yes, B no -> 1/2. A is detected.
    # Day 1: A 0.95 fraud, C 0.6 fraud, D 0.5 legit.  A left out: C yes, D no -> 1/2. C is detected.
    # Day 2: C 0.99 fraud, E 0.3 legit, B 0.2 legit.  C left out: E no, B no -> 0.
    account = np.array(["A", "A", "B", "C", "A", "C", "D", "C", "E", "B"])
    score = np.array([0.9, 0.1, 0.8, 0.7, 0.95, 0.6, 0.5, 0.99, 0.3, 0.2])
    label = np.array([1, 0, 0, 1, 1, 1, 0, 1, 0, 0])
    day = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    return score, label, account, day


def test_card_precision_leaves_detected_cards_out_on_later_days() -> None:
    """The handbook's CP@k on a three-day toy: daily 1/2, 1/2, 0, mean 1/3."""
    cp = pr.card_precision_at_k(*_three_days(), k=2)
    assert cp.days.tolist() == [0, 1, 2]
    assert cp.per_day.tolist() == [0.5, 0.5, 0.0]
    assert cp.mean == pytest.approx(1 / 3)


def test_card_precision_without_removal_counts_them_again() -> None:
    """Without removing detected cards: 1/2, then A and C (1), then C and E (1/2)."""
    cp = pr.card_precision_at_k(*_three_days(), k=2, remove_detected=False)
    assert cp.per_day.tolist() == [0.5, 1.0, 0.5]
    assert cp.mean == pytest.approx(2 / 3)


def test_a_card_is_fraudulent_if_any_payment_that_day_is() -> None:
    """A card ranked by a legitimate payment counts as compromised by its low-scored fraud; k stays the divisor."""
    account = np.array([1, 1, 2])
    score = np.array([0.9, 0.01, 0.5])
    label = np.array([0, 1, 0])
    cp = pr.card_precision_at_k(score, label, account, np.zeros(3), k=5)
    assert cp.per_day.tolist() == [1 / 5]


def _ranked() -> tuple[np.ndarray, np.ndarray]:
    # 100 legitimate rows scored 0.00 .. 0.99; ten frauds, one tied with the highest legitimate score.
    legit = np.arange(100) / 100
    fraud = np.array([0.995, 0.992, 0.99, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0])
    return np.concatenate([legit, fraud]), np.concatenate([np.zeros(100), np.ones(10)]).astype(np.int64)


def test_recall_at_fpr_exactly() -> None:
    """1% FPR allows one legitimate flag (0.99, tied with a fraud): 3/10; 0.1% allows none: 2/10."""
    score, label = _ranked()
    days = np.zeros(score.size)
    m = pr.metrics(score, label, np.arange(score.size), days, k=10)
    assert m.recall_at_1pct_fpr == pytest.approx(0.3)
    assert m.recall_at_0_1pct_fpr == pytest.approx(0.2)
    assert pr.threshold_at_fpr(score, label, 0.01) == pytest.approx(0.99)
    assert pr.threshold_at_fpr(score, label, 0.001) == pytest.approx(0.992)
    # The top 10 cards: 0.995, 0.992, 0.99 (fraud and legit tie), 0.98 .. : 3 frauds of 10.
    assert m.card_precision_at_k == pytest.approx(0.3)
    assert (m.n, m.frauds) == (110, 10)
    assert m.brier == pytest.approx(float(np.mean((score - label) ** 2)))


def test_metrics_refuse_a_single_class() -> None:
    """AUC and AP mean nothing without both classes."""
    with pytest.raises(ValueError, match="one class"):
        pr.metrics(np.array([0.1, 0.2]), np.array([0, 0]), np.array([1, 2]), np.zeros(2))


def test_at_prevalence_keeps_every_legitimate_row_and_enough_frauds() -> None:
    """1,000 legitimate rows at 5% keep round(0.05 * 1000 / 0.95) = 53 frauds per draw; seeded."""
    rng = np.random.default_rng(1)
    label = np.concatenate([np.zeros(1_000), np.ones(100)]).astype(np.int64)
    score = np.concatenate([rng.random(1_000) * 0.8, np.where(np.arange(100) < 50, 0.9, 0.1)])
    account, days = np.arange(1_100), np.arange(1_100) % 3
    a = pr.at_prevalence(score, label, account, days, target=0.05, draws=5, seed=2)
    b = pr.at_prevalence(score, label, account, days, target=0.05, draws=5, seed=2)
    assert (a.n, a.frauds) == (1_053, 53)
    assert a.fraud_rate == pytest.approx(53 / 1_053)
    assert a == b
    full = pr.metrics(score, label, account, days)
    # Dropping frauds at random keeps recall's expectation but lowers precision-based figures.
    assert a.recall_at_1pct_fpr == pytest.approx(full.recall_at_1pct_fpr, abs=0.1)
    assert a.average_precision < full.average_precision


def test_at_prevalence_cannot_raise_the_fraud_rate() -> None:
    """Rows already at 1% cannot be brought to 5% by dropping frauds."""
    label = np.concatenate([np.zeros(99), np.ones(1)]).astype(np.int64)
    with pytest.raises(ValueError, match="not above"):
        pr.at_prevalence(np.linspace(0, 1, 100), label, np.arange(100), np.zeros(100), target=0.05)


def test_by_typology_scores_each_typology_against_all_legitimate_rows() -> None:
    """Typology 0 all above every legitimate score (AP 1), typology 1 half of it above 0.5."""
    legit = np.linspace(0.0, 0.4, 200)
    score = np.concatenate([legit, [0.9, 0.8, 0.7], [0.6, 0.45, 0.3, 0.2]])
    label = np.concatenate([np.zeros(200), np.ones(7)]).astype(np.int64)
    kind = np.concatenate([np.full(200, -1), [0, 0, 0], [1, 1, 1, 1]])
    out = {t.typology: t for t in pr.by_typology(score, label, kind, threshold=0.5)}
    assert out[0].frauds == 3
    assert out[0].recall_at_threshold == 1.0
    assert out[0].average_precision == pytest.approx(1.0)
    assert out[1].recall_at_threshold == 0.25
    # At 1% FPR two legitimate rows (0.4 and the next) may be flagged: 0.6 and 0.45 are above both.
    assert out[1].recall_at_1pct_fpr == 0.5
    assert out[1].average_precision < 1.0


def test_by_episode_asks_whether_the_first_payment_is_caught() -> None:
    """Three episodes: first payment missed but second caught; caught at once; caught only at 1% FPR."""
    legit = np.linspace(0.0, 0.25, 100)
    # episode 10: times 3, 1, 2 -> by time: 0.2, 0.8, 0.9; episode 11: one payment 0.7; episode 12: 0.1, 0.3
    score = np.concatenate([legit, [0.9, 0.2, 0.8, 0.7, 0.1, 0.3]])
    label = np.concatenate([np.zeros(100), np.ones(6)]).astype(np.int64)
    episode = np.concatenate([np.full(100, -1), [10, 10, 10, 11, 12, 12]])
    t_ms = np.concatenate([np.arange(100), [3, 1, 2, 5, 1, 2]])
    out = pr.by_episode(score, label, episode, t_ms, threshold=0.5)
    assert out.episodes == 3
    assert out.at_threshold.first_flagged == pytest.approx(1 / 3)
    assert out.at_threshold.caught == pytest.approx(2 / 3)
    assert out.at_threshold.median_first_caught_rank == 1.5
    # 1% FPR flags scores >= 0.25 (one legitimate row): episode 12 is caught on its second payment.
    assert out.at_1pct_fpr.first_flagged == pytest.approx(1 / 3)
    assert out.at_1pct_fpr.caught == 1.0
    assert out.at_1pct_fpr.median_first_caught_rank == 2.0
    only = pr.by_episode(score, label, episode, t_ms, threshold=0.5, include=np.array([11]))
    assert (only.episodes, only.at_threshold.first_flagged) == (1, 1.0)
