"""The demo's label history: the generator's stream started days back, its labels known by now imported and aggregated.

Why: merchant risk counts labels known more than MERCHANT_RISK_DELAY_DAYS (7) whole days before a
payment's day, and a demo lasts minutes, so labels posted during it never reach a feature. A bank
going live imports its past chargebacks (tools/import_labels.py); the demo does the same with the
history of its own stream. The function's generator (one stream per process, which
GenerateTransactions continues) is started `days` before the wall clock and run up to it; those
payments are not scored (they would be older than EVENT_TIME_MAX_LATE_HOURS allows, and the point is
their labels); each label known by now is imported through `tools.import_labels.import_records`
into the store the functions use, and AggregateLabels is invoked once through the worker, as the
host's timer would. The live run then continues the same stream from now, so the merchants it pays
are the ones whose past was just labelled: compromised merchants among them.

Memory stays bounded by `days`: the stream is generated and imported `CHUNK` payments at a time,
and what is kept is the label store's (about 400 bytes a label in memory; 30 days of the default
10,000 accounts are about 410,000 labels).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from devhost.host_messages import timer_input
from devhost.worker import Worker
from shared import caches
from shared.generation.event_time import DAY_MS
from shared.generation.generator import labels

CHUNK: Final = 20_000
"""Payments generated per step: large enough to vectorise, small enough to keep memory flat."""
READ_CHUNK: Final = 500
"""Merchants per read when counting the states the aggregation set."""


@dataclass(frozen=True, slots=True)
class History:
    """What the demo's history did before the live run."""

    days: int
    payments: int
    imported: int
    merchants_with_state: int
    known_days: str
    seconds: float
    skipped: str | None = None
    """Why there is no history (a store off), or None."""

    def line(self) -> str:
        """The one line the demo prints."""
        if self.skipped:
            return f"label history: none ({self.skipped})"
        return (
            f"label history: {self.imported:,} labels imported from {self.days} days of the generator's stream "
            f"({self.payments:,} payments, not scored), {self.merchants_with_state:,} merchants with a state, "
            f"{self.known_days}; {self.seconds:.1f} s"
        )


def _label_pairs(generator: Any, start: datetime, now_ms: int, counts: list[int]) -> Iterator[tuple[int, Any]]:
    """(index, label) of every payment from `start` up to about now whose label is known by now."""
    generator.columns(0, start)  # the first call's moment starts event time
    per_ms = generator.population.events_per_day / DAY_MS
    last_ms = int(start.timestamp() * 1000)
    index = 0
    while True:
        # Aim short of now (the stream's pace varies), so the live run's first payments are about now.
        expected = int((now_ms - last_ms) * per_ms * 0.9)
        if expected < 1:
            return
        columns = generator.columns(min(expected, CHUNK))
        counts[0] += columns["t_ms"].size
        last_ms = int(columns["t_ms"][-1])
        known = columns["known_ms"] <= now_ms
        keys = ("id", "account_id", "merchant_id", "is_fraud", "known_ms")
        for record in labels({k: columns[k][known] for k in keys}):
            index += 1
            yield index, record


def load(worker: Worker, days: int, now: datetime | None = None) -> History:
    """Generate `days` of history before `now`, import its labels known by then, run AggregateLabels once."""
    from functions import generate
    from shared.behaviour.merchant_store import get_merchant_store
    from shared.labels.store import get_label_store
    from shared.settings import get_settings
    from tools.import_labels import check_aggregation, import_records

    started = time.perf_counter()
    label_store, merchant_store = get_label_store(), get_merchant_store()
    if label_store is None or merchant_store is None:
        return History(days, 0, 0, 0, "", 0.0, "LABEL_STORE or MERCHANT_STATE is off")
    now = now or datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    counts = [0]
    caches.reset("generator stream")  # a fresh stream, so it starts where the history says
    # The function's own stream (this process is the worker's): the live run must continue it.
    with generate._generator_lock:
        stream = generate._generator()
        pairs = _label_pairs(stream, now - timedelta(days=days), now_ms, counts)
        max_early_ms = get_settings().event_time_max_early_hours * 3_600_000
        report = import_records(pairs, label_store, now, max_early_ms)
    if not report.ok:
        raise RuntimeError(f"the demo's label history did not import cleanly: {report.summary()}")
    # The demo's own store: if an earlier run's aggregation is ahead (Cosmos DB, --keep-data), move it back.
    check_aggregation(merchant_store, report, now, reaggregate=True)
    worker.invoke("AggregateLabels", *timer_input())
    merchants = sorted(report.merchants)
    with_state = sum(
        len(merchant_store.read(merchants[i : i + READ_CHUNK])) for i in range(0, len(merchants), READ_CHUNK)
    )
    return History(
        days, counts[0], report.stored + report.duplicates, with_state, report.days_text(),
        time.perf_counter() - started,
    )  # fmt: skip
