"""The label aggregation on the memory stores: complete days only, in order, idempotent, restartable, concurrent."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from shared.behaviour import days, merchants
from shared.behaviour.merchant_store import (
    MemoryMerchantStore,
    MerchantStateWriteError,
    Progress,
    Versioned,
)
from shared.labels.aggregate import (
    ATTEMPTS,
    AggregationConflictError,
    aggregate,
    day_of,
    day_totals,
    first_pending,
)
from shared.labels.store import MemoryLabelStore

pytestmark = pytest.mark.unit

TODAY = 740_800
NOW = "2026-12-01T00:05:00.000Z"
MERCHANTS = [f"m-{i}" for i in range(8)]


def labelled(rows: Sequence[tuple[str, str | None, bool, int]]) -> MemoryLabelStore:
    """A label store holding (transaction id, merchant, fraud, known day) rows."""
    store = MemoryLabelStore()
    docs = [
        {"id": tid, "transaction_id": tid, "fraud": fraud, "known_day": day, "merchant_id": merchant}
        for tid, merchant, fraud, day in rows
    ]
    store.create(docs)
    return store


def random_rows(seed: int, first_day: int, last_day: int, n: int = 600) -> list[tuple[str, str | None, bool, int]]:
    rng = np.random.default_rng(seed)
    merchant = [None if rng.random() < 0.1 else MERCHANTS[rng.integers(len(MERCHANTS))] for _ in range(n)]
    return [
        (f"tx-{seed}-{i}", merchant[i], bool(rng.random() < 0.2), int(rng.integers(first_day, last_day + 1)))
        for i in range(n)
    ]


def expected_states(rows: Sequence[tuple[str, str | None, bool, int]], before: int) -> dict[str, dict[str, Any]]:
    """Each merchant's state built by hand: per known day (< `before`) its labels and frauds, days ascending."""
    out: dict[str, dict[str, Any]] = {}
    for merchant in sorted({m for _, m, _, d in rows if m is not None and d < before}):
        per_day: dict[int, list[int]] = {}
        for _, m, fraud, d in rows:
            if m == merchant and d < before:
                per_day.setdefault(d, [0, 0])
                per_day[d][0] += 1
                per_day[d][1] += int(fraud)
        kept = sorted(per_day)[-merchants.KEEP_DAYS :]
        kept = [d for d in kept if d > kept[-1] - merchants.KEEP_DAYS]
        out[merchant] = {
            "v": merchants.STATE_VERSION,
            "day": kept,
            "n": [per_day[d][0] for d in kept],
            "fraud": [per_day[d][1] for d in kept],
            "through": kept[-1],
        }
    return out


def states_of(store: MemoryMerchantStore) -> dict[str, dict[str, Any]]:
    return store.read(MERCHANTS)


def test_day_totals_count_labels_and_frauds_per_merchant() -> None:
    """Rows in any order give the same integer totals."""
    rows = [("a", True), ("b", False), ("a", False), ("a", True)]
    assert day_totals(rows) == {"a": (3, 2), "b": (1, 0)}
    assert day_totals(reversed(rows)) == day_totals(rows)
    assert day_totals([]) == {}


def test_first_pending_day() -> None:
    """The day after the progress, but never older than KEEP_DAYS before today; a first run starts there."""
    oldest = TODAY - merchants.KEEP_DAYS
    assert first_pending(None, TODAY) == oldest
    assert first_pending(TODAY - 3, TODAY) == TODAY - 2
    assert first_pending(oldest - 50, TODAY) == oldest
    assert first_pending(TODAY - 1, TODAY) == TODAY


def test_day_of_is_the_utc_day_number() -> None:
    """The same day numbers as `days.day_number` on milliseconds; a naive moment is UTC."""
    from datetime import UTC, datetime, timedelta, timezone

    moment = datetime(2026, 11, 20, 23, 59, 59, 999000, tzinfo=UTC)
    expected = int(days.day_number(np.asarray(int(moment.timestamp() * 1000))))
    assert day_of(moment) == expected
    assert day_of(moment.replace(tzinfo=None)) == expected
    assert day_of(moment + timedelta(milliseconds=1)) == expected + 1
    assert day_of(moment.astimezone(timezone(timedelta(hours=5)))) == expected


def test_only_complete_days_are_applied_in_order() -> None:
    """Labels known today wait; every earlier day is applied once, oldest first, and the progress ends at yesterday."""
    rows = random_rows(1, TODAY - 5, TODAY)
    labels = labelled(rows)
    store = MemoryMerchantStore()
    report = aggregate(labels, store, TODAY, NOW)
    assert [d.day for d in report.days] == list(range(TODAY - merchants.KEEP_DAYS, TODAY))
    assert report.through == TODAY - 1 == store.read_progress().through
    assert states_of(store) == expected_states(rows, TODAY)
    assert all(TODAY not in s["day"] for s in states_of(store).values())
    applied = {d.day: d for d in report.days}
    assert applied[TODAY - 1].labels == sum(1 for _, m, _, d in rows if d == TODAY - 1 and m is not None)
    tomorrow = aggregate(labels, store, TODAY + 1, NOW)
    assert [d.day for d in tomorrow.days] == [TODAY]
    assert states_of(store) == expected_states(rows, TODAY + 1)


def test_a_second_run_changes_nothing() -> None:
    """Run again the same day: no day applied. Progress lost: every day applied again, no state written."""
    rows = random_rows(2, TODAY - 40, TODAY - 1)
    labels, store = labelled(rows), MemoryMerchantStore()
    aggregate(labels, store, TODAY, NOW)
    before = states_of(store)
    assert aggregate(labels, store, TODAY, NOW).days == []
    store._docs.pop("_aggregation")  # the progress document lost (deleted by hand)
    again = aggregate(labels, store, TODAY, NOW)
    assert len(again.days) == merchants.KEEP_DAYS
    assert sum(d.written for d in again.days) == 0
    assert states_of(store) == before


class CrashingStore(MemoryMerchantStore):
    """A memory store whose writes fail after `budget` of them (an outage mid-run)."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget
        self.lock = threading.Lock()

    def write(self, merchant_id: str, state: Mapping[str, Any], version: Any, now: str) -> bool:
        with self.lock:
            self.budget -= 1
            if self.budget < 0:
                raise MerchantStateWriteError("outage")
        return super().write(merchant_id, state, version, now)


@pytest.mark.parametrize("budget", [0, 1, 5, 17, 40])
def test_a_run_interrupted_anywhere_is_finished_by_the_next(budget: int) -> None:
    """After a crash halfway through a day, the progress holds at the last whole day and a new run ends
    exactly where an uninterrupted one does: nothing counted twice, nothing missed."""
    rows = random_rows(3, TODAY - 12, TODAY - 1)
    labels, store = labelled(rows), CrashingStore(budget)
    with pytest.raises(MerchantStateWriteError):
        aggregate(labels, store, TODAY, NOW)
    through = store.read_progress().through
    assert through is None or through < TODAY - 1
    partial = states_of(store)
    assert all(
        s["day"][-1] <= (TODAY - merchants.KEEP_DAYS if through is None else through + 1) for s in partial.values()
    )
    store.budget = 10**9
    report = aggregate(labels, store, TODAY, NOW)
    assert report.days[0].day == first_pending(through, TODAY)
    assert states_of(store) == expected_states(rows, TODAY)


def test_two_runs_at_once_end_as_one() -> None:
    """Overlapping runs (a manual run beside the schedule) apply the same totals; the result is one run's."""
    rows = random_rows(4, TODAY - 20, TODAY - 1, n=2000)
    labels, store = labelled(rows), MemoryMerchantStore()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            aggregate(labels, store, TODAY, NOW)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert states_of(store) == expected_states(rows, TODAY)
    assert store.read_progress().through == TODAY - 1


class RacedStore(MemoryMerchantStore):
    """Another writer changes a merchant between the aggregation's read and its write, `races` times per merchant."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races: dict[str, int] = {}
        self.per_merchant = races

    def write(self, merchant_id: str, state: Mapping[str, Any], version: Any, now: str) -> bool:
        done = self.races.get(merchant_id, 0)
        if done < self.per_merchant:
            self.races[merchant_id] = done + 1
            current = self.read_versioned([merchant_id])[merchant_id]
            # The other writer applies an older day: the aggregation's write must lose, re-read and keep it.
            other = merchants.merged_state(current.state, TODAY - 30 - done, 1, 1)
            assert super().write(merchant_id, other, current.version, now)
        return super().write(merchant_id, state, version, now)


def test_a_write_that_loses_a_race_is_read_again_and_reapplied() -> None:
    """Conditional writes: the aggregation's totals and the other writer's day both end up in the state."""
    rows = [("t1", "m-0", True, TODAY - 1), ("t2", "m-0", False, TODAY - 1)]
    store = RacedStore(races=3)
    report = aggregate(labelled(rows), store, TODAY, NOW)
    assert report.days[-1].written == 1
    state = states_of(store)["m-0"]
    assert state["day"] == [TODAY - 32, TODAY - 31, TODAY - 30, TODAY - 1]
    assert state["n"][-1] == 2
    assert state["fraud"][-1] == 1


def test_a_merchant_that_keeps_losing_stops_the_run() -> None:
    """Past ATTEMPTS lost races the run stops with AggregationConflictError; the progress stays before that day."""
    rows = [("t1", "m-0", True, TODAY - 1)]
    store = RacedStore(races=ATTEMPTS)
    with pytest.raises(AggregationConflictError):
        aggregate(labelled(rows), store, TODAY, NOW)
    assert store.read_progress().through == TODAY - 2


class ProgressThief(MemoryMerchantStore):
    """Another run moves the progress just before this one records it, once."""

    def __init__(self, to: int) -> None:
        super().__init__()
        self.to: int | None = to

    def write_progress(self, through: int, version: Any, now: str) -> bool:
        if self.to is not None:
            current = self.read_progress()
            assert super().write_progress(self.to, current.version, now)
            self.to = None
        return super().write_progress(through, version, now)


def test_a_run_whose_progress_was_moved_carries_on_after_it() -> None:
    """The progress is written only from the version read: a run that lost it continues after the other run's day."""
    rows = random_rows(5, TODAY - 10, TODAY - 1)
    store = ProgressThief(to=TODAY - 5)
    report = aggregate(labelled(rows), store, TODAY, NOW)
    applied = [d.day for d in report.days]
    assert applied[0] == TODAY - merchants.KEEP_DAYS
    assert applied[1:] == list(range(TODAY - 4, TODAY))
    assert store.read_progress().through == TODAY - 1


def test_keep_days_bounds_the_past() -> None:
    """Days older than KEEP_DAYS before today are never applied; a state drops days KEEP_DAYS before its newest."""
    old, recent = TODAY - merchants.KEEP_DAYS - 5, TODAY - merchants.KEEP_DAYS
    rows = [("t-old", "m-0", True, old), ("t-edge", "m-0", True, recent), ("t-later", "m-0", False, TODAY - 1)]
    store = MemoryMerchantStore()
    aggregate(labelled(rows), store, TODAY, NOW)
    state = states_of(store)["m-0"]
    assert state["day"] == [recent, TODAY - 1]
    # The newest day and the KEEP_DAYS - 1 before it stay; one day further back goes.
    far = TODAY - 1 + merchants.KEEP_DAYS - 1
    rows.append(("t-far", "m-0", True, far))
    aggregate(labelled(rows), store, far + 1, NOW)
    assert states_of(store)["m-0"]["day"] == [TODAY - 1, far]
    rows.append(("t-further", "m-0", True, far + 1))
    aggregate(labelled(rows), store, far + 2, NOW)
    state = states_of(store)["m-0"]
    assert state["day"] == [far, far + 1]
    assert merchants.usable_state(state) is not None


def test_an_unusable_state_is_replaced() -> None:
    """A stored state of another version reads as none and is overwritten by the day's totals."""
    store = MemoryMerchantStore()
    store.put("m-0", {"v": 99, "day": "garbage"})
    assert store.read(["m-0"]) == {}
    aggregate(labelled([("t1", "m-0", True, TODAY - 1)]), store, TODAY, NOW)
    assert states_of(store)["m-0"]["day"] == [TODAY - 1]


def test_states_give_the_training_replay_features() -> None:
    """Merchant features served from the aggregated states equal `merchants.replay` over the same labels."""
    rows = random_rows(6, TODAY - 60, TODAY - 1, n=3000)
    store = MemoryMerchantStore()
    aggregate(labelled(rows), store, TODAY, NOW)
    with_merchant = [r for r in rows if r[1] is not None]
    known_ms = np.asarray([(d - days.DAY_OFFSET) * days.DAY_MS + 3_600_000 for *_, d in with_merchant])
    rng = np.random.default_rng(9)
    pay_merchants = [MERCHANTS[i] for i in rng.integers(len(MERCHANTS), size=500)] + [None, "m-unknown"]
    pay_day = rng.integers(TODAY - 20, TODAY + 8, size=len(pay_merchants))
    t_ms = (pay_day - days.DAY_OFFSET) * days.DAY_MS + rng.integers(0, days.DAY_MS, size=len(pay_merchants))
    for delay in (0, 7, 30):
        served = merchants.features_from_states(pay_merchants, t_ms, store.read(MERCHANTS), delay)
        replayed = merchants.replay(
            pay_merchants,
            t_ms,
            [m for _, m, _, _ in with_merchant],
            known_ms,
            np.asarray([f for _, _, f, _ in with_merchant]),
            delay,
        )
        # Exact wherever the day a feature reads is complete: payments up to today + delay.
        complete = pay_day <= TODAY + delay
        assert np.array_equal(served[complete], replayed[complete]), delay
        assert served[complete][:, 0].sum() > 0


def test_an_unreadable_progress_or_store_stops_before_writing() -> None:
    """Reads that fail raise out of the run; nothing is written."""
    from shared.behaviour.merchant_store import MerchantStateUnavailableError

    class Unreadable(MemoryMerchantStore):
        def read_progress(self) -> Progress:
            raise MerchantStateUnavailableError("down")

        def read_versioned(self, merchant_ids: Sequence[str]) -> dict[str, Versioned]:
            raise MerchantStateUnavailableError("down")

    store = Unreadable()
    with pytest.raises(MerchantStateUnavailableError):
        aggregate(labelled([("t1", "m-0", True, TODAY - 1)]), store, TODAY, NOW)
    assert store._docs == {}
