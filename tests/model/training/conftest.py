"""One small training run, shared by the tests that only read its result."""

from __future__ import annotations

import pytest

from model.training.data import generated_data
from model.training.train import TrainResult, train


@pytest.fixture(scope="session")
def small() -> TrainResult:
    """`train()` on 10,000 generated events (seed 7), no more-history reference."""
    return train(generated_data(10_000, seed=7), seed=7)
