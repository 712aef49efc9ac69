"""The project's recipe on any labelled columns: features from the whole history, fit on some rows, score others.

This is what `train()` does for the bundled model, cut to what an outside benchmark needs
(`model/benchmark/`): the behavioural and merchant features are computed from every row (history
before the test period is visible, labels only once known `delay_days` before, as in serving),
`NO_HISTORY_SHARE` of the training rows have their account history withheld as in `train()`, and
the same pipeline is fitted. Its hyperparameters are chosen among `pipeline.CANDIDATES` as
`train()` chooses them, on validation only: each candidate is fitted on the same stretch of days
as the training rows, moved back by that stretch plus the delay, and judged (average precision) on
the training rows themselves, which then are labels known at training time; the test rows are
never looked at. No threshold is chosen: ranking metrics need none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
from sklearn.metrics import average_precision_score

from model.training.frames import NO_HISTORY_SHARE, Columns, raw_frame, with_behaviour, without_history
from model.training.pipeline import CANDIDATES, Hyperparameters, build_pipeline
from model.training.protocol import DAY_MS
from shared.behaviour import merchants

MIN_VALIDATION_FRAUDS: Final = 20
"""Fewer frauds than this in the earlier stretch or the training rows: no choice, the default settings."""


def _fit(full: Columns, rows: np.ndarray, params: Hyperparameters, seed: int) -> object:
    rng = np.random.default_rng(seed)
    train = {name: np.asarray(values)[rows] for name, values in full.items()}
    train = without_history(train, rng.random(rows.size) < NO_HISTORY_SHARE)
    return build_pipeline(params, seed).fit(raw_frame(train), np.asarray(train["is_fraud"]).astype(np.int64))


def _predict(pipeline: object, full: Columns, rows: np.ndarray) -> np.ndarray:
    frame = raw_frame({name: np.asarray(values)[rows] for name, values in full.items()})
    proba: np.ndarray = pipeline.predict_proba(frame)[:, 1].astype(np.float64)  # type: ignore[attr-defined]
    return proba


def choose(full: Columns, train_rows: np.ndarray, seed: int, delay_days: int) -> list[tuple[Hyperparameters, float]]:
    """Every candidate with its validation average precision, best first; empty when there is too little to judge."""
    t = np.asarray(full["t_ms"], dtype=np.int64)
    label = np.asarray(full["is_fraud"]).astype(np.int64)
    first = int(t[train_rows].min()) // DAY_MS * DAY_MS
    span = int(t[train_rows].max()) // DAY_MS * DAY_MS + DAY_MS - first
    back = span + delay_days * DAY_MS
    earlier = np.flatnonzero((t >= first - back) & (t < first - back + span))
    if min(label[earlier].sum(), label[train_rows].sum()) < MIN_VALIDATION_FRAUDS:
        return []
    judged = []
    for params in CANDIDATES:
        proba = _predict(_fit(full, earlier, params, seed), full, train_rows)
        judged.append((params, float(average_precision_score(label[train_rows], proba))))
    return sorted(judged, key=lambda item: -item[1])


def fit_predict(
    columns: Mapping[str, np.ndarray],
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    seed: int,
    *,
    params: Hyperparameters | None = None,
    delay_days: int = merchants.DEFAULT_DELAY_DAYS,
) -> np.ndarray:
    """Fraud probability of each of `test_rows` from our pipeline fitted on `train_rows` (indexes into `columns`).

    Without `params`, the settings are chosen on validation (`choose`), the defaults when it cannot judge.
    """
    full = with_behaviour(columns, delay_days)
    if params is None:
        judged = choose(full, np.asarray(train_rows), seed, delay_days)
        params = judged[0][0] if judged else Hyperparameters()
    return _predict(_fit(full, np.asarray(train_rows), params, seed), full, np.asarray(test_rows))
