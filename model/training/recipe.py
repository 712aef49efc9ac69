"""The project's recipe on any labelled columns: features from the whole history, fit on some rows, score others.

This is what `train()` does for the bundled model, cut to what an outside benchmark needs
(`model/benchmark/`): the behavioural and merchant features are computed from every row (history
before the test period is visible, labels only once known `delay_days` before, as in serving),
`NO_HISTORY_SHARE` of the training rows have their account history withheld as in `train()`, and
the same pipeline and hyperparameters are fitted. No threshold is chosen: ranking metrics need none.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from model.training.frames import NO_HISTORY_SHARE, raw_frame, with_behaviour, without_history
from model.training.pipeline import Hyperparameters, build_pipeline
from shared.behaviour import merchants


def fit_predict(
    columns: Mapping[str, np.ndarray],
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    seed: int,
    *,
    params: Hyperparameters | None = None,
    delay_days: int = merchants.DEFAULT_DELAY_DAYS,
) -> np.ndarray:
    """Fraud probability of each of `test_rows` from our pipeline fitted on `train_rows` (indexes into `columns`)."""
    full = with_behaviour(columns, delay_days)
    rng = np.random.default_rng(seed)
    train = {name: np.asarray(values)[train_rows] for name, values in full.items()}
    train = without_history(train, rng.random(len(train_rows)) < NO_HISTORY_SHARE)
    test = {name: np.asarray(values)[test_rows] for name, values in full.items()}
    pipeline = build_pipeline(params or Hyperparameters(), seed)
    pipeline.fit(raw_frame(train), np.asarray(train["is_fraud"]).astype(np.int64))
    proba: np.ndarray = pipeline.predict_proba(raw_frame(test))[:, 1].astype(np.float64)
    return proba
