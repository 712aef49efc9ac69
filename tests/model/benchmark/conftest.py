"""One small benchmark run with a stand-in recipe, shared by the tests that only read its result."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pytest

from model.benchmark import measure

SMALL = measure.Settings(customers=400, terminals=800, days=40, train_start=date(2018, 4, 19), jobs=1)


class StandIn:
    """A recipe stand-in: scores by amount, and remembers what it was given."""

    def __init__(self) -> None:
        self.given: dict[str, np.ndarray] = {}
        self.train = np.zeros(0, dtype=np.int64)
        self.test = np.zeros(0, dtype=np.int64)
        self.scores = np.zeros(0)

    def __call__(self, columns: Mapping[str, np.ndarray], train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
        self.given, self.train, self.test = dict(columns), train, test
        self.scores = np.minimum(1.0, np.asarray(columns["amount"])[test] / 1_000.0)
        return self.scores


@pytest.fixture(scope="session")
def measured() -> tuple[measure.Result, StandIn]:
    """`measure.run` on `SMALL` with the stand-in as our recipe."""
    stand_in = StandIn()
    return measure.run(SMALL, stand_in), stand_in
