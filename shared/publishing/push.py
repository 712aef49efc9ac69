"""Push rows to a Power BI push URL within Power BI's documented limits: chunked, paced, retried.

Limits this module keeps, from the Power BI docs:

- Push semantic models: at most 10,000 rows per POST rows request and 120 POST rows requests per
  minute per semantic model; 4,000 characters per string value.
  https://learn.microsoft.com/en-us/power-bi/developer/embedded/push-datasets-limitations
- Requests: 16 MB per request for push models, 15 KB per request and 5 requests/s for streaming-only
  models. The app needs a model created in the Power BI website with "Historic data analysis" on (a
  push and streaming model, the 16 MB kind); a streaming-only model cannot carry reports at all, so the
  15 KB limit is not supported here. Such a model's push URL (`.../datasets/{id}/rows?key=...`) takes a
  JSON *array* of rows ("wrap your JSON objects in an array"); the REST PostRows endpoint
  (`.../datasets/{id}/tables/{table}/rows`) takes `{"rows": [...]}` and an Entra token, which this
  client never sends.
  https://learn.microsoft.com/en-us/power-bi/connect-data/service-real-time-streaming
  https://learn.microsoft.com/en-us/rest/api/power-bi/push-datasets/datasets-post-rows
- Throttling: HTTP 429 with a Retry-After header giving the seconds to wait before the next request.
  https://learn.microsoft.com/en-us/rest/api/fabric/articles/throttling (same wording for Power BI)
  The per-minute limit asks for at most 60 s, and that wait is honoured here. The hourly ones
  (1,000,000 rows an hour; 120 POSTs an hour once a table without FIFO retention holds 250,000 rows)
  ask for up to an hour: waiting that long inside an invocation helps nobody, so a Retry-After over
  `max_retry_after_s` gives the batch back at once with `PowerBIUnavailableError`.

Error policy, chosen for a caller that is a Cosmos DB change-feed trigger with a retry policy
(https://learn.microsoft.com/azure/azure-functions/functions-bindings-error-pages#retries):

- Transient failures (429, 408, 5xx, timeouts, resets) are retried here with bounded attempts; when
  they run out, `PowerBIUnavailableError` is raised so the function's retry policy re-delivers the
  batch. Without that exception the trigger would checkpoint and the rows would be lost ("won't retry
  a batch of changes if there was an unhandled exception" is the trigger's default; see
  https://learn.microsoft.com/azure/cosmos-db/nosql/troubleshoot-changefeed-functions). Delivery is
  therefore at-least-once: chunks that went through before the failure are sent again.
- Definite rejections (400, 413, 401, 403, 404, other 4xx) are *not* raised. Re-delivering the same
  rows gets the same answer, so raising would only burn the retry budget and hold the lease; the batch
  is lost either way. They are logged at ERROR with counts and reported in `PushResult.dropped`.
  401/403/404 mean the URL or key is wrong, so the rest of the batch is dropped without more requests.

The push URL carries its key in the query string, so neither the URL nor anything built from it is
ever logged or put in an exception message; logs name the host at most.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from shared.loopback import is_loopback_host
from shared.publishing.rows import MAX_STRING_CHARS

logger = logging.getLogger(__name__)

MAX_ROWS_PER_POST: Final = 10_000
MAX_POSTS_PER_MINUTE: Final = 120
# 16 MB is the documented push limit; stay under it whatever "MB" means there.
DEFAULT_MAX_BODY_BYTES: Final = 15 * 1024 * 1024
_WINDOW_S: Final = 60.0


class PowerBIUnavailableError(RuntimeError):
    """Power BI kept failing transiently; raised so the trigger's retry policy re-delivers the batch."""

    def __init__(self, message: str, *, rows_sent: int, rows_unsent: int) -> None:
        super().__init__(message)
        self.rows_sent = rows_sent
        self.rows_unsent = rows_unsent


@dataclass(frozen=True)
class PushResult:
    """What one `push` did: rows accepted, requests made, retries, and rows dropped by reason."""

    rows_sent: int = 0
    posts: int = 0
    retries: int = 0
    dropped: Mapping[str, int] = field(default_factory=dict)

    @property
    def rows_dropped(self) -> int:
        """Total rows that will never reach Power BI from this push."""
        return sum(self.dropped.values())


class Opener(Protocol):
    """The slice of `urllib.request.OpenerDirector` the client uses; tests pass a stub."""

    def open(self, fullurl: urllib.request.Request, data: None = None, timeout: float = ...) -> Any: ...


class _TransientError(Exception):
    """One failed attempt worth retrying; `wait_s` is the server's Retry-After when it sent one."""

    def __init__(self, what: str, wait_s: float | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.wait_s = wait_s


class _ExhaustedError(Exception):
    def __init__(self, what: str, attempts: int, wait_s: float | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.attempts = attempts
        self.wait_s = wait_s


@dataclass(frozen=True)
class _Outcome:
    attempts: int
    rejected_status: int | None = None


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header; None for absent, HTTP-date or nonsense (then we back off)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _is_transient(status: int) -> bool:
    return status in (408, 429) or status >= 500


class PowerBIPushClient:
    """Posts rows to one Power BI push URL: chunked, paced, retried. Safe to share between threads.

    `timeout_s` applies to each socket operation (urllib semantics), not to the whole request.
    Pacing is per client, i.e. per process; several instances scaled out can still exceed 120/min
    together, which Power BI answers with 429 and which is then honoured like any other 429.
    """

    def __init__(
        self,
        url: str,
        timeout_s: float,
        *,
        opener: Opener | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        max_attempts: int = 5,
        base_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        max_retry_after_s: float = _WINDOW_S,
        max_rows_per_post: int = MAX_ROWS_PER_POST,
        max_posts_per_minute: int = MAX_POSTS_PER_MINUTE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        wrap_rows: bool | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))):
            # The key travels in the URL: plain http would put it on the wire.
            raise ValueError("Power BI push URL must be https (plain http only to a loopback host)")
        if not 1 <= max_rows_per_post <= MAX_ROWS_PER_POST:
            raise ValueError(f"max_rows_per_post must be within [1, {MAX_ROWS_PER_POST}]")
        if not 1 <= max_posts_per_minute <= MAX_POSTS_PER_MINUTE:
            raise ValueError(f"max_posts_per_minute must be within [1, {MAX_POSTS_PER_MINUTE}]")
        if max_attempts < 1 or timeout_s <= 0 or max_body_bytes < 64:
            raise ValueError("max_attempts, timeout_s and max_body_bytes must be positive")
        self._url = url
        self.host = host
        self._timeout_s = timeout_s
        self._opener: Opener = opener or urllib.request.build_opener()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._max_attempts = max_attempts
        self._base_backoff_s = base_backoff_s
        self._max_backoff_s = max_backoff_s
        self._max_retry_after_s = max_retry_after_s
        self._max_rows = max_rows_per_post
        self._max_posts = max_posts_per_minute
        self._max_body = max_body_bytes
        # REST PostRows lives under /tables/{name}/rows; streaming push URLs end in /rows too.
        self._wrap = ("/tables/" in parts.path) if wrap_rows is None else wrap_rows
        self._lock = threading.Lock()
        self._post_times: deque[float] = deque()

    def push(self, rows: Sequence[Mapping[str, Any]]) -> PushResult:
        """Send `rows`; raise `PowerBIUnavailableError` only when transient failures outlast retries."""
        dropped: Counter[str] = Counter()
        rejected: Counter[int] = Counter()
        sent = posts = retries = 0
        chunks = list(self._chunks(rows, dropped))
        try:
            for index, (body, n_rows) in enumerate(chunks):
                try:
                    outcome = self._post(body)
                except _ExhaustedError as exc:
                    if exc.wait_s is not None:
                        message = (
                            f"power bi at {self.host} answered {exc.what} with Retry-After {exc.wait_s:.0f} s "
                            f"(an hourly quota; more than {self._max_retry_after_s:.0f} s): giving the batch back"
                        )
                    else:
                        message = f"power bi at {self.host} still failing after {exc.attempts} attempts: {exc.what}"
                    raise PowerBIUnavailableError(
                        message, rows_sent=sent, rows_unsent=sum(n for _, n in chunks[index:])
                    ) from None
                posts += outcome.attempts
                retries += outcome.attempts - 1
                status = outcome.rejected_status
                if status is None:
                    sent += n_rows
                    continue
                # A wrong key, URL or deleted dataset fails every chunk alike: stop asking.
                stop = status in (401, 403, 404)
                n = sum(m for _, m in chunks[index:]) if stop else n_rows
                rejected[status] += n
                dropped[f"http_{status}"] += n
                if stop:
                    break
        finally:
            for status, n in sorted(rejected.items()):
                logger.error("power bi rejected %d rows: HTTP %d", n, status)
            for reason in ("unserialisable", "string_too_long", "row_too_large"):
                if dropped[reason]:
                    logger.warning("dropped %d rows before sending to power bi: %s", dropped[reason], reason)
        return PushResult(rows_sent=sent, posts=posts, retries=retries, dropped=dict(dropped))

    def _chunks(self, rows: Sequence[Mapping[str, Any]], dropped: Counter[str]) -> Iterator[tuple[bytes, int]]:
        """Serialise each row once and pack them into bodies within the row and byte limits.

        A row that cannot be sent (NaN, a non-JSON value, an over-long string, bigger than a whole
        body) is set aside with its reason so it cannot make Power BI reject the rows around it.
        """
        head, tail = (b'{"rows":[', b"]}") if self._wrap else (b"[", b"]")
        room = self._max_body - len(head) - len(tail)
        parts: list[bytes] = []
        size = 0
        for row in rows:
            try:
                part = json.dumps(row, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
            except (TypeError, ValueError):
                dropped["unserialisable"] += 1
                continue
            if any(isinstance(v, str) and len(v) > MAX_STRING_CHARS for v in row.values()):
                dropped["string_too_long"] += 1
                continue
            if len(part) > room:
                dropped["row_too_large"] += 1
                continue
            if parts and (len(parts) == self._max_rows or size + 1 + len(part) > room):
                yield head + b",".join(parts) + tail, len(parts)
                parts, size = [], 0
            size += len(part) + (1 if parts else 0)
            parts.append(part)
        if parts:
            yield head + b",".join(parts) + tail, len(parts)

    def _post(self, body: bytes) -> _Outcome:
        """POST one body until it is accepted or definitely rejected; raise `_ExhaustedError` otherwise."""
        for attempt in range(1, self._max_attempts + 1):
            self._take_slot()
            try:
                status = self._send(body)
            except _TransientError as exc:
                if exc.wait_s is not None and exc.wait_s > self._max_retry_after_s:
                    raise _ExhaustedError(exc.what, attempt, exc.wait_s) from None
                if attempt == self._max_attempts:
                    raise _ExhaustedError(exc.what, attempt) from None
                delay = self._delay_s(attempt, exc.wait_s)
                logger.warning(
                    "power bi %s: %s; retry %d/%d in %.2f s",
                    self.host,
                    exc.what,
                    attempt,
                    self._max_attempts - 1,
                    delay,
                )
                self._sleep(delay)
            else:
                return _Outcome(attempts=attempt, rejected_status=status)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _send(self, body: bytes) -> int | None:
        """One POST: None when accepted, the status when definitely rejected; `_TransientError` otherwise."""
        request = urllib.request.Request(
            self._url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=self._timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            exc.close()
            if _is_transient(exc.code):
                raise _TransientError(f"HTTP {exc.code}", _retry_after_s(retry_after)) from None
            return exc.code
        except urllib.error.URLError as exc:
            # Connect-time failures (refused, reset, DNS, timeout) arrive wrapped; name the cause only.
            raise _TransientError(type(exc.reason).__name__) from None
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            raise _TransientError(type(exc).__name__) from None
        return None

    def _delay_s(self, attempt: int, retry_after_s: float | None) -> float:
        """Retry-After when the server gave one (at most `max_retry_after_s`, see `_post`), else
        full-jitter exponential backoff capped at `max_backoff_s`."""
        if retry_after_s is not None:
            return retry_after_s
        ceiling = min(self._max_backoff_s, self._base_backoff_s * 2 ** (attempt - 1))
        return self._rng.uniform(0.0, ceiling)

    def _take_slot(self) -> None:
        """Wait until this POST keeps us within `max_posts_per_minute` over a sliding minute."""
        while True:
            with self._lock:
                now = self._clock()
                while self._post_times and self._post_times[0] <= now - _WINDOW_S:
                    self._post_times.popleft()
                if len(self._post_times) < self._max_posts:
                    self._post_times.append(now)
                    return
                wait = self._post_times[0] + _WINDOW_S - now
            logger.debug("pacing power bi posts: waiting %.2f s", wait)
            self._sleep(wait)
