"""The models ours is compared with on the same temporal split: the static model, the seed's recipe, a linear model.

`static` baselines see the seed's twelve fields only (one-hot, ordinal, standardised, passthrough,
as the seed encoded them); `behavioural` ones see those plus the behavioural features, as our model
does. So the static XGBoost against ours measures what behaviour adds, and the logistic regression
against ours what the trees add. None re-weights classes: like our model, each gets its own
threshold chosen by cost on the validation split.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

LOGISTIC_MAX_ITER: Final = 1000
"""lbfgs converges in about 20 iterations on the default data; the headroom is for other histories."""

Iteration = Callable[[int, int], None]
"""Called with (iterations done, iterations in total) while a baseline fits."""


@dataclass(frozen=True)
class Baseline:
    """One baseline: its metadata key, the name shown in the model card, and how to build it."""

    key: str
    name: str
    description: str
    build: Callable[[int], Any]
    features: str = "static"
    """"static" (the seed's fields) or "behavioural" (those plus `shared.behaviour.features.FEATURES`)."""


def _gradient_boosting(seed: int) -> GradientBoostingClassifier:
    return GradientBoostingClassifier(n_estimators=100, random_state=seed)


def _logistic_regression(seed: int) -> LogisticRegression:
    return LogisticRegression(max_iter=LOGISTIC_MAX_ITER, random_state=seed)


def _static_xgboost(seed: int) -> Any:
    from xgboost import XGBClassifier

    # Today's bundled model before behaviour: the same hyperparameters as ours (`train.Hyperparameters`).
    return XGBClassifier(
        n_estimators=100,
        max_depth=2,
        learning_rate=0.4,
        objective="binary:logistic",
        tree_method="hist",
        n_jobs=2,
        random_state=seed,
    )


BASELINES: Final = (
    Baseline(
        key="static_xgboost",
        name="XGBoost, seed fields only",
        description="the model bundled before behaviour: XGBoost 100 trees of depth 2 on the seed's twelve fields",
        build=_static_xgboost,
    ),
    Baseline(
        key="logistic_regression",
        name="LogisticRegression",
        description="scikit-learn LogisticRegression (lbfgs, C=1) on the seed's fields and the behavioural "
        "features, standardised (log1p first for counts, amounts and durations)",
        build=_logistic_regression,
        features="behavioural",
    ),
    Baseline(
        key="gradient_boosting",
        name="GradientBoostingClassifier (seed)",
        description="the seed's recipe: scikit-learn GradientBoostingClassifier, 100 iterations, otherwise defaults",
        build=_gradient_boosting,
    ),
)


def fit_baseline(
    baseline: Baseline,
    encode: ColumnTransformer,
    frame: pd.DataFrame,
    label: np.ndarray,
    seed: int,
    on_iteration: Iteration | None = None,
) -> Pipeline:
    """Fit `encode` plus the baseline's classifier; a logistic regression that does not converge is an error."""
    model = baseline.build(seed)
    pipeline = Pipeline([("features", encode), ("model", model)])
    fit_params: dict[str, Any] = {}
    if isinstance(model, GradientBoostingClassifier) and on_iteration is not None:
        total = int(model.n_estimators)

        def monitor(i: int, _model: object, _locals: object) -> bool:
            on_iteration(i + 1, total)
            return False  # never stop early: the seed's recipe is 100 iterations

        fit_params["model__monitor"] = monitor
    with warnings.catch_warnings():
        # A baseline that stopped short of its optimum would make the comparison look better than it is.
        warnings.simplefilter("error", ConvergenceWarning)
        pipeline.fit(frame, label, **fit_params)
    return pipeline


def summary(baseline: Baseline, pipeline: Pipeline) -> dict[str, Any]:
    """What the metadata records about a fitted baseline: estimator, settings and iterations used."""
    model = pipeline.named_steps["model"]
    params = {
        name: value
        for name, value in model.get_params().items()
        if value is None or isinstance(value, bool | int | float | str)
    }
    out: dict[str, Any] = {
        "name": baseline.name,
        "description": baseline.description,
        "estimator": f"{type(model).__module__.split('._')[0]}.{type(model).__name__}",
        "params": params,
    }
    if hasattr(model, "n_iter_"):
        out["iterations"] = int(np.max(model.n_iter_))
    if hasattr(model, "n_estimators_"):
        out["iterations"] = int(model.n_estimators_)
    return out
