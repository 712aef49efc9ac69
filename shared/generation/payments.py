"""Payments as the simulation schedules them: draws over contract categories, payments awaiting their amount."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from shared.contract import schema as c

# Category indexes in contract order, so the simulation can name the values it draws.
CATEGORY: Final = {name: i for i, name in enumerate(c.CATEGORY_RECIPIENTS)}
METHOD: Final = {name: i for i, name in enumerate(c.TRANSACTION_METHODS)}
TYPE: Final = {name: i for i, name in enumerate(c.TRANSACTION_TYPES)}

# Amount kinds, resolved during the balance walk: a fixed amount, or a share of the balance left.
FIXED: Final = 0
DRAIN: Final = 1

Columns = dict[str, np.ndarray]
"""Simulated payments, one NumPy array per field, categories as their contract codes."""


def probs(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """Weights scaled to a probability vector."""
    w = np.asarray(weights, dtype=np.float64)
    out: np.ndarray = w / w.sum()
    return out


def over(index: dict[str, int], weights: dict[str, float]) -> np.ndarray:
    """A probability vector over a contract category list from a sparse {value: weight}."""
    w = np.zeros(len(index), dtype=np.float64)
    for name, weight in weights.items():
        w[index[name]] = weight
    return probs(w)


def pick(cdf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row from each row's cumulative distribution."""
    u = np.asarray(rng.random(cdf.shape[0]))[:, None]
    picked: np.ndarray = np.minimum((cdf < u).sum(axis=1), cdf.shape[1] - 1)
    return picked


@dataclass
class ScheduledPayments:
    """Payments scheduled but not yet resolved: amounts of drains depend on the balance when they happen."""

    t: np.ndarray
    account: np.ndarray
    fraud: np.ndarray
    category: np.ndarray
    method: np.ndarray
    ttype: np.ndarray
    foreign: np.ndarray
    kind: np.ndarray
    """`FIXED` or `DRAIN`."""
    param: np.ndarray
    """The amount for `FIXED`, the share of the balance for `DRAIN`."""
    typology: np.ndarray
    """Index into `fraud.TYPOLOGIES` for fraud, -1 for legitimate payments."""
    merchant: np.ndarray
    """Index into the population's `merchants.Merchants`."""
    episode: np.ndarray
    """Id of the fraud episode the payment belongs to, -1 for legitimate payments."""
    reported: np.ndarray
    """When the payment's episode is reported (ms), -1 if it is not in an episode."""

    @classmethod
    def empty(cls) -> ScheduledPayments:
        i, f = np.empty(0, np.int64), np.empty(0, np.float64)
        return cls(i, i, np.empty(0, bool), i, i, i, i, i, f, i, i, i, i)

    @classmethod
    def concat(cls, parts: Sequence[ScheduledPayments]) -> ScheduledPayments:
        names = cls.__dataclass_fields__
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})

    def take(self, rows: np.ndarray) -> ScheduledPayments:
        return ScheduledPayments(**{name: getattr(self, name)[rows] for name in self.__dataclass_fields__})
