"""The field's evaluation protocol on a training run's test period: every model, two fraud rates, typologies, episodes.

`protocol.py` holds the metrics; this module decides what the model card reports with them: each
model's Average Precision, ROC-AUC, Card Precision@100, recall at 1% and 0.1% FPR and Brier on the
test period at the data's own fraud rate and at `protocol.TARGET_PREVALENCE` (0.5%, frauds
subsampled); for our model, per typology (when the data names them) and per episode: is an attack's
first payment caught, or only later ones, after money has moved?
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from model.training import protocol


def _days(t_ms: np.ndarray) -> np.ndarray:
    return np.floor_divide(np.asarray(t_ms, dtype=np.int64), protocol.DAY_MS)


def evaluate_test_period(
    test_columns: Mapping[str, np.ndarray],
    label: np.ndarray,
    scores: Mapping[str, np.ndarray],
    threshold: float,
    seed: int,
    episodes_from: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The protocol's figures for every model's test scores; typologies and episodes for the first (ours).

    `episodes_from`: every row's `episode` and `t_ms` (not only the test period's), to tell which
    episodes start inside the test period.
    """
    accounts = np.asarray(test_columns["account_id"] if "account_id" in test_columns else test_columns["account"])
    day = _days(test_columns["t_ms"])
    rates: dict[str, dict[str, dict[str, float]]] = {"observed": {}}
    for key, score in scores.items():
        rates["observed"][key] = protocol.metrics(score, label, accounts, day).as_dict()
    if float(np.mean(label)) > protocol.TARGET_PREVALENCE:
        name = f"{protocol.TARGET_PREVALENCE:.1%}"
        rates[name] = {
            key: protocol.at_prevalence(score, label, accounts, day, seed=seed).as_dict()
            for key, score in scores.items()
        }
    out: dict[str, Any] = {
        "k": protocol.TOP_K,
        "target_prevalence": protocol.TARGET_PREVALENCE,
        "prevalence_draws": protocol.PREVALENCE_DRAWS,
        "rates": rates,
    }
    ours = np.asarray(next(iter(scores.values())))
    if "typology" in test_columns:
        out["typologies"] = [
            vars(t) for t in protocol.by_typology(ours, label, np.asarray(test_columns["typology"]), threshold)
        ]
    if "episode" in test_columns and episodes_from is not None:
        episode = np.asarray(test_columns["episode"], dtype=np.int64)
        t_ms = np.asarray(test_columns["t_ms"], dtype=np.int64)
        first_in_test = starting_in(episodes_from, int(t_ms.min()))
        if first_in_test.size:
            found = protocol.by_episode(ours, label, episode, t_ms, threshold, include=first_in_test)
            out["episodes"] = {
                "episodes": found.episodes,
                "at_threshold": vars(found.at_threshold),
                "at_1pct_fpr": vars(found.at_1pct_fpr),
            }
    return out


def starting_in(columns: Mapping[str, np.ndarray], from_ms: int) -> np.ndarray:
    """Ids of the episodes (of all `columns`' rows) whose first payment is at or after `from_ms`.

    An attack already under way when the test period opens has its first payment before it, so
    "is the first payment caught" cannot be asked of it there.
    """
    episode = np.asarray(columns["episode"], dtype=np.int64)
    fraud = episode >= 0
    if not fraud.any():
        return np.empty(0, dtype=np.int64)
    ids, inverse = np.unique(episode[fraud], return_inverse=True)
    first = np.full(ids.size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, inverse, np.asarray(columns["t_ms"], dtype=np.int64)[fraud])
    started: np.ndarray = ids[first >= from_ms]
    return started
