"""A local HTTP server that STANDS IN FOR POWER BI in tests and enforces its documented push contract.

It is not Power BI. It checks what the docs promise and nothing they leave unsaid:

- streaming push URL (`/beta/{tenant}/datasets/{id}/rows?key=...`): body is a JSON array of row
  objects, the key must match (403 otherwise);
  https://learn.microsoft.com/en-us/power-bi/connect-data/service-real-time-streaming
- REST PostRows (`/v1.0/myorg/datasets/{id}/tables/{table}/rows`): body is `{"rows": [...]}`; the real
  endpoint wants an Entra ID bearer token, which this fake does not check;
  https://learn.microsoft.com/en-us/rest/api/power-bi/push-datasets/datasets-post-rows
- at most 10,000 rows per POST, 120 POSTs per rolling minute, 4,000 characters per string value,
  1,000,000 rows added per hour; with the "None" retention policy, once the table holds 250,000 rows,
  120 POSTs per hour (a basicFIFO table keeps 200,000-210,000 rows and never gets there);
  https://learn.microsoft.com/en-us/power-bi/developer/embedded/push-datasets-limitations
  https://learn.microsoft.com/en-us/power-bi/developer/automation/api-automatic-retention-policy-for-real-time-data
- 16 MB per request (push models), answered with 413.

The docs name no status for too many rows or a malformed body; this fake answers 400, the status for
an invalid request. Throttled POSTs get 429 with Retry-After in seconds, as Power BI documents: the
seconds until the quota that refused them frees up, so up to an hour for the hourly quotas (the 2016
REST limitations page: "Retry-After: seconds until their quota resets").
It is stricter than Power BI where that catches client bugs: Content-Type must be JSON, values must
be scalars, and when a schema is given, unknown columns and wrong types are 400s.

A fault script makes the next requests fail on purpose: a status (with or without Retry-After), a
hang longer than the client's timeout, or a TCP reset.
"""

from __future__ import annotations

import json
import math
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import parse_qs, urlsplit

MAX_ROWS = 10_000
MAX_POSTS_PER_MINUTE = 120
MAX_ROWS_PER_HOUR = 1_000_000
SLOW_TABLE_ROWS = 250_000
SLOW_POSTS_PER_HOUR = 120
FIFO_KEEPS = 200_000
MAX_BODY_BYTES = 16 * 1000 * 1000
MAX_STRING_CHARS = 4_000
DEFAULT_KEY = "fake-key-for-tests"


class FakeClock:
    """A monotonic clock whose `sleep` only moves time on; share one between client and fake server."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, used for the next POST instead of the normal contract checks."""

    kind: Literal["pass", "status", "hang", "reset"]
    status: int = 0
    retry_after: str | None = None
    seconds: float = 0.0

    @classmethod
    def passthrough(cls) -> Fault:
        """Behave normally for this POST: lets a script fail the second request, not the first."""
        return cls("pass")

    @classmethod
    def http(cls, status: int, retry_after: str | None = None) -> Fault:
        """Answer with `status`, and a Retry-After header when given."""
        return cls("status", status=status, retry_after=retry_after)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """Say nothing for `seconds` (cut short when the server stops), then close the connection."""
        return cls("hang", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        """Read the request, then abort the connection with a TCP RST."""
        return cls("reset")


@dataclass(frozen=True)
class Post:
    """One POST the fake answered: its path (never the query, which holds the key), status and rows."""

    path: str
    status: int
    rows: int


class _Server(ThreadingHTTPServer):
    fake: FakePowerBI


def _type_ok(power_bi_type: str, value: Any) -> bool:
    if value is None:
        return True
    if power_bi_type == "String":
        return isinstance(value, str)
    if power_bi_type == "Boolean":
        return isinstance(value, bool)
    if power_bi_type == "Int64":
        return isinstance(value, int) and not isinstance(value, bool)
    if power_bi_type == "Double":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if power_bi_type == "DateTime":
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return False
        return True
    return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean; the fake records every POST in `FakePowerBI.posts` instead."""

    def do_POST(self) -> None:
        fake = cast(_Server, self.server).fake
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._reply(411, "LengthRequired", "Content-Length is required")
            return
        body = self.rfile.read(int(length))
        parts = urlsplit(self.path)
        fault = fake.next_fault()
        if fault is None or fault.kind == "pass":
            status, code, message, rows = fake.judge(parts.path, parse_qs(parts.query), self.headers, body)
            fake.record(Post(parts.path, status, len(rows)), rows)
            retry_after = fake.retry_after_s(code) if status == 429 else None
            self._reply(status, code, message, retry_after)
            return
        fake.record(Post(parts.path, fault.status if fault.kind == "status" else 0, 0), [])
        if fault.kind == "status":
            self._reply(fault.status, "ScriptedFault", "scripted failure", fault.retry_after)
        elif fault.kind == "hang":
            fake.stopping.wait(fault.seconds)
            self.close_connection = True
        else:
            # Linger 0 turns close() into an RST: the client sees a reset, not a clean end.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

    def _reply(self, status: int, code: str, message: str, retry_after: str | None = None) -> None:
        payload = b"" if status == 200 else json.dumps({"error": {"code": code, "message": message}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(payload)


class FakePowerBI:
    """Threaded fake on 127.0.0.1 and an ephemeral port; use as a context manager."""

    def __init__(
        self,
        *,
        key: str = DEFAULT_KEY,
        schema: Mapping[str, str] | None = None,
        max_posts_per_minute: int = MAX_POSTS_PER_MINUTE,
        max_rows_per_hour: int = MAX_ROWS_PER_HOUR,
        retention: Literal["basicFIFO", "None"] = "basicFIFO",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.schema = schema
        self.max_posts_per_minute = max_posts_per_minute
        self.max_rows_per_hour = max_rows_per_hour
        self.retention = retention
        self.clock = clock
        self.table_rows = 0
        """Rows the table holds now: every accepted row, trimmed to FIFO_KEEPS under basicFIFO."""
        self._hour_rows: deque[tuple[float, int]] = deque()
        self._hour_posts: deque[float] = deque()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._window: deque[float] = deque()
        self._rows: list[dict[str, Any]] = []
        self._posts: list[Post] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- test-facing API -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake is not running; use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """A streaming-dataset push URL, key included, as the Power BI UI hands one out."""
        return f"http://127.0.0.1:{self.port}/beta/tenant-0/datasets/ds-0/rows?key={self.key}"

    @property
    def rest_url(self) -> str:
        """A REST PostRows URL for a push dataset's table."""
        return f"http://127.0.0.1:{self.port}/v1.0/myorg/datasets/ds-0/tables/Transactions/rows"

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Rows accepted so far, in arrival order."""
        with self._lock:
            return list(self._rows)

    @property
    def posts(self) -> list[Post]:
        """Every POST answered so far, scripted faults included."""
        with self._lock:
            return list(self._posts)

    def script(self, *faults: Fault) -> None:
        """Queue faults for the next POSTs, in order; later POSTs behave normally again."""
        with self._lock:
            self._faults.extend(faults)

    def __enter__(self) -> FakePowerBI:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        server.daemon_threads = False  # so server_close() joins handlers: nothing outlives the test
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-powerbi", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- handler-facing internals ----------------------------------------------------------------

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def record(self, post: Post, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._posts.append(post)
            self._rows.extend(rows)
            if rows:
                now = self.clock()
                self._hour_rows.append((now, len(rows)))
                self._hour_posts.append(now)
                self.table_rows += len(rows)
                if self.retention == "basicFIFO" and self.table_rows > FIFO_KEEPS:
                    self.table_rows = FIFO_KEEPS

    def retry_after_s(self, code: str = "TooManyRequests") -> str:
        """Whole seconds until the quota behind `code` admits a POST again."""
        with self._lock:
            now = self.clock()
            if code == "RowsPerHourExceeded":
                oldest = self._hour_rows[0][0] if self._hour_rows else now
                return str(max(1, math.ceil(oldest + 3600.0 - now)))
            if code == "PostsPerHourExceeded":
                oldest = self._hour_posts[-SLOW_POSTS_PER_HOUR] if self._hour_posts else now
                return str(max(1, math.ceil(oldest + 3600.0 - now)))
            oldest = self._window[0] if self._window else now
        return str(max(1, math.ceil(oldest + 60.0 - now)))

    def judge(
        self, path: str, query: Mapping[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, str, str, list[dict[str, Any]]]:
        """Apply the contract to one POST: (status, error code, message, rows to accept)."""
        if not path.endswith("/rows"):
            return 404, "NotFound", "no such endpoint", []
        rest = "/tables/" in path
        if not rest and query.get("key") != [self.key]:
            return 403, "Forbidden", "invalid key", []
        if not self._admit():
            return 429, "TooManyRequests", "more than the allowed POSTs per minute", []
        if len(body) > MAX_BODY_BYTES:
            return 413, "RequestEntityTooLarge", "request body too large", []
        if not str(headers.get("Content-Type", "")).startswith("application/json"):
            return 400, "InvalidRequest", "Content-Type must be application/json", []
        try:
            parsed = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return 400, "InvalidRequest", "body is not JSON", []
        if rest:
            if not isinstance(parsed, dict) or set(parsed) != {"rows"}:
                return 400, "InvalidRequest", 'body must be {"rows": [...]}', []
            parsed = parsed["rows"]
        if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
            return 400, "InvalidRequest", "rows must be an array of objects", []
        if len(parsed) > MAX_ROWS:
            return 400, "InvalidRequest", "more than 10,000 rows in one request", []
        for row in parsed:
            problem = self._row_problem(row)
            if problem:
                return 400, "InvalidRequest", problem, []
        throttled = self._hourly_quota(len(parsed))
        if throttled:
            return 429, throttled, "an hourly quota of the semantic model is used up", []
        return 200, "", "", parsed

    def _hourly_quota(self, rows: int) -> str:
        """The error code of the hourly quota this POST would break, or ''."""
        with self._lock:
            now = self.clock()
            while self._hour_rows and self._hour_rows[0][0] <= now - 3600.0:
                self._hour_rows.popleft()
            while self._hour_posts and self._hour_posts[0] <= now - 3600.0:
                self._hour_posts.popleft()
            if sum(n for _, n in self._hour_rows) + rows > self.max_rows_per_hour:
                return "RowsPerHourExceeded"
            slow = self.retention == "None" and self.table_rows >= SLOW_TABLE_ROWS
            if slow and len(self._hour_posts) >= SLOW_POSTS_PER_HOUR:
                return "PostsPerHourExceeded"
            return ""

    def _admit(self) -> bool:
        with self._lock:
            now = self.clock()
            while self._window and self._window[0] <= now - 60.0:
                self._window.popleft()
            if len(self._window) >= self.max_posts_per_minute:
                return False
            self._window.append(now)
            return True

    def _row_problem(self, row: dict[str, Any]) -> str:
        for name, value in row.items():
            if value is not None and not isinstance(value, str | int | float | bool):
                return f"column {name!r} is not a scalar"
            if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
                return f"column {name!r} is longer than 4,000 characters"
            if self.schema is not None:
                if name not in self.schema:
                    return f"unknown column {name!r}"
                if not _type_ok(self.schema[name], value):
                    return f"column {name!r} is not a {self.schema[name]}"
        return ""
