"""When each payment's label becomes known to the bank, and the label records the labels path takes.

A payment labelled fraud becomes known when it is reported or charged back: `FRAUD_LAG_DAYS`
after it (log-normal, median 5 days, sigma 0.8, within 1-30 days: most victims report within
days of seeing a statement; the ULB handbook's protocol assumes a week). The payments of one fraud
episode are reported together, the lag counted from the episode's last payment; at a compromised
merchant each customer reports their own. A payment labelled legitimate becomes known when it has
cleared, `CLEARING_DAYS` (2) after it, as settlement takes a day or two. A known time is never
before its payment.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from shared.contract import timestamps
from shared.generation.event_time import DAY_MS
from shared.generation.payments import Columns

CLEARING_DAYS: Final = 2
FRAUD_LAG_DAYS: Final = (1, 30)
FRAUD_LAG_MEDIAN_DAYS: Final = 5.0
FRAUD_LAG_SIGMA: Final = 0.8
LABEL_KEYS: Final = ("transaction_id", "account_id", "merchant_id", "fraud", "known_at")


def fraud_lags(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` report lags in milliseconds."""
    days = np.clip(rng.lognormal(np.log(FRAUD_LAG_MEDIAN_DAYS), FRAUD_LAG_SIGMA, n), *FRAUD_LAG_DAYS)
    out: np.ndarray = (days * DAY_MS).astype(np.int64)
    return out


def known_times(rng: np.random.Generator, t: np.ndarray, label: np.ndarray, reported: np.ndarray) -> np.ndarray:
    """When each payment's `label` becomes known; `reported` is its episode's report time, or -1 if it has none."""
    own_report = t + fraud_lags(rng, t.size)
    fraud_known = np.where(reported >= 0, reported, own_report)
    out: np.ndarray = np.maximum(np.where(label.astype(bool), fraud_known, t + CLEARING_DAYS * DAY_MS), t)
    return out


def labels(columns: Columns) -> list[dict[str, Any]]:
    """JSON-ready label records (`LABEL_KEYS`) of generated columns: each payment's label and when it became known."""
    return [
        {"transaction_id": id_, "account_id": account, "merchant_id": merchant, "fraud": bool(fraud), "known_at": known}
        for id_, account, merchant, fraud, known in zip(
            columns["id"].tolist(),
            columns["account_id"].tolist(),
            columns["merchant_id"].tolist(),
            columns["is_fraud"].tolist(),
            timestamps.format_many(columns["known_ms"]),
            strict=True,
        )
    ]
