"""The models ours is compared with on the same temporal split: the static model, the seed's recipe, a linear model.

`static` baselines see the seed's twelve fields only (one-hot, ordinal, standardised, passthrough,
as the seed encoded them); `behavioural` ones see those plus the behavioural features, as our model
does. So the static XGBoost against ours measures what behaviour adds, and the logistic regression
against ours what the trees add. None re-weights classes: like our model, each gets its own
threshold chosen by cost on the validation split.
"""

from __future__ import annotations

import time
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

from model.training.evaluate import FloatArray, choose_threshold, evaluate
from model.training.frames import Splits
from model.training.pipeline import Hyperparameters, classifier, feature_transformer

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


_STATIC: Final = Hyperparameters()
"""The default settings of our model's search (`pipeline.CANDIDATES`): the static XGBoost keeps them, so it is
not tuned on the validation period as ours is; the card shows which settings ours chose."""


def _static_xgboost(seed: int) -> Any:
    return classifier(_STATIC, seed)


BASELINES: Final = (
    Baseline(
        key="static_xgboost",
        name="XGBoost, seed fields only",
        description=f"XGBoost with our model's default settings ({_STATIC.n_estimators} trees of depth "
        f"{_STATIC.max_depth}) on the seed's twelve fields alone",
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


@dataclass(frozen=True)
class BaselineResult:
    """A fitted baseline, its own cost-chosen threshold and its metrics on the shared split."""

    pipeline: Pipeline
    threshold: float
    metrics: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    fit_seconds: float


def fit_and_measure(
    baseline: Baseline, splits: Splits, seed: int, review_cost: float, on_iteration: Iteration | None = None
) -> tuple[BaselineResult, FloatArray]:
    """Fit on the train rows, choose the threshold on validation by cost, measure; also returns the test scores."""
    started = time.perf_counter()
    kind = "static" if baseline.features == "static" else "scaled"
    model = fit_baseline(
        baseline, feature_transformer(kind), splits.frames["train"], splits.labels["train"], seed, on_iteration
    )
    fit_seconds = time.perf_counter() - started
    scores = {
        name: np.asarray(model.predict_proba(splits.frames[name]))[:, 1].astype(np.float64)
        for name in ("validation", "test")
    }
    labels, amounts = splits.labels, splits.amounts
    cut = choose_threshold(scores["validation"], labels["validation"], amounts["validation"], review_cost)
    result = BaselineResult(
        pipeline=model,
        threshold=cut,
        metrics={name: evaluate(scores[name], labels[name], amounts[name], cut, review_cost) for name in scores},
        summary={**summary(baseline, model), "features": baseline.features},
        fit_seconds=round(fit_seconds, 2),
    )
    return result, scores["test"]
