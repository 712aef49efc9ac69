"""What a local run did: counts, precision and recall against the labels, latency per transaction."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class LatencyHistogram:
    """Enqueue→stored latencies in 1 ms buckets up to 60 s: exact enough, flat memory for any run length."""

    def __init__(self, max_ms: int = 60_000) -> None:
        self.counts = np.zeros(max_ms + 1, dtype=np.int64)

    def add(self, seconds: Sequence[float], weights: Sequence[int] | None = None) -> None:
        """Add latencies; `weights` counts each one that many times (the transactions of one event)."""
        ms = np.minimum((np.asarray(seconds) * 1000.0).astype(np.int64), len(self.counts) - 1)
        np.add.at(self.counts, np.maximum(ms, 0), 1 if weights is None else np.asarray(weights, dtype=np.int64))

    def percentile(self, q: float) -> float:
        """The q-th percentile in seconds (upper edge of its bucket); 0 when empty."""
        total = int(self.counts.sum())
        if total == 0:
            return 0.0
        rank = int(np.searchsorted(np.cumsum(self.counts), q / 100.0 * total))
        return (rank + 1) / 1000.0


@dataclass
class RunSummary:
    generated: int = 0
    """Transactions generated (one or many per event)."""
    events: int = 0
    """Event Hubs events they were sent in."""
    scored: int = 0
    rejected: int = 0
    flagged: int = 0
    published: int = 0
    unpublished: int = 0
    """Rows whose publishing failed past the retry policy (skipped, as the host does)."""
    retries: int = 0
    """ScoreTransactions invocations retried by its policy (a failed function or failed output writes)."""
    true_positives: int = 0
    labelled_fraud: int = 0
    elapsed_s: float = 0.0
    """From the first transaction generated to the last one stored."""
    drain_s: float = 0.0
    """After that, publishing what was left (waiting out a failing publish's retries)."""
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    rejected_reasons: Counter[str] = field(default_factory=Counter)
    stage_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    """Wall time spent in each stage of the loop: where the time goes."""

    @property
    def precision(self) -> float:
        return self.true_positives / self.flagged if self.flagged else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.labelled_fraud if self.labelled_fraud else 0.0

    @property
    def transactions_per_s(self) -> float:
        """Documents stored (scored + rejected: one per transaction) per second."""
        return (self.scored + self.rejected) / self.elapsed_s if self.elapsed_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated": self.generated,
            "events": self.events,
            "scored": self.scored,
            "rejected": self.rejected,
            "flagged": self.flagged,
            "published": self.published,
            "unpublished": self.unpublished,
            "retries": self.retries,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "transactions_per_s": round(self.transactions_per_s, 1),
            "latency_p50_s": self.latency.percentile(50),
            "latency_p99_s": self.latency.percentile(99),
            "elapsed_s": round(self.elapsed_s, 3),
            "drain_s": round(self.drain_s, 3),
            "rejected_reasons": dict(self.rejected_reasons),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }
