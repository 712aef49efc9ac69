"""The handbook's baseline feature transformation and its three baseline classifiers, on training columns.

From the ULB handbook (Le Borgne et al., 2022), chapter 3.3 "Baseline feature transformation":
https://fraud-detection-handbook.github.io/fraud-detection-handbook/Chapter_3_GettingStarted/BaselineFeatureTransformation.html

- TX_DURING_WEEKEND: the payment falls on a Saturday or Sunday; TX_DURING_NIGHT: its hour is 0 to 6;
- per customer, over the last 1, 7 and 30 days up to and including the payment (a window
  (t - w, t], as a time-based rolling window is): the number of payments and their mean amount;
- per terminal, over a window that ends a delay (7 days) before the payment, (t - 7 - w, t - 7]
  for w = 1, 7, 30 days: the number of payments and the share of them that were fraud (the
  "risk"; 0 when there were none), since labels only arrive after the delay.

Its baselines (chapter 3.4 "Baseline fraud detection system", section "Performances using standard
prediction models"): scikit-learn's LogisticRegression(random_state=0),
RandomForestClassifier(random_state=0) and xgboost's XGBClassifier(random_state=0), default
settings otherwise, the 15 features (amount plus the 14 above) standardised on the training rows.
Today's library defaults differ in details from the handbook's 2021 versions (xgboost now builds
trees with its `hist` method); `model/BENCHMARK.md` names the versions used.
https://fraud-detection-handbook.github.io/fraud-detection-handbook/Chapter_3_GettingStarted/BaselineModeling.html
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from model.training.evaluate import FloatArray, IntArray

DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
WINDOW_DAYS: Final = (1, 7, 30)
DELAY_DAYS: Final = 7
NIGHT_LAST_HOUR: Final = 6
FEATURES: Final = (
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *(f"CUSTOMER_ID_{kind}_{w}DAY_WINDOW" for w in WINDOW_DAYS for kind in ("NB_TX", "AVG_AMOUNT")),
    *(f"TERMINAL_ID_{kind}_{w}DAY_WINDOW" for w in WINDOW_DAYS for kind in ("NB_TX", "RISK")),
)
"""The handbook's 15 input features, in its order."""


def _codes(values: np.ndarray) -> IntArray:
    """Dense integer codes of any id column (strings or integers); hashing, as sorting 10^6 strings takes seconds."""
    return np.asarray(pd.factorize(np.asarray(values))[0], dtype=np.int64)


@dataclass(frozen=True)
class _Keyed:
    """Rows sorted by (key, time, row), with a composite sort code that keeps windows inside one key."""

    order: IntArray
    code: IntArray
    reach: int
    """How far back (ms) a window may look without leaving its key."""


def _keyed(key: IntArray, t_ms: np.ndarray, reach: int) -> _Keyed:
    t = np.asarray(t_ms, dtype=np.int64)
    t = t - t.min(initial=0)
    order = np.lexsort((np.arange(t.size), t, key)).astype(np.int64)
    stride = int(t.max(initial=0)) + reach + 1
    return _Keyed(order=order, code=key[order] * stride + t[order] + reach, reach=reach)


def _window(keyed: _Keyed, start_back: int, end_back: int) -> tuple[IntArray, IntArray]:
    """Sorted positions [lo, hi) of each sorted row's window (t - start_back, t - end_back] within its key."""
    lo = np.searchsorted(keyed.code, keyed.code - start_back, side="right").astype(np.int64)
    hi = np.searchsorted(keyed.code, keyed.code - end_back, side="right").astype(np.int64)
    return lo, hi


def _customer_windows(account: IntArray, t_ms: np.ndarray, amount: FloatArray) -> dict[str, FloatArray]:
    keyed = _keyed(account, t_ms, max(WINDOW_DAYS) * DAY_MS)
    position = np.arange(keyed.order.size, dtype=np.int64)
    total = np.concatenate([[0.0], np.cumsum(amount[keyed.order])])
    out: dict[str, FloatArray] = {}
    for w in WINDOW_DAYS:
        lo, _ = _window(keyed, w * DAY_MS, 0)
        # Up to and including this row: a payment at the same millisecond but later in the data is not yet seen.
        hi = position + 1
        count = (hi - lo).astype(np.float64)
        mean = (total[hi] - total[lo]) / count
        out[f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"] = _unsort(count, keyed.order)
        out[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"] = _unsort(mean, keyed.order)
    return out


def _terminal_windows(terminal: IntArray, t_ms: np.ndarray, label: IntArray) -> dict[str, FloatArray]:
    delay = DELAY_DAYS * DAY_MS
    keyed = _keyed(terminal, t_ms, delay + max(WINDOW_DAYS) * DAY_MS)
    frauds = np.concatenate([[0], np.cumsum(label[keyed.order])])
    out: dict[str, FloatArray] = {}
    for w in WINDOW_DAYS:
        lo, hi = _window(keyed, delay + w * DAY_MS, delay)
        count = (hi - lo).astype(np.float64)
        risk = np.divide(frauds[hi] - frauds[lo], count, out=np.zeros_like(count), where=count > 0)
        out[f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW"] = _unsort(count, keyed.order)
        out[f"TERMINAL_ID_RISK_{w}DAY_WINDOW"] = _unsort(risk, keyed.order)
    return out


def _unsort(values: FloatArray, order: IntArray) -> FloatArray:
    out = np.empty_like(values)
    out[order] = values
    return out


def transform(columns: Mapping[str, np.ndarray]) -> FloatArray:
    """The handbook's 15 features (`FEATURES` order) of every row, from `t_ms`, `amount`, the customer and terminal.

    The customer is `account_id` (or `account`), the terminal `merchant_id`; terminal risk reads
    `is_fraud` of payments at least the delay older than the row, as the handbook does.
    """
    t_ms = np.asarray(columns["t_ms"], dtype=np.int64)
    amount = np.asarray(columns["amount"], dtype=np.float64)
    account = _codes(columns["account_id"] if "account_id" in columns else columns["account"])
    terminal = _codes(columns["merchant_id"])
    label = np.asarray(columns["is_fraud"]).astype(np.int64)
    days = np.floor_divide(t_ms, DAY_MS)
    named = {
        "TX_AMOUNT": amount,
        "TX_DURING_WEEKEND": (((days + 3) % 7) >= 5).astype(np.float64),  # 1970-01-01 was a Thursday
        "TX_DURING_NIGHT": ((t_ms - days * DAY_MS) // HOUR_MS <= NIGHT_LAST_HOUR).astype(np.float64),
        **_customer_windows(account, t_ms, amount),
        **_terminal_windows(terminal, t_ms, label),
    }
    return np.column_stack([named[name] for name in FEATURES])


@dataclass(frozen=True)
class Baseline:
    """One of the handbook's baselines: its key, its name in the handbook's tables, and how it is built."""

    key: str
    name: str
    build: Callable[[int, int], Any]
    """Called with (seed, jobs)."""


BASELINES: Final = (
    Baseline("logistic_regression", "Logistic regression", lambda seed, jobs: LogisticRegression(random_state=seed)),
    Baseline(
        "random_forest",
        "Random forest",
        lambda seed, jobs: RandomForestClassifier(random_state=seed, n_jobs=jobs),
    ),
    Baseline("xgboost", "XGBoost", lambda seed, jobs: XGBClassifier(random_state=seed, n_jobs=jobs)),
)


def fit_predict(
    baseline: Baseline, features: FloatArray, labels: np.ndarray, train: IntArray, test: IntArray, seed: int, jobs: int
) -> FloatArray:
    """Fit `baseline` on the standardised `train` rows; its fraud probabilities for the `test` rows."""
    model = Pipeline([("scale", StandardScaler()), ("model", baseline.build(seed, jobs))])
    y = np.asarray(labels).astype(np.int64)
    with warnings.catch_warnings():
        # The handbook keeps lbfgs' default 100 iterations; say so in the report rather than change its baseline.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features[train], y[train])
    return np.asarray(model.predict_proba(features[test])[:, 1], dtype=np.float64)
