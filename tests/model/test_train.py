"""Tests for model/train.py: the pure `train()` result, threshold choice and the files `main()` writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.train import (
    REFERENCE_PIPELINE_NAME,
    STAGES,
    RuntimeMismatchError,
    TrainResult,
    check_runtime_matches,
    choose_threshold,
    main,
    raw_frame,
    train,
)
from shared import contract, features
from shared.generator import TransactionGenerator
from shared.model import ARTIFACT_NAME, METADATA_NAME, load_model, sha256_of

pytestmark = pytest.mark.unit

METRIC_KEYS = {
    "roc_auc",
    "pr_auc",
    "brier",
    "recall_at_1pct_fpr",
    "precision",
    "recall",
    "f1",
    "confusion_matrix",
    "cost",
}


@pytest.fixture(scope="module")
def small() -> TrainResult:
    """One fast training run shared by the tests that only read its result."""
    return train(20_000, seed=7)


def test_encoding_equals_sklearn_transform(small: TrainResult) -> None:
    """The NumPy encoding with the fitted spec reproduces the pipeline's transform bit for bit on fresh data."""
    columns = TransactionGenerator(fraud_rate=0.10, seed=99).columns(5_000)
    expected = np.asarray(small.pipeline[:-1].transform(raw_frame(columns))).astype(np.float32)
    np.testing.assert_array_equal(features.encode(columns, small.spec), expected)


def test_raw_frame_holds_contract_values() -> None:
    """The reference pipeline sees category strings and months 1..12, not generator codes."""
    columns = TransactionGenerator(fraud_rate=0.10, seed=1).columns(200)
    frame = raw_frame(columns)
    assert list(frame.columns) == list(contract.FEATURE_FIELDS)
    assert set(frame["month"]) <= set(contract.MONTHS)
    assert set(frame["day_of_week"]) <= set(contract.DAYS_OF_WEEK)
    assert set(frame["transaction_type"]) <= set(contract.TRANSACTION_TYPES)


def test_threshold_and_metrics(small: TrainResult) -> None:
    """The threshold is a probability strictly inside (0, 1) and both splits report every metric."""
    assert 0.0 < small.threshold < 1.0
    assert small.threshold_policy["review_cost"] == pytest.approx(5.0)
    for split in ("validation", "test"):
        assert small.metrics[split].keys() >= METRIC_KEYS
        assert set(small.metrics[split]["confusion_matrix"]) == {"tn", "fp", "fn", "tp"}
    assert small.metrics["test"]["roc_auc"] > 0.9


def test_split_sizes_add_up(small: TrainResult) -> None:
    """The 60/20/20 split uses every generated event exactly once."""
    sizes = small.training_data["split_sizes"]
    assert sizes == {"train": 12_000, "validation": 4_000, "test": 4_000}


def test_progress_reports_every_stage() -> None:
    """The progress callback hears each stage once, in order."""
    seen: list[str] = []
    train(5_000, seed=3, progress=seen.append)
    assert seen == list(STAGES)


def test_choose_threshold_minimises_cost() -> None:
    """With a cheap review, a costly fraud is flagged and the cut falls between the two scores."""
    proba = np.array([0.1, 0.2, 0.8, 0.9])
    label = np.array([0, 0, 1, 0], dtype=np.int64)
    amount = np.array([10.0, 10.0, 100.0, 10.0])
    # Flag >= 0.8: one false alarm (0.9) costs 5; flagging nothing would miss 100.
    assert choose_threshold(proba, label, amount, review_cost=5.0) == pytest.approx(0.5)
    # When a review costs more than the fraud, flagging nothing is cheapest.
    assert choose_threshold(proba, label, amount, review_cost=500.0) == pytest.approx(0.95)


def test_main_writes_verified_files(tmp_path: Path) -> None:
    """`main()` writes the artifact, the reference pipeline and metadata whose hashes match the files."""
    main(["--samples", "20000", "--seed", "5", "--out-dir", str(tmp_path), "--review-cost", "7.5"])
    for name in (ARTIFACT_NAME, METADATA_NAME, REFERENCE_PIPELINE_NAME):
        assert (tmp_path / name).is_file()
    metadata = json.loads((tmp_path / METADATA_NAME).read_text(encoding="utf-8"))
    assert metadata["artifact"]["sha256"] == sha256_of(tmp_path / ARTIFACT_NAME)
    assert metadata["artifact"]["bytes"] == (tmp_path / ARTIFACT_NAME).stat().st_size
    assert metadata["reference_pipeline"]["sha256"] == sha256_of(tmp_path / REFERENCE_PIPELINE_NAME)
    assert metadata["version"] == "xgb-" + metadata["artifact"]["sha256"][:12]
    assert metadata["feature_names"] == features.feature_names()
    assert metadata["threshold_policy"]["review_cost"] == pytest.approx(7.5)
    assert metadata["training_data"]["n_samples"] == 20_000
    assert load_model(tmp_path).threshold == pytest.approx(metadata["threshold"])


def test_check_catches_encoding_drift(small: TrainResult) -> None:
    """A feature spec that no longer matches the fitted scaler is caught before anything is written."""
    columns = TransactionGenerator(fraud_rate=0.10, seed=11).columns(1_000)
    drifted = features.FeatureSpec(mean=(small.spec.mean[0] + 1.0, *small.spec.mean[1:]), scale=small.spec.scale)
    with pytest.raises(RuntimeMismatchError, match=r"features\.encode differs"):
        check_runtime_matches(small.pipeline, small.payload["booster"], drifted, columns, raw_frame(columns))
