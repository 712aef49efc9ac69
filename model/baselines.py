"""The two baselines our model must beat, fitted on the same split and features: the seed's recipe and a linear model.

Both sit behind the same ColumnTransformer as our model (one-hot, ordinal, standardised, passthrough),
so any difference in the comparison comes from the classifier alone. Neither re-weights classes:
like our model, each gets its own threshold chosen by cost on the validation split.
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


def _gradient_boosting(seed: int) -> GradientBoostingClassifier:
    return GradientBoostingClassifier(n_estimators=100, random_state=seed)


def _logistic_regression(seed: int) -> LogisticRegression:
    return LogisticRegression(max_iter=LOGISTIC_MAX_ITER, random_state=seed)


BASELINES: Final = (
    Baseline(
        key="logistic_regression",
        name="LogisticRegression",
        description="scikit-learn LogisticRegression (lbfgs, C=1) on the same encoded features",
        build=_logistic_regression,
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
