"""Tests for model/training/data.py: generated and Cosmos-history training data, and data too thin to split."""

from __future__ import annotations

import importlib
from collections import Counter

import numpy as np
import pytest

from model.training import labelled
from model.training.data import TrainingData, TrainingDataError, generated_data, history_data
from model.training.labelled import LabelledHistory
from model.training.train import train
from shared.generation.generator import LABEL_NOISE, TransactionGenerator

pytestmark = pytest.mark.unit


def test_generated_data_is_seeded_and_described() -> None:
    """The same seed gives the same columns, and the source names generator, seed and settings."""
    first, second = generated_data(2_000, seed=9), generated_data(2_000, seed=9)
    np.testing.assert_array_equal(first.columns["amount"], second.columns["amount"])
    assert first.size == 2_000
    assert first.source == {
        "source": "generator",
        "generator": "shared.generation.generator.TransactionGenerator",
        "seed": 9,
        "fraud_rate": 0.10,
        "label_noise": LABEL_NOISE,
        "accounts": 20,
        "start": "2026-01-05T00:00:00+00:00",
    }


def test_too_little_data_is_refused() -> None:
    """Too few rows, or a single class, cannot be split in event time: a clear error, not a crash."""
    with pytest.raises(TrainingDataError, match="at least 1000 rows"):
        train(generated_data(500, seed=1), seed=1)
    columns = TransactionGenerator(fraud_rate=0.0, seed=1).columns(5_000)
    columns["is_fraud"] = np.zeros(5_000, dtype=np.int64)  # no noise-flipped fraud either
    with pytest.raises(TrainingDataError, match="0 frauds"):
        train(TrainingData(columns=columns, source={"source": "test"}), seed=1)


def test_history_data_describes_the_container() -> None:
    """History-sourced data records container, counts and reasons for what was left out, never a key."""
    columns = TransactionGenerator(fraud_rate=0.10, seed=4).columns(1_500)
    history = LabelledHistory(columns=columns, skipped=Counter({"amount:out_of_range": 2, "is_fraud:missing": 3}))
    data = history_data(
        history,
        endpoint="https://acct.example:443/",
        database="fraud",
        container="history",
        auth="account key",
        limit=None,
    )
    assert data.size == 1_500
    assert data.source == {
        "source": "cosmos_history",
        "reader": "model.training.labelled.read_history",
        "endpoint": "https://acct.example:443/",
        "database": "fraud",
        "container": "history",
        "auth": "account key",
        "limit": None,
        "documents_read": 1_505,
        "documents_used": 1_500,
        "documents_skipped": 5,
        "skipped_by_reason": {"amount:out_of_range": 2, "is_fraud:missing": 3},
    }


def test_history_reader_names_the_function_that_reads() -> None:
    """The metadata's `reader` is the dotted path of the function that read the container."""
    empty = LabelledHistory(columns={"is_fraud": np.zeros(0, dtype=np.int64)}, skipped=Counter())
    data = history_data(empty, endpoint="https://a:443/", database="d", container="c", auth="account key", limit=None)
    module, _, name = data.source["reader"].rpartition(".")
    assert importlib.import_module(module).__dict__[name] is labelled.read_history
