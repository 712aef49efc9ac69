"""Tests for model/training/evaluate.py: the cost rule that picks every model's threshold, and recall at a fixed FPR."""

from __future__ import annotations

import numpy as np
import pytest

from model.training.evaluate import choose_threshold, decision_cost, evaluate, recall_at_fpr

pytestmark = pytest.mark.unit


def test_choose_threshold_minimises_cost() -> None:
    """With a cheap review, a costly fraud is flagged and the cut falls between the two scores."""
    proba = np.array([0.1, 0.2, 0.8, 0.9])
    label = np.array([0, 0, 1, 0], dtype=np.int64)
    amount = np.array([10.0, 10.0, 100.0, 10.0])
    # Flag >= 0.8: one false alarm (0.9) costs 5; flagging nothing would miss 100.
    assert choose_threshold(proba, label, amount, review_cost=5.0) == pytest.approx(0.5)
    # When a review costs more than the fraud, flagging nothing is cheapest.
    assert choose_threshold(proba, label, amount, review_cost=500.0) == pytest.approx(0.95)


def test_chosen_threshold_is_cheapest_of_all_cuts() -> None:
    """On random scores the chosen cut costs no more than any other cut."""
    rng = np.random.default_rng(0)
    label = (rng.random(2_000) < 0.1).astype(np.int64)
    proba = np.clip(rng.normal(0.3 + 0.4 * label, 0.2), 0.0, 1.0)
    amount = rng.lognormal(4.0, 1.0, 2_000)
    best = decision_cost(proba >= choose_threshold(proba, label, amount, 5.0), label, amount, 5.0)
    for cut in np.linspace(0.0, 1.0, 201):
        assert best <= decision_cost(proba >= cut, label, amount, 5.0) + 1e-9


def test_recall_at_fpr_counts_only_allowed_false_alarms() -> None:
    """100 legitimate rows allow one false alarm at 1% FPR: recall is what that cut still catches."""
    legit = np.linspace(0.0, 0.5, 100)  # highest legitimate score 0.5
    fraud = np.array([0.9, 0.8, 0.45, 0.3])
    proba = np.concatenate([legit, fraud])
    label = np.concatenate([np.zeros(100), np.ones(4)]).astype(np.int64)
    # Flagging >= 0.5 costs one false alarm (1%) and catches 0.9 and 0.8; 0.45 would need a second.
    assert recall_at_fpr(proba, label, 0.01) == pytest.approx(0.5)
    assert recall_at_fpr(proba, label, 0.0) == pytest.approx(0.5)
    assert recall_at_fpr(proba, label, 0.10) == pytest.approx(0.75)


def test_evaluate_confusion_matrix_and_cost() -> None:
    """At-threshold counts, precision, recall and cost match a hand count."""
    proba = np.array([0.9, 0.7, 0.6, 0.2, 0.1])
    label = np.array([1, 0, 1, 1, 0], dtype=np.int64)
    amount = np.array([100.0, 20.0, 50.0, 80.0, 5.0])
    m = evaluate(proba, label, amount, threshold=0.5, review_cost=5.0)
    assert m["confusion_matrix"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 2}
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["cost"] == pytest.approx(80.0 + 5.0)
    assert m["cost_if_nothing_flagged"] == pytest.approx(230.0)
    assert m["flag_rate"] == pytest.approx(0.6)
