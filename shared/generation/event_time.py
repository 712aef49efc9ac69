"""Event time as milliseconds since the epoch: its units, and the weekday and month codes of a time."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import numpy as np

DAY_MS: Final = 86_400_000
MONTH_MS: Final = 2_629_746_000  # a mean Gregorian month: salaries arrive at a steady rhythm


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of a timezone-aware moment."""
    if moment.tzinfo is None:
        raise ValueError("event time must be timezone-aware (UTC)")
    return round(moment.timestamp() * 1000)


def weekdays(t_ms: np.ndarray) -> np.ndarray:
    """Monday = 0, as the contract's `DAYS_OF_WEEK` order (1970-01-01 was a Thursday)."""
    out: np.ndarray = (t_ms // DAY_MS + 3) % 7
    return out.astype(np.int64)


def months(t_ms: np.ndarray) -> np.ndarray:
    """Month as its contract code (month - 1)."""
    days = t_ms.astype("datetime64[ms]").astype("datetime64[D]")
    out: np.ndarray = days.astype("datetime64[M]").astype(np.int64) % 12
    return out
