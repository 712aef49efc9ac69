"""What the local dashboard shows: the running totals of a pipeline run, in memory that does not grow with it.

`DashboardState` is fed by the local runner from several threads (it is the runner's `Observer`) and
summarises everything in fixed-size structures (counters, a per-second ring, a 20-bin histogram, a
bounded latency window), so its memory stays flat however many events pass. Its `snapshot()` is the
JSON the page in `devhost/static` reads.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

HISTOGRAM_BINS: Final = 20
SERIES_SECONDS: Final = 120
RATE_WINDOW_S: Final = 5
LATEST_FLAGGED: Final = 25
LATENCY_WINDOW: Final = 10_000
MAX_REASONS_PER_ROW: Final = 3
MAX_REJECT_REASONS: Final = 50
_OTHER_REASON: Final = "other"
_UNSPECIFIED_REASON: Final = "unspecified"
_MAX_LABEL_CHARS: Final = 64
# A reason's words ("12,345.67 spent in the last 24 hours") run longer than a field name.
_MAX_TEXT_CHARS: Final = 120


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _label(value: Any) -> str:
    return str(value)[:_MAX_LABEL_CHARS]


def _text(value: Any) -> str | None:
    return str(value)[:_MAX_TEXT_CHARS] if value else None


def _reasons(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The row's reasons as `{field, text, contribution}`; a bare `top_reason` when that is all there is.

    `text` is the reason in an analyst's words ("6 payments in the last hour"); None for a document
    scored before reasons had words, and the page then shows the field's name.
    """
    raw = row.get("reasons")
    out: list[dict[str, Any]] = []
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        for item in raw[:MAX_REASONS_PER_ROW]:
            if isinstance(item, Mapping) and item.get("field"):
                out.append(
                    {
                        "field": _label(item["field"]),
                        "text": _text(item.get("text")),
                        "contribution": _finite(item.get("contribution")),
                    }
                )
    if not out and row.get("top_reason"):
        out.append({"field": _label(row["top_reason"]), "text": None, "contribution": None})
    return out


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


class _Second:
    """Counts for one second of the run; reused in place when the ring wraps."""

    __slots__ = ("flagged", "generated", "rejected", "scored", "second")

    def __init__(self) -> None:
        self.second = -1
        self.generated = self.scored = self.flagged = self.rejected = 0


class DashboardState:
    """Thread-safe running summary of one pipeline run, in memory that does not grow with the run."""

    def __init__(self, *, model_version: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._start = clock()
        self._finished_at: float | None = None
        self._model_version = model_version
        self._threshold: float | None = None
        self._generated = self._scored = self._flagged = self._rejected = 0
        self._tp = self._fp = self._fn = self._tn = 0
        self._hist = [0] * HISTOGRAM_BINS
        self._hist_fraud = [0] * HISTOGRAM_BINS
        self._latest: deque[dict[str, Any]] = deque(maxlen=LATEST_FLAGGED)
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._latency_count = 0
        self._reject_reasons: Counter[str] = Counter()
        # One slot more than the series shows: the current, still-filling second.
        self._ring = [_Second() for _ in range(SERIES_SECONDS + 1)]

    def _slot(self, now: float) -> _Second:
        """The ring slot for the second containing `now`, cleared if it last held an older second."""
        second = int(now - self._start)
        slot = self._ring[second % len(self._ring)]
        if slot.second != second:
            slot.second = second
            slot.generated = slot.scored = slot.flagged = slot.rejected = 0
        return slot

    def record_generated(self, count: int) -> None:
        """`count` events were generated and sent into the stream."""
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            self._generated += count
            self._slot(self._clock()).generated += count

    def record_published(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Rows came out of the change feed (Power BI row shape, optionally with `reasons`)."""
        # Summarise the batch before taking the lock, so feeders hold it only to add numbers.
        n = flagged = tp = fp = fn = tn = 0
        hist = [0] * HISTOGRAM_BINS
        hist_fraud = [0] * HISTOGRAM_BINS
        flagged_rows: deque[tuple[Mapping[str, Any], float | None]] = deque(maxlen=LATEST_FLAGGED)
        version: str | None = None
        threshold: float | None = None
        for row in rows:
            n += 1
            is_flagged = bool(row.get("is_flagged"))
            label = row.get("is_fraud")
            probability = _finite(row.get("fraud_probability"))
            if probability is not None:
                index = min(HISTOGRAM_BINS - 1, max(0, int(probability * HISTOGRAM_BINS)))
                hist[index] += 1
                if label:
                    hist_fraud[index] += 1
            if label is not None:
                tp += bool(is_flagged and label)
                fp += bool(is_flagged and not label)
                fn += bool(not is_flagged and label)
                tn += bool(not is_flagged and not label)
            if is_flagged:
                flagged += 1
                flagged_rows.append((row, probability))
            version = _label(row["model_version"]) if row.get("model_version") else version
            row_threshold = _finite(row.get("threshold"))
            threshold = threshold if row_threshold is None else row_threshold
        latest = [
            {
                "id": _label(row.get("id", "")),
                "amount": _finite(row.get("amount")),
                "category": _label(row.get("category_recipient", "")),
                "probability": probability,
                "reasons": _reasons(row),
                "is_fraud": None if row.get("is_fraud") is None else int(bool(row["is_fraud"])),
                "scored_at": _label(row.get("scored_at", "")),
            }
            for row, probability in flagged_rows
        ]
        if n == 0:
            return
        with self._lock:
            self._scored += n
            self._flagged += flagged
            self._tp += tp
            self._fp += fp
            self._fn += fn
            self._tn += tn
            for i in range(HISTOGRAM_BINS):
                self._hist[i] += hist[i]
                self._hist_fraud[i] += hist_fraud[i]
            self._latest.extend(latest)
            self._model_version = version or self._model_version
            self._threshold = threshold if threshold is not None else self._threshold
            slot = self._slot(self._clock())
            slot.scored += n
            slot.flagged += flagged

    def record_rejected(self, count: int, reasons: Mapping[str, int] | None = None) -> None:
        """`count` events were rejected; `reasons` maps reason codes to how many of them had each."""
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            self._rejected += count
            self._slot(self._clock()).rejected += count
            for reason, n in (reasons or {_UNSPECIFIED_REASON: count}).items():
                key = _label(reason)
                # Reason codes are a small fixed set; an unexpected flood of new ones is folded together.
                if key not in self._reject_reasons and len(self._reject_reasons) >= MAX_REJECT_REASONS:
                    key = _OTHER_REASON
                if n > 0:
                    self._reject_reasons[key] += n

    def record_latencies(self, seconds: Sequence[float]) -> None:
        """Enqueue-to-stored latencies of individual events, in seconds; the latest ones are kept."""
        clean = [s for s in seconds if math.isfinite(s) and s >= 0]
        with self._lock:
            self._latency_count += len(clean)
            self._latencies.extend(clean)

    def mark_finished(self) -> None:
        """The run is over: time stops for the series, rates drop to zero, the page says "finished"."""
        with self._lock:
            if self._finished_at is None:
                self._finished_at = self._clock()

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready values (None where a figure is not defined yet)."""
        with self._lock:
            finished = self._finished_at is not None
            now = self._clock() if self._finished_at is None else self._finished_at
            elapsed = max(0.0, now - self._start)
            current = int(elapsed)
            by_second = {s.second: s for s in self._ring if s.second >= 0}
            latencies = list(self._latencies)
            latency_count = self._latency_count
            tp, fp, fn, tn = self._tp, self._fp, self._fn, self._tn
            totals = {
                "generated": self._generated,
                "scored": self._scored,
                "flagged": self._flagged,
                "rejected": self._rejected,
                "labelled": tp + fp + fn + tn,
            }
            histogram = {"bins": HISTOGRAM_BINS, "counts": list(self._hist), "fraud_counts": list(self._hist_fraud)}
            latest = [dict(item) for item in reversed(self._latest)]
            reasons = dict(sorted(self._reject_reasons.items(), key=lambda kv: (-kv[1], kv[0])))
            status = "finished" if finished else "running"
            model_version, threshold = self._model_version, self._threshold
            first = max(0, current - RATE_WINDOW_S + 1)
            window = [by_second[s] for s in range(first, current + 1) if s in by_second]
            window_s = max(1.0, elapsed - first)
            # Nothing flows once the run is over, whatever its last seconds looked like.
            scale = 0.0 if finished else 1.0 / window_s
            rates = {
                "window_s": round(window_s, 3),
                "events_per_s": sum(s.scored + s.rejected for s in window) * scale,
                "scored_per_s": sum(s.scored for s in window) * scale,
                "flagged_per_s": sum(s.flagged for s in window) * scale,
                "generated_per_s": sum(s.generated for s in window) * scale,
            }
            empty = _Second()
            # Complete seconds only: the still-filling one would always dip at the right edge.
            points = [
                {
                    "t": s,
                    "generated": by_second.get(s, empty).generated,
                    "scored": by_second.get(s, empty).scored,
                    "flagged": by_second.get(s, empty).flagged,
                    "rejected": by_second.get(s, empty).rejected,
                }
                for s in range(max(0, current - SERIES_SECONDS), current)
            ]
        latencies.sort()
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = None
        if precision is not None and recall is not None:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        p50, p99 = _percentile(latencies, 50), _percentile(latencies, 99)
        # The percentiles cover the latest LATENCY_WINDOW transactions only; the page says which.
        covered = (
            f"last {len(latencies):,} of {latency_count:,}"
            if len(latencies) < latency_count
            else f"all {latency_count:,}"
        )
        return {
            "status": status,
            "model_version": model_version,
            "threshold": threshold,
            "elapsed_s": round(elapsed, 3),
            "totals": totals,
            "rates": rates,
            "series": {"interval_s": 1, "points": points},
            "histogram": histogram,
            "latest_flagged": latest,
            "metrics": {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "tn": tn},
            "latency_ms": {
                "p50": None if p50 is None else p50 * 1000.0,
                "p99": None if p99 is None else p99 * 1000.0,
                "max": latencies[-1] * 1000.0 if latencies else None,
                "samples": len(latencies),
                "count": latency_count,
                "window": covered,
            },
            "rejected_by_reason": reasons,
        }
