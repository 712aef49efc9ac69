"""Training rows: behaviour replayed per account, history withheld on some, split in event time, as pipeline frames.

Serving computes the behavioural features from an account's stored state, batch by batch;
training replays each account's whole history in event time with the same code
(`shared/behaviour/features.py`), so a training row sees exactly what serving would have seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from model.training import protocol
from model.training.data import TrainingDataError
from model.training.evaluate import FloatArray, IntArray
from shared.behaviour import features as behaviour
from shared.behaviour import merchants
from shared.contract import schema as contract
from shared.scoring import encoding as features

VALIDATION_SHARE: Final = 0.20
TEST_SHARE: Final = 0.20
NO_HISTORY_SHARE: Final = 0.10
"""Training rows whose behavioural features are replaced by "history unknown" (those of a first payment).

Serving scores accounts it has no state for with exactly those values; without such rows the model
would meet them only on the few first payments of each account and score unknown accounts badly."""
SPLITS: Final = ("train", "validation", "test")

Columns = dict[str, np.ndarray]


def raw_frame(columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The contract's raw values (category strings, month 1..12) and the behavioural features as the pipeline's input.

    Columns without behavioural features get the "history unknown" values, as `features.encode` does.
    """
    data: dict[str, Any] = {}
    for field in contract.FEATURE_FIELDS:
        values = np.asarray(columns[field])
        if field in contract.CATEGORIES:
            data[field] = np.asarray(contract.CATEGORIES[field], dtype=object)[values]
        else:
            data[field] = values
    if all(name in columns for name in behaviour.FEATURES):
        data.update({name: np.asarray(columns[name], dtype=np.float64) for name in behaviour.FEATURES})
    else:
        data.update(features.behaviour_columns(behaviour.no_history(columns)))
    n = len(columns["amount"])
    for name in merchants.FEATURES:
        data[name] = np.asarray(columns[name], dtype=np.float64) if name in columns else np.zeros(n)
    return pd.DataFrame(data)


def with_behaviour(columns: Mapping[str, np.ndarray], delay_days: int = merchants.DEFAULT_DELAY_DAYS) -> Columns:
    """The columns plus each row's behavioural and merchant features, replayed in event time.

    Behaviour from the row's own account's history; merchant risk from the labels of the same rows,
    each usable once it has been known (`known_ms`, the row's own time when the data does not say)
    for `delay_days` whole days before the payment's day: what serving would have known then.
    """
    accounts = columns["account_id"] if "account_id" in columns else columns["account"]
    payments = behaviour.Payments.of(columns["id"], accounts, columns["t_ms"], columns)
    out = {**columns, **features.behaviour_columns(behaviour.replay(payments))}
    n = len(columns["t_ms"])
    merchant_ids = columns[contract.MERCHANT_FIELD] if contract.MERCHANT_FIELD in columns else np.full(n, None)
    known_ms = columns["known_ms"] if "known_ms" in columns else columns["t_ms"]
    risk = merchants.replay(merchant_ids, columns["t_ms"], merchant_ids, known_ms, columns["is_fraud"], delay_days)
    return {**out, **features.merchant_columns(risk)}


def without_history(columns: Mapping[str, np.ndarray], rows: np.ndarray) -> Columns:
    """The columns with the behavioural features of `rows` (a boolean mask) set to "history unknown"."""
    unknown = behaviour.no_history(columns)
    out = dict(columns)
    for j, name in enumerate(behaviour.FEATURES):
        out[name] = np.where(rows, unknown[:, j], np.asarray(columns[name], dtype=np.float64))
    return out


def temporal_split(t_ms: np.ndarray, delay_days: int = merchants.DEFAULT_DELAY_DAYS) -> dict[str, IntArray]:
    """Row indexes of the train, validation and test periods: whole days in event time, a delay after training.

    The field's protocol (`protocol.py`): the days after the training period whose labels a bank
    does not know yet when it trains (`delay_days`) are neither trained nor measured on; the days
    after them are split into validation (threshold, hyperparameters) and test, in that order. Of
    the days left once the delay is taken out, 60% train, 20% validate, 20% test.
    """
    t = np.asarray(t_ms, dtype=np.int64)
    start = int(t.min()) // protocol.DAY_MS * protocol.DAY_MS
    span_days = int((int(t.max()) - start) // protocol.DAY_MS) + 1
    usable = span_days - delay_days
    if usable < 3:
        raise TrainingDataError(
            f"the history spans {span_days} days: a {delay_days}-day delay leaves fewer than 3 days "
            "for training, validation and test periods"
        )
    train_days = max(1, round(usable * (1.0 - VALIDATION_SHARE - TEST_SHARE)))
    validation_days = max(1, round(usable * VALIDATION_SHARE))
    test_days = max(1, usable - train_days - validation_days)
    train_days = usable - validation_days - test_days
    periods = protocol.period_split(
        t, train_days=train_days, delay_days=delay_days, test_days=validation_days + test_days, start_ms=start
    )
    later = periods.test
    in_validation = periods.day(t[later]) < train_days + delay_days + validation_days
    return {"train": periods.train, "validation": later[in_validation], "test": later[~in_validation]}


def period_days(index: Mapping[str, IntArray], t_ms: np.ndarray) -> dict[str, int]:
    """Whole UTC days each period spans, as `temporal_split` cut them (0 for an empty one)."""
    t = np.asarray(t_ms, dtype=np.int64)
    return {
        name: int((t[idx].max() // protocol.DAY_MS) - (t[idx].min() // protocol.DAY_MS) + 1) if idx.size else 0
        for name, idx in index.items()
    }


@dataclass(frozen=True)
class Splits:
    """Each split's rows (keys `SPLITS`), in event time: indexes, columns, the pipeline's frame, labels and amounts."""

    index: dict[str, IntArray]
    columns: dict[str, Columns]
    frames: dict[str, pd.DataFrame]
    labels: dict[str, IntArray]
    amounts: dict[str, FloatArray]


def split_rows(
    columns: Mapping[str, np.ndarray], rng: np.random.Generator, delay_days: int = merchants.DEFAULT_DELAY_DAYS
) -> Splits:
    """Split into periods in event time, withhold history from `NO_HISTORY_SHARE` of the training rows, frame each.

    Raises `TrainingDataError` when a period holds only one class.
    """
    label = np.asarray(columns["is_fraud"]).astype(np.int64)
    index = temporal_split(np.asarray(columns["t_ms"]), delay_days)
    for name, idx in index.items():
        frauds = int(label[idx].sum())
        if min(frauds, idx.size - frauds) == 0:
            raise TrainingDataError(f"the {name} period of the history holds only one class")
    split_columns = {name: {f: values[idx] for f, values in columns.items()} for name, idx in index.items()}
    withheld = rng.random(index["train"].size) < NO_HISTORY_SHARE
    split_columns["train"] = without_history(split_columns["train"], withheld)
    return Splits(
        index=index,
        columns=split_columns,
        frames={name: raw_frame(cols) for name, cols in split_columns.items()},
        labels={name: label[idx] for name, idx in index.items()},
        amounts={name: split_columns[name]["amount"].astype(np.float64) for name in index},
    )
