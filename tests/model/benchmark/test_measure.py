"""Tests for model/benchmark/measure.py: the baselines and a given recipe are measured on the same test rows."""

from __future__ import annotations

import numpy as np
import pytest

from model.benchmark import measure
from model.training import protocol
from tests.model.benchmark.conftest import SMALL, StandIn

pytestmark = pytest.mark.unit


def test_the_recipe_gets_the_split_and_no_ground_truth(measured: tuple[measure.Result, StandIn]) -> None:
    """Our recipe sees labels and when they were known, not the scenario or episode; train rows precede the test."""
    _, stand_in = measured
    assert {"is_fraud", "known_ms", "account_id", "merchant_id", "t_ms"} <= stand_in.given.keys()
    assert not {"typology", "episode"} & stand_in.given.keys()
    t_ms = stand_in.given["t_ms"]
    assert t_ms[stand_in.train].max() + 7 * protocol.DAY_MS < t_ms[stand_in.test].min()


def test_every_model_is_measured_on_the_same_rows(measured: tuple[measure.Result, StandIn]) -> None:
    """Three baselines and ours, each with the protocol's figures; ours equal the protocol applied to its scores."""
    result, stand_in = measured
    assert [m.key for m in result.models] == ["logistic_regression", "random_forest", "xgboost", "ours"]
    assert {m.metrics.n for m in result.models} == {result.test[0]}
    cols = stand_in.given
    start = measure._ms(SMALL.train_start)
    days = (cols["t_ms"][stand_in.test] - start) // protocol.DAY_MS
    expected = protocol.metrics(stand_in.scores, cols["is_fraud"][stand_in.test], cols["account"][stand_in.test], days)
    assert result.models[-1].metrics == expected
    assert result.train[0] == stand_in.train.size
    assert result.test[0] <= result.test_before_drop
    assert all(m.at_prevalence is not None for m in result.models)


def test_a_recipe_must_return_probabilities() -> None:
    """Scores of the wrong length or outside [0, 1] are refused."""
    with pytest.raises(ValueError, match="probabilities"):
        measure._checked(np.array([0.2, 1.5]), 2)
    with pytest.raises(ValueError, match="probabilities"):
        measure._checked(np.array([0.2]), 2)


def test_periods_must_fit_in_the_simulation() -> None:
    """A training start too late for train, delay and test days is refused before anything runs."""
    with pytest.raises(ValueError, match="does not fit"):
        measure.Settings(days=40, train_start=SMALL.train_start.replace(day=25)).check()
