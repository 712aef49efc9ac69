"""Each batch's merchants: their label-risk states read once, and the payments' merchant features from them.

Scoring only reads merchant states: they change when labels are aggregated (`shared/labels/`), never
when a payment is scored, so a redelivered batch reads what its first delivery read (the features
of a payment on day D use only known days before D minus the delay, all complete by then). An
unreadable store is "nothing known" for the batch, counted and warned about at most once a minute,
as an unreadable account state is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from shared.behaviour import merchants
from shared.behaviour.merchant_store import MerchantStateUnavailableError
from shared.behaviour.store import RateLimitedWarning


class MerchantReader(Protocol):
    """What scoring needs of a merchant store (`shared.behaviour.merchant_store.MerchantStore`)."""

    def read(self, merchant_ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...


merchant_state_unavailable = RateLimitedWarning(
    "%d payments scored with merchant risk unknown: the merchant store could not be read (%s)"
)


def merchant_features(
    merchant_ids: Sequence[str | None], t_ms: np.ndarray, store: MerchantReader | None, delay_days: int
) -> tuple[np.ndarray, str]:
    """(`merchants.FEATURES` per payment, `merchant_history`: read / unavailable / off / none).

    "none": no payment of the batch names a merchant, so nothing was read.
    """
    named = sorted({m for m in merchant_ids if m is not None})
    zeros = np.zeros((len(merchant_ids), len(merchants.FEATURES)), dtype=np.float64)
    if store is None:
        return zeros, "off"
    if not named:
        return zeros, "none"
    try:
        states = store.read(named)
    except MerchantStateUnavailableError as exc:
        merchant_state_unavailable.note(len(merchant_ids), str(exc))
        return zeros, "unavailable"
    return merchants.features_from_states(merchant_ids, t_ms, states, delay_days), "read"
