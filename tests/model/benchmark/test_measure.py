"""Tests for model/benchmark/measure.py: the baselines and a given recipe are measured on the same test rows."""

from __future__ import annotations

import numpy as np
import pytest

from model.benchmark import measure
from model.training import protocol
from tests.model.benchmark.conftest import SMALL, Call

pytestmark = pytest.mark.unit


def test_the_recipe_gets_the_split_and_no_ground_truth(measured: tuple[measure.Result, Call]) -> None:
    """Our recipe sees labels and when they were known, not the scenario or episode; train rows precede the test."""
    _, call = measured
    assert call.seed == SMALL.seed
    assert {"is_fraud", "known_ms", "account_id", "merchant_id", "t_ms"} <= call.given.keys()
    assert not {"typology", "episode"} & call.given.keys()
    t_ms = call.given["t_ms"]
    assert t_ms[call.train].max() + 7 * protocol.DAY_MS < t_ms[call.test].min()


def test_every_model_is_measured_on_the_same_rows(measured: tuple[measure.Result, Call]) -> None:
    """Three baselines and ours, each with the protocol's figures; ours equal the protocol applied to its scores."""
    result, call = measured
    assert [m.key for m in result.models] == ["logistic_regression", "random_forest", "xgboost", "ours"]
    assert {m.metrics.n for m in result.models} == {result.test[0]}
    cols = call.given
    start = measure._ms(SMALL.train_start)
    days = (cols["t_ms"][call.test] - start) // protocol.DAY_MS
    expected = protocol.metrics(call.scores, cols["is_fraud"][call.test], cols["account"][call.test], days)
    assert result.models[-1].metrics == expected
    assert result.train[0] == call.train.size
    assert result.test[0] <= result.test_before_drop
    assert all(m.at_prevalence is not None for m in result.models)


def test_a_recipe_must_return_probabilities() -> None:
    """Scores of the wrong length or outside [0, 1] are refused."""
    with pytest.raises(ValueError, match="probabilities"):
        measure._checked(np.array([0.2, 1.5]), 2)
    with pytest.raises(ValueError, match="probabilities"):
        measure._checked(np.array([0.2]), 2)


def test_there_must_be_a_seed() -> None:
    """Fewer than one simulation is refused before anything runs."""
    with pytest.raises(ValueError, match="seeds must be at least 1, got 0"):
        measure.Settings(seeds=0).check()


def test_periods_must_fit_in_the_simulation() -> None:
    """A training start too late for train, delay and test days is refused before anything runs."""
    with pytest.raises(ValueError, match="does not fit"):
        measure.Settings(days=40, train_start=SMALL.train_start.replace(day=25)).check()
