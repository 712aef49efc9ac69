"""The label aggregation: each complete known day not yet applied, set into its merchants' states, in order.

A run reads the progress (`through`, the last known day applied), then for each day K from the
next one up to yesterday (UTC; today is not complete, so more labels may still become known on
it): it totals the day's labels per merchant (`known_on`), sets each merchant's day-K totals with
`merchants.merged_state` through conditional writes (a write that loses a race is read again and
re-applied), and only then advances the progress to K, conditionally too.

Why this is exact however runs are interrupted, repeated or overlap:
- a known day is fixed when a label is recorded (the later of `known_at` and the recording time,
  `contract.known_day`), and the recording time is the server's clock, so once day K is over no
  label can join it: its totals are final, and the run applies them as they will always be;
- setting (not adding) a day's totals makes applying a day twice change nothing, so a run that
  crashes after some merchants and before the progress moved is simply repeated from day K by the
  next one (merchants already set are read and left as they are: no write);
- the progress moves only after every merchant of the day is set, and only from the version read,
  so two runs at once both apply the same totals and the slower one carries on after the faster.

Days older than `merchants.KEEP_DAYS` before today are skipped (a first run starts there): no
feature reaches that far back (the longest window after the longest delay), and merchant states
drop such days anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from shared.behaviour import days, merchants
from shared.behaviour.merchant_store import MerchantStateWriteError, MerchantStore
from shared.labels.store import LabelStore

logger = logging.getLogger(__name__)

ATTEMPTS: Final = 20
"""Reads and conditional writes of one day's merchants before giving up (another writer kept winning)."""
WRITE_THREADS: Final = 8
"""Concurrent conditional writes: one request per merchant, waiting on the network."""
_MAX_ROUNDS: Final = 4 * (merchants.KEEP_DAYS + 1)
"""Days one run applies at most, counting days re-applied after another run moved the progress."""


class AggregationConflictError(MerchantStateWriteError):
    """Other writers kept changing the same merchants' states for every attempt: the next run goes on."""


@dataclass(frozen=True, slots=True)
class DayApplied:
    """One known day set into its merchants' states."""

    day: int
    merchants: int
    labels: int
    written: int
    """Merchant states written; fewer than `merchants` when a run before this one had already set some."""


@dataclass(frozen=True, slots=True)
class Report:
    """What a run applied, and the progress it leaves."""

    days: list[DayApplied]
    through: int | None


def day_of(moment: datetime) -> int:
    """The UTC day number (`days.day_number`) of a moment (naive: UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return days.day_of_ms(int(moment.timestamp() * 1000))


def first_pending(through: int | None, today: int) -> int:
    """The next known day to apply: the day after `through`, but none older than `KEEP_DAYS` before today."""
    oldest = today - merchants.KEEP_DAYS
    return oldest if through is None else max(through + 1, oldest)


def day_totals(rows: Iterable[tuple[str, bool]]) -> dict[str, tuple[int, int]]:
    """Per merchant: (labels, frauds among them), from (merchant id, fraud) rows."""
    totals: dict[str, list[int]] = {}
    for merchant, fraud in rows:
        counts = totals.setdefault(merchant, [0, 0])
        counts[0] += 1
        counts[1] += int(fraud)
    return {m: (n, f) for m, (n, f) in totals.items()}


def apply_day(
    store: MerchantStore, day: int, totals: Mapping[str, tuple[int, int]], now: str, pool: ThreadPoolExecutor
) -> int:
    """Set `day`'s totals in each merchant's state (conditional writes, retried on conflict); states written."""
    pending = dict(totals)
    written = 0
    for _ in range(ATTEMPTS):
        if not pending:
            return written
        current = store.read_versioned(list(pending))
        jobs = []
        for merchant, (n, fraud) in pending.items():
            stored = current[merchant]
            state = merchants.merged_state(stored.state, day, n, fraud)
            if state == stored.state:
                continue  # a run before this one set it already
            jobs.append((merchant, pool.submit(store.write, merchant, state, stored.version, now)))
        lost = [merchant for merchant, job in jobs if not job.result()]
        written += len(jobs) - len(lost)
        pending = {m: pending[m] for m in lost}
    if pending:
        raise AggregationConflictError(
            f"known day {day}: {len(pending)} merchant states kept changing for {ATTEMPTS} attempts"
        )
    return written


def aggregate(labels: LabelStore, store: MerchantStore, today: int, now: str) -> Report:
    """Apply every complete known day not yet applied (day < `today`), in order; the days applied.

    Raises what the stores raise (`LabelStoreUnavailableError`, `MerchantStateUnavailableError`,
    `MerchantStateWriteError`): the progress then stays at the last day fully applied, and the next
    run starts from the day after it.
    """
    applied: list[DayApplied] = []
    progress = store.read_progress()
    with ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="merchant-writer") as pool:
        for _ in range(_MAX_ROUNDS):
            day = first_pending(progress.through, today)
            if day >= today:
                break
            totals = day_totals(labels.known_on(day))
            written = apply_day(store, day, totals, now, pool)
            count = sum(n for n, _ in totals.values())
            applied.append(DayApplied(day, len(totals), count, written))
            logger.info(
                "applied known day %d: %d labels over %d merchants (%d states written)",
                day,
                count,
                len(totals),
                written,
            )
            if not store.write_progress(day, progress.version, now):
                logger.info("another run moved the aggregation's progress; reading it again")
            progress = store.read_progress()
    return Report(applied, progress.through)
