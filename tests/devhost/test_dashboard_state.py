"""The dashboard's state: snapshot math, bounded memory, concurrent feeders."""

from __future__ import annotations

import json
import threading
import tracemalloc
from collections.abc import Sized
from typing import Any

import pytest

from devhost.dashboard_state import (
    HISTOGRAM_BINS,
    LATENCY_WINDOW,
    LATEST_FLAGGED,
    MAX_REJECT_REASONS,
    SERIES_SECONDS,
    DashboardState,
)

pytestmark = pytest.mark.unit


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_row(
    probability: float, *, flagged: bool | None = None, is_fraud: int | None = None, **extra: Any
) -> dict[str, Any]:
    """A published row in the Power BI shape; flagged by the 0.5 threshold unless told otherwise."""
    row: dict[str, Any] = {
        "id": f"tx-{probability:.4f}-{is_fraud}",
        "timestamp": "2026-11-21T10:00:00.000Z",
        "account_id": "acct-000042",
        "amount": 120.5,
        "category_recipient": "gambling",
        "transaction_type": "online",
        "transaction_method": "card",
        "foreign_transaction": 1,
        "fraud_probability": probability,
        "is_flagged": probability >= 0.5 if flagged is None else flagged,
        "threshold": 0.5,
        "model_version": "v-test",
        "scored_at": "2026-11-21T10:00:00.200Z",
        "is_fraud": is_fraud,
        "top_reason": "",
    }
    row.update(extra)
    return row


def test_precision_recall_f1_count_labelled_rows_only() -> None:
    """3 TP, 1 FP, 2 FN, 4 TN: precision 3/4, recall 3/5; unlabelled rows change neither."""
    state = DashboardState()
    rows = (
        [make_row(0.9, is_fraud=1)] * 3
        + [make_row(0.8, is_fraud=0)]
        + [make_row(0.1, is_fraud=1)] * 2
        + [make_row(0.2, is_fraud=0)] * 4
        + [make_row(0.95, is_fraud=None)] * 2
        + [make_row(0.05, is_fraud=None)]
    )
    state.record_published(rows)

    snap = state.snapshot()
    metrics = snap["metrics"]
    assert (metrics["tp"], metrics["fp"], metrics["fn"], metrics["tn"]) == (3, 1, 2, 4)
    assert metrics["precision"] == pytest.approx(0.75)
    assert metrics["recall"] == pytest.approx(0.6)
    assert metrics["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert snap["totals"] == {"generated": 0, "scored": 13, "flagged": 6, "rejected": 0, "labelled": 10}
    assert snap["model_version"] == "v-test"
    assert snap["threshold"] == pytest.approx(0.5)


def test_metrics_undefined_until_their_denominator_exists() -> None:
    """No flagged rows: precision is None (not 0); recall is 0 once a fraud was missed."""
    state = DashboardState()
    assert state.snapshot()["metrics"]["precision"] is None
    state.record_published([make_row(0.1, is_fraud=1), make_row(0.1, is_fraud=0)])
    metrics = state.snapshot()["metrics"]
    assert metrics["precision"] is None
    assert metrics["recall"] == 0.0
    assert metrics["f1"] is None


def test_histogram_bins_probabilities_including_the_edges() -> None:
    """20 equal bins over [0, 1]; 1.0 lands in the last bin; labelled fraud is counted separately."""
    state = DashboardState()
    probabilities = [0.0, 0.049, 0.05, 0.5, 0.999, 1.0]
    state.record_published([make_row(p, is_fraud=int(p > 0.9)) for p in probabilities])
    state.record_published([make_row(float("nan")), make_row(0.3, fraud_probability=None)])

    histogram = state.snapshot()["histogram"]
    expected = [0] * HISTOGRAM_BINS
    for index in (0, 0, 1, 10, 19, 19):
        expected[index] += 1
    assert histogram["bins"] == HISTOGRAM_BINS
    assert histogram["counts"] == expected
    assert histogram["fraud_counts"] == [0] * 19 + [2]
    assert state.snapshot()["totals"]["scored"] == 8


def test_latest_flagged_keeps_newest_25_with_their_reasons() -> None:
    """Newest first, at most 25, reasons capped at three, top_reason used when reasons are absent."""
    state = DashboardState()
    reasons = [{"field": f"f{i}", "contribution": 1.0 - i / 10} for i in range(5)]
    for batch in range(4):
        state.record_published(
            [make_row(0.9, id=f"tx-{batch}-{i}", reasons=reasons, is_fraud=1) for i in range(10)]
            + [make_row(0.1, id=f"legit-{batch}-{i}") for i in range(10)]
        )
    state.record_published([make_row(0.7, id="bare", top_reason="amount", is_fraud=0)])

    latest = state.snapshot()["latest_flagged"]
    assert len(latest) == LATEST_FLAGGED
    assert [item["id"] for item in latest[:3]] == ["bare", "tx-3-9", "tx-3-8"]
    assert latest[0]["reasons"] == [{"field": "amount", "text": None, "contribution": None}]
    assert latest[0]["is_fraud"] == 0
    assert latest[1] == {
        "id": "tx-3-9",
        "amount": 120.5,
        "category": "gambling",
        "probability": 0.9,
        "reasons": [
            {"field": "f0", "text": None, "contribution": 1.0},
            {"field": "f1", "text": None, "contribution": 0.9},
            {"field": "f2", "text": None, "contribution": 0.8},
        ],
        "is_fraud": 1,
        "scored_at": "2026-11-21T10:00:00.200Z",
    }
    assert all(not item["id"].startswith("legit") for item in latest)


def test_latest_flagged_carries_the_reasons_in_analyst_words() -> None:
    """Each reason keeps its words next to its field; a reason without words has text None (the page
    then shows the field); over-long words are cut, not dropped."""
    state = DashboardState()
    reasons = [
        {"field": "payments_last_hour", "contribution": 2.1, "text": "6 payments in the last hour"},
        {"field": "amount_to_usual", "contribution": 1.2, "text": "amount 12x usual"},
        {"field": "amount", "contribution": 0.3},
    ]
    state.record_published([make_row(0.9, id="words", reasons=reasons, is_fraud=1)])
    state.record_published([make_row(0.8, id="long", reasons=[{"field": "amount", "text": "x" * 500}])])
    latest = state.snapshot()["latest_flagged"]
    assert latest[1]["reasons"] == [
        {"field": "payments_last_hour", "text": "6 payments in the last hour", "contribution": 2.1},
        {"field": "amount_to_usual", "text": "amount 12x usual", "contribution": 1.2},
        {"field": "amount", "text": None, "contribution": 0.3},
    ]
    (cut,) = latest[0]["reasons"]
    assert 0 < len(cut["text"]) < 500


def test_rates_and_series_follow_the_clock() -> None:
    """One point per complete second; events/s over the last seconds; at most 120 points."""
    clock = FakeClock()
    state = DashboardState(clock=clock)
    clock.now += 0.5
    state.record_generated(300)
    state.record_published([make_row(0.9)] * 10 + [make_row(0.1)] * 90)
    clock.now += 1.0
    state.record_published([make_row(0.1)] * 200)
    state.record_rejected(4, {"missing": 4})
    clock.now += 0.5  # elapsed 2.0 s: seconds 0 and 1 are complete

    snap = state.snapshot()
    assert snap["series"]["points"] == [
        {"t": 0, "generated": 300, "scored": 100, "flagged": 10, "rejected": 0},
        {"t": 1, "generated": 0, "scored": 200, "flagged": 0, "rejected": 4},
    ]
    assert snap["rates"]["window_s"] == pytest.approx(2.0)
    assert snap["rates"]["events_per_s"] == pytest.approx(304 / 2.0)
    assert snap["rates"]["flagged_per_s"] == pytest.approx(5.0)

    clock.now += 10.0  # a quiet stretch: the rate falls to zero, the series shows the gap
    snap = state.snapshot()
    assert snap["rates"]["events_per_s"] == 0.0
    assert [p["scored"] for p in snap["series"]["points"]] == [100, 200] + [0] * 10

    clock.now += 500.0
    state.record_published([make_row(0.2)])
    clock.now += 1.0
    points = state.snapshot()["series"]["points"]
    assert len(points) == SERIES_SECONDS
    assert sum(p["scored"] for p in points) == 1  # the old seconds are gone, not wrapped around


def test_finished_run_freezes_time_and_zeroes_rates() -> None:
    """After mark_finished the status says so, rates read zero and the series stops moving."""
    clock = FakeClock()
    state = DashboardState(clock=clock)
    state.record_published([make_row(0.1)] * 50)
    clock.now += 3.2
    state.mark_finished()
    before = state.snapshot()
    clock.now += 300.0
    after = state.snapshot()
    assert after["status"] == "finished"
    assert after["rates"]["events_per_s"] == 0.0
    assert after["series"] == before["series"]
    assert after["elapsed_s"] == pytest.approx(3.2)
    assert DashboardState().snapshot()["status"] == "running"


def test_rejected_counts_by_reason() -> None:
    """Totals add up; missing reasons count as unspecified; an endless variety of codes is capped."""
    state = DashboardState()
    state.record_rejected(3, {"missing": 2, "wrong_type": 1})
    state.record_rejected(2, {"missing": 2})
    state.record_rejected(1)
    snap = state.snapshot()
    assert snap["totals"]["rejected"] == 6
    assert snap["rejected_by_reason"] == {"missing": 4, "unspecified": 1, "wrong_type": 1}
    assert list(snap["rejected_by_reason"]) == ["missing", "unspecified", "wrong_type"]

    state.record_rejected(1000, {f"code_{i}": 1 for i in range(1000)})
    reasons = state.snapshot()["rejected_by_reason"]
    assert len(reasons) == MAX_REJECT_REASONS + 1
    assert sum(reasons.values()) == 1006
    with pytest.raises(ValueError, match="count"):
        state.record_rejected(-1)


def test_latency_percentiles_from_a_bounded_window() -> None:
    """Nearest-rank p50/p99 in milliseconds over the latest samples; junk values are ignored."""
    state = DashboardState()
    assert state.snapshot()["latency_ms"]["p99"] is None
    state.record_latencies([i / 1000 for i in range(1, 101)] + [float("nan"), -1.0, float("inf")])
    latency = state.snapshot()["latency_ms"]
    assert latency["p50"] == pytest.approx(50.0)
    assert latency["p99"] == pytest.approx(99.0)
    assert latency["max"] == pytest.approx(100.0)
    assert latency["count"] == 100
    assert latency["window"] == "all 100"

    state.record_latencies([5.0] * LATENCY_WINDOW)
    latency = state.snapshot()["latency_ms"]
    assert latency["samples"] == LATENCY_WINDOW
    assert latency["p50"] == pytest.approx(5000.0)
    # The page shows which transactions the percentiles cover, so a run's summary p99 is not contradicted.
    assert latency["window"] == f"last {LATENCY_WINDOW:,} of {LATENCY_WINDOW + 100:,}"


def _sizes(state: DashboardState) -> dict[str, int]:
    return {name: len(value) for name, value in vars(state).items() if isinstance(value, Sized)}


def test_memory_stays_flat_over_200k_rows() -> None:
    """200,000 rows, latencies and rejections: every container stays bounded, memory does not grow."""
    state = DashboardState()
    reasons = [{"field": "amount", "contribution": 1.2}, {"field": "foreign_transaction", "contribution": 0.4}]
    batch = [
        make_row(i / 1000, id=f"tx-{i}", is_fraud=i % 2, reasons=reasons if i >= 500 else [], top_reason="amount")
        for i in range(1000)
    ]
    latencies = [i / 10_000 for i in range(1000)]

    def feed(batches: int) -> None:
        for b in range(batches):
            state.record_generated(len(batch))
            state.record_published(batch)
            state.record_latencies(latencies)
            state.record_rejected(3, {f"reason_{b % 7}": 3})
            if b % 20 == 0:
                state.snapshot()

    feed(100)
    sizes_at_100k = _sizes(state)
    tracemalloc.start()
    try:
        baseline = tracemalloc.take_snapshot()
        feed(100)
        grown = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(baseline, "filename"))
    finally:
        tracemalloc.stop()

    assert state.snapshot()["totals"]["scored"] == 200_000
    assert _sizes(state) == sizes_at_100k
    assert max(_sizes(state).values()) <= LATENCY_WINDOW
    # Keeping rows would cost ~100 MB here; the summary itself must not grow at all.
    assert grown < 256 * 1024


def test_concurrent_feeders_lose_no_counts() -> None:
    """Eight threads recording at once: the totals are exact."""
    state = DashboardState()
    rows = [make_row(0.9, is_fraud=1), make_row(0.1, is_fraud=0)]

    def feeder() -> None:
        for _ in range(500):
            state.record_published(rows)
            state.record_rejected(1, {"missing": 1})
            state.record_generated(3)
            state.snapshot()

    threads = [threading.Thread(target=feeder) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snap = state.snapshot()
    assert snap["totals"] == {"generated": 12_000, "scored": 8000, "flagged": 4000, "rejected": 4000, "labelled": 8000}
    assert snap["metrics"]["precision"] == 1.0


def test_snapshot_is_strict_json() -> None:
    """The snapshot holds no NaN or infinity, even when rows carry them."""
    state = DashboardState()
    state.record_published([make_row(float("inf"), flagged=True, amount=float("nan"))])
    json.dumps(state.snapshot(), allow_nan=False)
