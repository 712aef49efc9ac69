"""Totals per (owner, UTC day) and sums over windows of whole days: the arithmetic both day-window features share.

Account windows (`features.py`: payments and mean amount over the 1, 7 and 30 days before a
payment's day) and merchant risk (`merchants.py`: confirmed labels and fraud share over the 1, 7
and 30 days before a delay) are sums of per-day totals over a range of days. They are kept as
integers (counts, amounts in cents, frauds), so a sum does not depend on the order payments or
labels arrived in: training, which sees a whole history at once, and serving, which adds one batch
at a time to stored totals, get the same bits. Whole days, not exact 24-hour spans, because a
day's totals are all a state has to keep for it: 45 numbers per window owner instead of every
payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

DAY_MS: Final = 86_400_000
DAY_OFFSET: Final = 720_000
"""Added to days since 1970 so that every contract date (years 0001 to 9999) has a day number >= 0."""
_SHIFT: Final = 1 << 22
"""Owner codes and day numbers share one sortable int64 key: code * 2**22 + day (days stay below 2**22)."""
WINDOWS_DAYS: Final = (1, 7, 30)


def day_number(t_ms: np.ndarray) -> np.ndarray:
    """UTC day of each event time (ms since the epoch), as a non-negative day number."""
    return np.floor_divide(np.asarray(t_ms, dtype=np.int64), DAY_MS) + DAY_OFFSET


def day_of_ms(t_ms: int) -> int:
    """`day_number` of one time, in Python integers (for one label or one clock reading NumPy costs more)."""
    return t_ms // DAY_MS + DAY_OFFSET


@dataclass(frozen=True)
class DayTotals:
    """Per (owner code, day): two integer totals, keys sorted and unique, with prefix sums for windows."""

    key: np.ndarray
    a: np.ndarray
    b: np.ndarray
    prefix_a: np.ndarray
    prefix_b: np.ndarray

    @classmethod
    def of(cls, code: np.ndarray, day: np.ndarray, a: np.ndarray, b: np.ndarray) -> DayTotals:
        """Totals of rows (owner code, day, a, b), rows with one key summed (integers: order-free)."""
        key = np.asarray(code, dtype=np.int64) * _SHIFT + np.asarray(day, dtype=np.int64)
        unique, inverse = np.unique(key, return_inverse=True)
        sums_a = np.zeros(unique.size, dtype=np.int64)
        sums_b = np.zeros(unique.size, dtype=np.int64)
        np.add.at(sums_a, inverse, np.asarray(a, dtype=np.int64))
        np.add.at(sums_b, inverse, np.asarray(b, dtype=np.int64))
        return cls.sorted(unique, sums_a, sums_b)

    @classmethod
    def sorted(cls, key: np.ndarray, a: np.ndarray, b: np.ndarray) -> DayTotals:
        """Totals already one per key, keys ascending."""
        zero = np.zeros(1, dtype=np.int64)
        return cls(key, a, b, np.concatenate([zero, np.cumsum(a)]), np.concatenate([zero, np.cumsum(b)]))

    def code(self) -> np.ndarray:
        return self.key // _SHIFT

    def day(self) -> np.ndarray:
        return self.key % _SHIFT

    def sums(self, code: np.ndarray, day: np.ndarray, back_from: int, back_to: int) -> tuple[np.ndarray, np.ndarray]:
        """Per query (owner code, day): the totals over days [day - back_from, day - back_to) of that owner."""
        base = np.asarray(code, dtype=np.int64) * _SHIFT + np.asarray(day, dtype=np.int64)
        lo = np.searchsorted(self.key, base - back_from, side="left")
        hi = np.searchsorted(self.key, base - back_to, side="left")
        return self.prefix_a[hi] - self.prefix_a[lo], self.prefix_b[hi] - self.prefix_b[lo]


def cents(amount: np.ndarray) -> np.ndarray:
    """Amounts in whole cents (half to even), the integer unit day totals sum."""
    return np.rint(np.asarray(amount, dtype=np.float64) * 100.0).astype(np.int64)
