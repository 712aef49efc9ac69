"""One small two-seed benchmark run with a stand-in recipe, shared by the tests that only read its result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pytest

from model.benchmark import measure, seeds

SMALL = measure.Settings(customers=400, terminals=800, days=40, train_start=date(2018, 4, 19), jobs=1, seeds=1)


@dataclass(frozen=True)
class Call:
    """What the stand-in was given in one simulation, and what it answered."""

    given: dict[str, np.ndarray]
    train: np.ndarray
    test: np.ndarray
    seed: int
    scores: np.ndarray


class StandIn:
    """A recipe stand-in: scores by amount, and remembers every call."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __call__(self, columns: Mapping[str, np.ndarray], train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
        scores: np.ndarray = np.minimum(1.0, np.asarray(columns["amount"])[test] / 1_000.0)
        self.calls.append(Call(dict(columns), train, test, seed, scores))
        return scores


@pytest.fixture(scope="session")
def runs() -> tuple[seeds.Runs, StandIn]:
    """`seeds.run` on `SMALL` over seeds 0 and 1 with the stand-in as our recipe."""
    stand_in = StandIn()
    return seeds.run(replace(SMALL, seeds=2), stand_in), stand_in


@pytest.fixture(scope="session")
def measured(runs: tuple[seeds.Runs, StandIn]) -> tuple[measure.Result, Call]:
    """The first seed's full result and the stand-in's call on it."""
    return runs[0].first, runs[1].calls[0]
