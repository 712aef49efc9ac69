"""Tests for model/training/frames.py: the pipeline's input frame, history withheld, and the split in event time."""

from __future__ import annotations

import numpy as np
import pytest

from model.training.data import TrainingDataError
from model.training.frames import (
    NO_HISTORY_SHARE,
    SPLITS,
    period_days,
    raw_frame,
    split_rows,
    temporal_split,
    with_behaviour,
    without_history,
)
from shared.behaviour import features as behaviour
from shared.contract import schema as contract
from shared.generation.generator import TransactionGenerator
from shared.scoring import encoding as features

pytestmark = pytest.mark.unit


def test_raw_frame_holds_contract_values() -> None:
    """The reference pipeline sees category strings and months 1..12, not generator codes, then behaviour."""
    columns = TransactionGenerator(fraud_rate=0.10, seed=1).columns(200)
    frame = raw_frame(columns)
    assert list(frame.columns) == [*contract.FEATURE_FIELDS, *features.CONTEXT_FEATURES]
    assert set(frame["month"]) <= set(contract.MONTHS)
    assert set(frame["day_of_week"]) <= set(contract.DAYS_OF_WEEK)
    assert set(frame["transaction_type"]) <= set(contract.TRANSACTION_TYPES)


DAY = 86_400_000


def test_temporal_split_is_by_event_time_not_by_row_order() -> None:
    """Shuffled rows over 37 days, delay 7: train the first 18 days, 7 left out, validation 6 days, test the last 6."""
    t_ms = np.random.default_rng(0).permutation(37 * 24).astype(np.int64) * 3_600_000
    index = temporal_split(t_ms, delay_days=7)
    assert tuple(index) == SPLITS
    assert [idx.size for idx in index.values()] == [18 * 24, 6 * 24, 6 * 24]
    assert t_ms[index["train"]].max() < 18 * DAY
    assert t_ms[index["validation"]].min() == 25 * DAY
    assert t_ms[index["validation"]].max() < t_ms[index["test"]].min() == 31 * DAY
    assert period_days(index, t_ms) == {"train": 18, "validation": 6, "test": 6}


def test_the_delay_period_is_neither_trained_nor_measured_on() -> None:
    """Rows of the days right after training are in no split: their labels are not known yet when a bank trains."""
    t_ms = np.arange(0, 40 * DAY, 3_600_000, dtype=np.int64)
    index = temporal_split(t_ms, delay_days=10)
    used = np.concatenate(list(index.values()))
    left_out = np.setdiff1d(np.arange(t_ms.size), used)
    assert t_ms[left_out].min() > t_ms[index["train"]].max()
    assert t_ms[left_out].max() < t_ms[index["validation"]].min()
    assert (t_ms[left_out].max() - t_ms[left_out].min()) // DAY + 1 == 10


def test_too_short_a_history_is_refused() -> None:
    with pytest.raises(TrainingDataError, match="spans 9 days"):
        temporal_split(np.arange(0, 9 * DAY, DAY, dtype=np.int64), delay_days=7)


def test_split_rows_withholds_history_from_training_rows_only() -> None:
    """About `NO_HISTORY_SHARE` of training rows get "history unknown"; validation and test keep theirs."""
    columns = with_behaviour(TransactionGenerator(fraud_rate=0.10, seed=3, accounts=50).columns(5_000))
    splits = split_rows(columns, np.random.default_rng(3))
    unknown = behaviour.no_history(splits.columns["train"])
    train = np.column_stack([splits.columns["train"][name] for name in behaviour.FEATURES])
    replayed = np.column_stack([columns[name][splits.index["train"]] for name in behaviour.FEATURES])
    # The same draw split_rows makes: the first from a fresh generator with the same seed.
    withheld = np.random.default_rng(3).random(splits.index["train"].size) < NO_HISTORY_SHARE
    assert withheld.mean() == pytest.approx(NO_HISTORY_SHARE, abs=0.02)
    np.testing.assert_array_equal(train[withheld], unknown[withheld])
    np.testing.assert_array_equal(train[~withheld], replayed[~withheld])
    for name in ("validation", "test"):
        kept = {f: columns[f][splits.index[name]] for f in behaviour.FEATURES}
        for feature in behaviour.FEATURES:
            np.testing.assert_array_equal(splits.columns[name][feature], kept[feature])
        assert splits.frames[name].shape[0] == splits.labels[name].size == splits.amounts[name].size


def test_a_one_class_stretch_is_refused() -> None:
    """When the test period holds no fraud there is nothing to test on: a clear error."""
    columns = TransactionGenerator(fraud_rate=0.10, seed=5, accounts=20).columns(2_000)
    latest = temporal_split(columns["t_ms"])["test"]
    columns["is_fraud"][latest] = 0
    with pytest.raises(TrainingDataError, match="test period"):
        split_rows(columns, np.random.default_rng(5))


def test_without_history_changes_only_the_masked_rows() -> None:
    """Rows outside the mask keep their behavioural features exactly."""
    columns = with_behaviour(TransactionGenerator(fraud_rate=0.10, seed=6).columns(500))
    mask = np.zeros(500, dtype=bool)
    mask[::2] = True
    out = without_history(columns, mask)
    for name in behaviour.FEATURES:
        np.testing.assert_array_equal(out[name][~mask], np.asarray(columns[name], dtype=np.float64)[~mask])
