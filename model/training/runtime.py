"""The artifact as serving runs it: its booster, checks that it matches the pipeline, and importance from its reasons.

Serving never sees scikit-learn: it encodes with NumPy (`shared/scoring/encoding.py`), predicts with
the raw booster and explains from SHAP tables. Training checks each against the reference pipeline
before anything is written, so a drift between the two (a reordered category, a changed scaler)
fails the run instead of silently changing scores.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
import xgboost
from sklearn.pipeline import Pipeline

from model.training.frames import Columns
from shared.scoring import encoding as features
from shared.scoring.model import FIELDS, FraudModel, shap_tables, xgboost_contributions

PROBA_TOLERANCE: Final = 1e-6
SHAP_TOLERANCE: Final = 1e-5
"""Serving's SHAP tables sum in float64, XGBoost's pred_contribs in float32."""
SHAP_CHECK_ROWS: Final = 5000


class RuntimeMismatchError(RuntimeError):
    """The NumPy runtime encoding or booster disagrees with the scikit-learn reference pipeline."""


def runtime_booster(raw: bytes) -> xgboost.Booster:
    """A booster loaded from the artifact's bytes exactly as `shared.scoring.model.load_model` loads it."""
    booster = xgboost.Booster()
    booster.load_model(bytearray(raw))
    booster.set_param({"nthread": 1})
    return booster


def check_runtime_matches(
    pipeline: Pipeline, raw_booster: bytes, spec: features.FeatureSpec, columns: Columns, frame: pd.DataFrame
) -> None:
    """Raise `RuntimeMismatchError` unless serving's encoding and booster reproduce the pipeline on these rows."""
    names = [str(n) for n in pipeline[:-1].get_feature_names_out()]
    expected_names = [n.replace("=", "_") for n in features.feature_names()]
    if names != expected_names:
        raise RuntimeMismatchError(f"pipeline columns {names} differ from features.feature_names()")
    reference_x = np.asarray(pipeline[:-1].transform(frame)).astype(np.float32)
    runtime_x = features.encode(columns, spec)
    if reference_x.shape != runtime_x.shape or not np.array_equal(reference_x, runtime_x):
        bad = int((reference_x != runtime_x).any(axis=1).sum()) if reference_x.shape == runtime_x.shape else -1
        raise RuntimeMismatchError(f"features.encode differs from the pipeline's transform ({bad} rows differ)")
    runtime_p = np.asarray(runtime_booster(raw_booster).inplace_predict(runtime_x, validate_features=False))
    reference_p = np.asarray(pipeline.predict_proba(frame))[:, 1]
    worst = float(np.max(np.abs(runtime_p.astype(np.float64) - reference_p), initial=0.0))
    if worst > PROBA_TOLERANCE:
        raise RuntimeMismatchError(f"runtime probabilities differ from the pipeline's by up to {worst:.3g}")


def check_reasons_exact(raw_booster: bytes, x: np.ndarray) -> None:
    """Raise `RuntimeMismatchError` unless serving's SHAP tables reproduce XGBoost's `pred_contribs`.

    Serving explains flagged events from tables derived from the booster (`shared/scoring/explain.py`);
    a model too deep to tabulate falls back to `pred_contribs` itself and needs no check.
    """
    booster = runtime_booster(raw_booster)
    tables = shap_tables(booster)
    if tables is None:
        return
    sample = x[:SHAP_CHECK_ROWS]
    worst = float(np.max(np.abs(tables.contributions(sample) - xgboost_contributions(booster, sample)), initial=0.0))
    if worst > SHAP_TOLERANCE:
        raise RuntimeMismatchError(f"SHAP tables differ from XGBoost's pred_contribs by up to {worst:.3g}")


def count_leaves(booster: xgboost.Booster) -> int:
    """Leaves over all trees: with the tree count, the model's size in the metadata."""
    return sum(tree.count("leaf=") for tree in booster.get_dump())


def global_importance(booster: xgboost.Booster, spec: features.FeatureSpec, x: np.ndarray) -> dict[str, float]:
    """Mean |SHAP| per contract field over the rows of `x`, computed exactly as serving computes reasons."""
    explainer = FraudModel(
        booster=booster, spec=spec, threshold=1.0, version="training", metadata={}, shap=shap_tables(booster)
    )
    mean_abs = np.abs(explainer.contributions(x)).mean(axis=0)
    return {name: float(value) for name, value in zip(FIELDS, mean_abs, strict=True)}
