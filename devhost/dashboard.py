"""The local live dashboard: running totals of a pipeline run, served as JSON and a static page on loopback.

`DashboardState` is fed by the local runner from several threads and summarises everything in
fixed-size structures (counters, a per-second ring, a 20-bin histogram, a bounded latency window),
so its memory stays flat however many events pass. `DashboardServer` serves `/api/stats` (one
`snapshot()`) and the page in `devhost/static`, which polls it. One module past 400 lines on
purpose: the state's `snapshot()` is the page's JSON contract, and the two change together.
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from shared.loopback import is_loopback_host

logger = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
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

_CONTENT_TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# How often the serving thread checks for stop(): the bound on how long stop() takes.
_POLL_S: Final = 0.1
_TEXT: Final = "text/plain; charset=utf-8"
_STATIC_NAME: Final = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
# The page loads nothing from elsewhere and runs no inline code, so it can say so.
_CSP: Final = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


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
            },
            "rejected_by_reason": reasons,
        }


class _Handler(BaseHTTPRequestHandler):
    """GET `/`, `/static/<file>` and `/api/stats`; nothing else."""

    server: _Server
    server_version = "fraud-dashboard"
    sys_version = ""

    def do_GET(self) -> None:
        self._respond(head_only=False)

    def do_HEAD(self) -> None:
        self._respond(head_only=True)

    def _respond(self, *, head_only: bool) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/api/stats":
            body = json.dumps(self.server.state.snapshot(), allow_nan=False, separators=(",", ":")).encode()
            self._send(HTTPStatus.OK, body, "application/json", "no-store", head_only=head_only)
            return
        file: Path | None = None
        if path in ("/", "/index.html"):
            file = STATIC_DIR / "index.html"
        elif path.startswith("/static/"):
            file = _static_file(urllib.parse.unquote(path.removeprefix("/static/")))
        if file is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", _TEXT, "no-store", head_only=head_only)
            return
        self._send(HTTPStatus.OK, file.read_bytes(), _CONTENT_TYPES[file.suffix], "no-cache", head_only=head_only)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, cache: str, *, head_only: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # One line per poll, twice a second, would drown the runner's own output.
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("dashboard %s: %s", self.address_string(), format % args)


def _static_file(name: str) -> Path | None:
    """A file directly inside `STATIC_DIR` with a known type, or None: no subfolders, no `..`."""
    if not _STATIC_NAME.fullmatch(name):
        return None
    file = (STATIC_DIR / name).resolve()
    if file.parent != STATIC_DIR or file.suffix not in _CONTENT_TYPES or not file.is_file():
        return None
    return file


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: DashboardState, family: socket.AddressFamily) -> None:
        self.address_family = family
        self.state = state
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser closing a tab mid-response is routine; keep it out of the console.
        # socketserver calls this from inside its `except`, so the traceback is there to attach.
        logger.debug("dashboard request from %s failed", client_address, exc_info=True)  # noqa: LOG014


class DashboardServer:
    """Serves the dashboard for one `DashboardState` on a loopback address, from a background thread."""

    def __init__(self, state: DashboardState, host: str = "127.0.0.1", port: int = 0) -> None:
        if not is_loopback_host(host):
            # The dashboard has no authentication; it must not be reachable from the network.
            raise ValueError("the dashboard binds to a loopback address only (127.0.0.1, ::1 or localhost)")
        name = host.strip().removeprefix("[").removesuffix("]")
        address = "127.0.0.1" if name.lower() == "localhost" else name
        self.state = state
        self._address = address
        self._port = port
        self._family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address, e.g. `http://127.0.0.1:8765/`; only valid once started."""
        if self._server is None:
            raise RuntimeError("the dashboard server is not running")
        port = self._server.server_address[1]
        host = f"[{self._address}]" if self._family == socket.AF_INET6 else self._address
        return f"http://{host}:{port}/"

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("the dashboard server is already running")
        self._server = _Server((self._address, self._port), self.state, self._family)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL_S}, name="dashboard-http", daemon=True
        )
        self._thread.start()
        logger.info("dashboard at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
