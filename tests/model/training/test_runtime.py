"""Tests for model/training/runtime.py: serving's encoding and booster checked against the reference pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from model.training.frames import raw_frame
from model.training.runtime import RuntimeMismatchError, check_runtime_matches
from model.training.train import TrainResult
from shared.generation.generator import TransactionGenerator
from shared.scoring import encoding as features

pytestmark = pytest.mark.unit


def test_encoding_equals_sklearn_transform(small: TrainResult) -> None:
    """The NumPy encoding with the fitted spec reproduces the pipeline's transform bit for bit on fresh data."""
    columns = TransactionGenerator(fraud_rate=0.10, seed=99).columns(5_000)
    expected = np.asarray(small.pipeline[:-1].transform(raw_frame(columns))).astype(np.float32)
    np.testing.assert_array_equal(features.encode(columns, small.spec), expected)


def test_check_passes_on_the_fitted_spec(small: TrainResult) -> None:
    """The spec training fitted reproduces the pipeline's probabilities: the check raises nothing."""
    columns = TransactionGenerator(fraud_rate=0.10, seed=12).columns(1_000)
    check_runtime_matches(small.pipeline, small.payload["booster"], small.spec, columns, raw_frame(columns))


def test_check_catches_encoding_drift(small: TrainResult) -> None:
    """A feature spec that no longer matches the fitted scaler is caught before anything is written."""
    columns = TransactionGenerator(fraud_rate=0.10, seed=11).columns(1_000)
    drifted = features.FeatureSpec(mean=(small.spec.mean[0] + 1.0, *small.spec.mean[1:]), scale=small.spec.scale)
    with pytest.raises(RuntimeMismatchError, match=r"features\.encode differs"):
        check_runtime_matches(small.pipeline, small.payload["booster"], drifted, columns, raw_frame(columns))
