"""Our model under other conditions, on the same test rows: with history unknown, and trained on more history.

Both sit in the model card's table beside the baselines, in italics: the first is how serving
scores an account it holds no state for, the second an upper reference for what more data would give.
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import xgboost

from model.training.data import TrainingData, more_history
from model.training.evaluate import FloatArray, choose_threshold, evaluate
from model.training.frames import NO_HISTORY_SHARE, Splits, raw_frame, with_behaviour, without_history
from model.training.pipeline import Hyperparameters, build_pipeline
from shared.contract import schema as contract
from shared.scoring import encoding as features

HISTORY_UNKNOWN = "history_unknown"


def history_unknown(
    booster: xgboost.Booster, spec: features.FeatureSpec, splits: Splits, threshold: float, review_cost: float
) -> dict[str, Any]:
    """Our model on the test rows with every behavioural feature "history unknown", at our threshold."""
    x = features.encode({f: splits.columns["test"][f] for f in contract.FEATURE_FIELDS}, spec)
    proba = np.asarray(booster.inplace_predict(x, validate_features=False)).astype(np.float64)
    return {
        "name": "XGBoost (ours), history unknown",
        "description": "our model on the test rows with every behavioural feature set to 'history unknown'",
        "metrics": evaluate(proba, splits.labels["test"], splits.amounts["test"], threshold, review_cost),
    }


def more_history_key(multiple: int) -> str:
    """The key of the more-history reference in `metadata["references"]` and the test scores."""
    return f"xgboost_{multiple}x"


def more_history_multiple(key: str) -> int | None:
    """The multiple a `more_history_key` names, or None for any other key."""
    found = re.fullmatch(r"xgboost_(\d+)x", key)
    return int(found.group(1)) if found else None


def with_more_history(
    data: TrainingData,
    splits: Splits,
    params: Hyperparameters,
    seed: int,
    multiple: int,
    review_cost: float,
    rng: np.random.Generator,
    delay_days: int,
) -> tuple[dict[str, Any], FloatArray]:
    """Our model fitted on `multiple` times the training history (generated data only); also its test scores.

    The extra rows are other accounts over the same stretch of event time as the training rows, with
    history withheld from the same share; the threshold is chosen on the same validation rows.
    """
    until = int(splits.columns["validation"]["t_ms"][0])
    extra = with_behaviour(more_history(data, multiple, seed, until), delay_days)
    extra = without_history(extra, rng.random(extra["t_ms"].size) < NO_HISTORY_SHARE)
    keep = (*contract.FEATURE_FIELDS, *features.CONTEXT_FEATURES)
    more = {f: np.concatenate([splits.columns["train"][f], extra[f]]) for f in keep}
    more_label = np.concatenate([splits.labels["train"], extra["is_fraud"].astype(np.int64)])
    started = time.perf_counter()
    big = build_pipeline(params, seed).fit(raw_frame(more), more_label)
    test = np.asarray(big.predict_proba(splits.frames["test"]))[:, 1].astype(np.float64)
    validation = np.asarray(big.predict_proba(splits.frames["validation"]))[:, 1].astype(np.float64)
    cut = choose_threshold(validation, splits.labels["validation"], splits.amounts["validation"], review_cost)
    reference = {
        "name": f"XGBoost (ours), {multiple}x history",
        "description": f"the same model and features trained on {more_label.size:,} rows: our training rows "
        f"and the same stretch of event time from {multiple - 1}x as many other accounts",
        "train_rows": int(more_label.size),
        "fit_seconds": round(time.perf_counter() - started, 2),
        "metrics": evaluate(test, splits.labels["test"], splits.amounts["test"], cut, review_cost),
    }
    return reference, test
