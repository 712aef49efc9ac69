"""Synthetic labelled bank transactions from a population of customers and merchants (`population.py`), in event time.

One `TransactionGenerator` is one seeded stream: each call to `generate` or `columns` continues it,
so consecutive calls emit the population's payments in event-time order across accounts, with
each account's balance evolving from one payment to the next and fraud arriving in episodes and at
compromised merchants. The seed's twelve fields keep their names, types and domains; `account_id`
names a customer whose past explains its present, which is what the behavioural features
(`shared/behaviour/features.py`) read, and `merchant_id` the merchant every payment goes to
(`m-000123`; populations side by side, by `account_offset`, name different merchants).
`labels(columns)` gives each payment's label as the labels path takes it, known when `known_ms` says.

About `fraud_rate` of the payments are fraud, from 0 to 1; realistic card fraud is 0.1-1%.

Event time starts at the first call's `now` (the wall clock by default) and runs at the
population's pace, not the caller's: 10,000 accounts make about 14,000 payments a simulated day, so
a demo sending thousands a second runs days ahead of the wall clock. That keeps every account's
history realistic whatever the sending rate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from shared.generation.event_time import DAY_MS
from shared.generation.labels import labels
from shared.generation.population import LABEL_NOISE, Population
from shared.generation.records import records, uuids

__all__ = ["DEFAULT_ACCOUNTS", "LABEL_NOISE", "TransactionGenerator", "labels"]

DEFAULT_ACCOUNTS: Final = 10_000
BLOCK_EVENTS: Final = 4096
"""Payments simulated per block of event time (at most a day's): large enough to vectorise, small enough to stay
responsive."""


class TransactionGenerator:
    """Seeded source of labelled transactions from one customer population; one instance keeps one stream."""

    def __init__(
        self,
        fraud_rate: float = 0.10,
        seed: int | None = None,
        *,
        accounts: int = DEFAULT_ACCOUNTS,
        start: datetime | None = None,
        account_offset: int = 0,
    ) -> None:
        if not 0.0 <= fraud_rate <= 1.0:
            raise ValueError("fraud_rate must be within [0, 1]")
        self.fraud_rate = fraud_rate
        self._seed = seed
        self._n_accounts = accounts
        self._account_offset = account_offset
        self._start = start
        self._population: Population | None = None
        self._buffer: dict[str, np.ndarray] | None = None
        # Ids come from their own seeded stream, so how calls are cut never changes the values drawn.
        self._id_rng = np.random.default_rng(None if seed is None else [seed, 1])

    @property
    def population(self) -> Population:
        """The simulated customers (created on first use, when event time starts)."""
        return self._ensure(None)

    def _ensure(self, now: datetime | None) -> Population:
        if self._population is None:
            start = self._start or now or datetime.now(UTC)
            self._population = Population(
                self._n_accounts,
                fraud_rate=self.fraud_rate,
                seed=self._seed,
                start=start,
                account_offset=self._account_offset,
            )
        return self._population

    def columns(self, n: int, now: datetime | None = None) -> dict[str, np.ndarray]:
        """The next `n` transactions as NumPy columns: categories as codes, the form `features.encode` takes.

        Besides the contract's feature fields and `is_fraud` (the label, 0.2% of it wrong), the columns
        hold `id` (str), `account` (int), `account_id` (str), `merchant_id` (str), `t_ms` (event time,
        ms since the epoch), `known_ms` (when the label became known to the bank, >= `t_ms`:
        `labels.py`), and the truth behind the label: `typology` (index into `fraud.TYPOLOGIES`, -1
        for legitimate payments) and `episode` (the fraud episode's id, shared by its payments; a
        compromised merchant's compromise is one episode; -1 for legitimate payments).
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        population = self._ensure(now)
        # Fixed blocks of event time, so how calls are cut never changes the stream; at most a day, so
        # trips and 28-day compromises start and end within the run, whatever the population's size.
        block_ms = max(1, min(DAY_MS, int(BLOCK_EVENTS * DAY_MS / population.events_per_day)))
        parts: list[dict[str, np.ndarray]] = [] if self._buffer is None else [self._buffer]
        have = 0 if self._buffer is None else self._buffer["t_ms"].size
        while have < n:
            block = population.advance(block_ms)
            parts.append(block)
            have += block["t_ms"].size
        if not parts:
            parts.append(population.advance(0))
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        out = {k: v[:n] for k, v in merged.items()}
        self._buffer = {k: v[n:] for k, v in merged.items()}
        out["id"] = np.asarray(uuids(self._id_rng, n), dtype=object)
        out["account_id"] = np.asarray(population.account_ids(out["account"] - population.account_offset), dtype=object)
        out["merchant_id"] = population.merchants.ids[out.pop("merchant")]
        return out

    def generate(self, n: int, now: datetime | None = None) -> list[dict[str, Any]]:
        """The next `n` transactions as JSON-ready records that satisfy the contract, in event-time order."""
        cols = self.columns(n, now)
        return records(cols, cols["id"].tolist(), cols["account_id"].tolist())
