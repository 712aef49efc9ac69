"""The app's HTTP functions on a local port: routed, key-checked and answered as the Functions host does.

Which functions are served, under which route and methods and with which auth level, is read from
the worker engine's function metadata (each function's `httpTrigger` binding), so an HTTP function
the app registers is served without a change here. Every call runs through the worker engine with
the host's `RpcHttp` message. What the host does around the invocation (docs/local.md cites the
host source and docs for each):

- a function's route is `<routePrefix>/<route>`: host.json `extensions.http.routePrefix`, `api`
  when unset; a binding without `route` is served under the function's name;
- no route matches: 404, empty body. A route matches but its binding's `methods` leave the method
  out: 404 as well (the host has no 405 of its own, azure-functions-host#10098), which is why this
  app's functions list no methods and answer 405 with their own error code;
- authLevel `function` or `admin` needs a key: the `x-functions-key` header, else the `code` query
  parameter (the header wins when both are sent), else 401 with an empty body; `anonymous` needs
  none. One local key, printed when the host starts, stands for every key (function, host, master);
- the function raised, or an output could not be written: 500, empty body; no HTTP output: 204;
- the admin API: `GET /admin/host/status`, and `POST /admin/functions/<name>` with `{"input": ...}`,
  which runs a timer-triggered function now (202), both with the key.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, Self
from urllib.parse import parse_qsl, urlsplit

import orjson

from devhost.host_messages import http_input, timer_input
from devhost.routes import RouteTemplate, join
from devhost.worker import HOST_VERSION, ROOT, Invocation, Worker, WorkerError
from shared.loopback import is_loopback_host

logger = logging.getLogger(__name__)

KEY_HEADER: Final = "x-functions-key"
KEY_QUERY: Final = "code"
MAX_BODY_BYTES: Final = 104_857_600
"""The host's limit on a request body (100 MB); larger is 413."""
MAX_URL_CHARS: Final = 4096
"""The host's limit on a URL (4 KB); longer is 414."""
_POLL_S: Final = 0.1
_JSON: Final = "application/json; charset=utf-8"


def new_key() -> str:
    """A fresh local function key (URL-safe, so it works as `?code=` unescaped)."""
    return secrets.token_urlsafe(32)


def route_prefix(host_json: Path = ROOT / "host.json") -> str:
    """host.json's `extensions.http.routePrefix` (`api` when unset; `""` serves routes at the root)."""
    http = json.loads(host_json.read_text()).get("extensions", {}).get("http", {})
    return str(http.get("routePrefix", "api")).strip("/")


@dataclass(frozen=True)
class HttpFunction:
    """One HTTP-triggered function as the host routes it."""

    name: str
    trigger: str
    """The trigger binding's name: the parameter the request is handed to."""
    route: RouteTemplate
    methods: frozenset[str] | None
    """Upper-case methods the binding allows; None allows every method."""
    auth_level: str
    """`anonymous`, `function` or `admin`."""

    def describe(self) -> str:
        methods = ",".join(sorted(self.methods)) if self.methods else "any method"
        return f"{self.name}: {methods} /{self.route.template} ({self.auth_level})"


def http_functions(worker: Worker, prefix: str) -> list[HttpFunction]:
    """The app's HTTP-triggered functions from the engine's metadata, in the order routing tries them."""
    found = []
    for name in worker.function_ids:
        for binding in worker.bindings(name):
            if str(binding.get("type", "")).lower() != "httptrigger":
                continue
            methods = binding.get("methods") or None
            found.append(
                HttpFunction(
                    name=name,
                    trigger=str(binding["name"]),
                    route=RouteTemplate(join(prefix, str(binding.get("route") or name))),
                    methods=frozenset(str(m).upper() for m in methods) if methods else None,
                    # The binding's default auth level is function.
                    auth_level=str(binding.get("authLevel") or "function").lower(),
                )
            )
    return sorted(found, key=lambda f: f.route.precedence)


class OutputSink(Protocol):
    """Where the local host writes what an invocation set on its other output bindings (Event Hubs, Cosmos DB)."""

    def deliver(self, function: str, invocation: Invocation) -> None: ...


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    """Path and query string, as sent."""
    headers: Mapping[str, str]
    """Lower-cased names; repeated headers joined with commas."""
    body: bytes = b""
    base_url: str = "http://127.0.0.1:7071"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


def _bytes(data: Any) -> bytes:
    """A response body `TypedData` as the bytes the host writes."""
    kind = data.WhichOneof("data")
    if kind is None:
        return b""
    value = getattr(data, kind)
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _http_reply(invocation: Invocation) -> Reply:
    """The function's HTTP output (`$return` or a named `http` output) as the host relays it; 204 without one."""
    response = invocation.response
    candidates = [response.return_value] if response.HasField("return_value") else []
    candidates += [b.data for b in response.output_data]
    for data in candidates:
        if data.WhichOneof("data") == "http":
            http = data.http
            body = _bytes(http.body) if http.HasField("body") else b""
            return Reply(int(http.status_code or 200), dict(http.headers), body)
    return Reply(204)


class FunctionsHost:
    """Turns one HTTP request into the host's answer: admin API, routing, key check, invocation in the engine."""

    def __init__(
        self,
        worker: Worker,
        key: str,
        *,
        prefix: str | None = None,
        sink: OutputSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = route_prefix() if prefix is None else prefix
        self.functions = http_functions(worker, self.prefix)
        self._worker = worker
        self._key = key.encode()
        self._sink = sink
        self._clock = clock
        self._started = clock()

    def handle(self, request: Request) -> Reply:
        parts = urlsplit(request.target)
        query: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        segments = [s.lower() for s in parts.path.strip("/").split("/")]
        if segments[0] == "admin":
            return self._admin(request, segments, query)
        for function in self.functions:
            values = function.route.match(parts.path)
            if values is None or (function.methods is not None and request.method.upper() not in function.methods):
                continue
            if function.auth_level != "anonymous" and not self._authorized(request.headers, query):
                return Reply(401)
            return self._invoke(function, values, request, parts.path, query)
        return Reply(404)

    def _authorized(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        # The header is read first and, when present, is the only key looked at.
        presented = headers[KEY_HEADER] if KEY_HEADER in headers else query.get(KEY_QUERY, "")
        return bool(presented) and hmac.compare_digest(presented.encode(), self._key)

    def _invoke(
        self, function: HttpFunction, values: Mapping[str, str], request: Request, path: str, query: Mapping[str, str]
    ) -> Reply:
        inputs, _ = http_input(
            request.method.upper(),
            path,
            params=query,
            headers=request.headers,
            body=request.body,
            arg_name=function.trigger,
            route=values,
            url=request.base_url + request.target,
        )
        try:
            invocation = self._worker.invoke(function.name, inputs)
        except WorkerError as exc:
            logger.warning("%s failed: %s", function.name, exc)
            return Reply(500)
        try:
            if self._sink is not None:
                self._sink.deliver(function.name, invocation)
        except Exception:  # an output the host could not write fails the invocation
            logger.exception("writing the outputs of %s failed", function.name)
            return Reply(500)
        return _http_reply(invocation)

    def _admin(self, request: Request, segments: list[str], query: Mapping[str, str]) -> Reply:
        method = request.method.upper()
        status = segments == ["admin", "host", "status"] and method == "GET"
        run = len(segments) == 3 and segments[1] == "functions" and method == "POST"
        if not (status or run):
            return Reply(404)
        if not self._authorized(request.headers, query):
            return Reply(401)
        if status:
            uptime_ms = int((self._clock() - self._started) * 1000)
            body = {"id": "local", "state": "Running", "version": HOST_VERSION, "processUptime": uptime_ms}
            return Reply(200, {"Content-Type": _JSON}, orjson.dumps(body))
        return self._run(urlsplit(request.target).path.strip("/").split("/")[2], request.body)

    def _run(self, name: str, body: bytes) -> Reply:
        """`POST /admin/functions/<name>`: run a non-HTTP function now, as the portal's Test/Run does."""
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            return Reply(400)
        function = next((n for n in self._worker.function_ids if n.lower() == name.lower()), None)
        if function is None:
            return Reply(404)
        trigger = next(b for b in self._worker.bindings(function) if str(b.get("type", "")).endswith("Trigger"))
        if trigger["type"] != "timerTrigger":
            message = (
                f"the local host runs {trigger['type']} functions from its own pipeline; "
                "POST /admin/functions/<name> runs timer-triggered ones\n"
            )
            return Reply(501, {"Content-Type": "text/plain; charset=utf-8"}, message.encode())
        try:
            invocation = self._worker.invoke(function, timer_input(arg_name=str(trigger["name"]))[0])
            if self._sink is not None:
                self._sink.deliver(function, invocation)
        except Exception:  # the host answers 202 before the function runs; a failure only shows in the log
            logger.exception("%s, run through the admin API, failed", function)
        return Reply(202)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "local-functions-host"
    sys_version = ""

    def _body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None when it is over the host's limit."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                total += size
                if total > MAX_BODY_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailer headers
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return None if length > MAX_BODY_BYTES else self.rfile.read(length)

    def _serve(self) -> None:
        if len(self.path) > MAX_URL_CHARS:
            self.close_connection = True
            self._send(Reply(414))
            return
        body = self._body()
        if body is None:
            self.close_connection = True
            self._send(Reply(413))
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        base = "http://" + headers.get("host", f"127.0.0.1:{self.server.server_address[1]}")
        started = time.perf_counter()
        reply = self.server.host.handle(Request(self.command, self.path, headers, body, base))
        # The path only: the query string may hold the key.
        logger.info(
            "%s %s -> %d (%.1f ms)",
            self.command,
            urlsplit(self.path).path,
            reply.status,
            (time.perf_counter() - started) * 1000,
        )
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    # http.server dispatches on these names; every method goes through the same routing.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve  # noqa: N815

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        # Requests are logged by `_serve`, without the query string; http.server's line would show it.
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], host: FunctionsHost) -> None:
        self.host = host
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-response is routine; keep it out of the console.
        logger.debug("request from %s failed", client_address, exc_info=True)  # noqa: LOG014


class FunctionsServer:
    """Serves a `FunctionsHost` on a loopback port from a background thread."""

    def __init__(self, host: FunctionsHost, address: str = "127.0.0.1", port: int = 7071) -> None:
        if not is_loopback_host(address):
            raise ValueError("the local functions host binds to a loopback address only")
        self.host = host
        self._address = "127.0.0.1" if address.lower() == "localhost" else address
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, without a trailing slash; only valid once started."""
        if self._server is None:
            raise RuntimeError("the functions host is not running")
        return f"http://{self._address}:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the functions host is not running")
        return int(self._server.server_address[1])

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the functions host is already running")
        self._server = _Server((self._address, self._port), self.host)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL_S}, name="functions-http", daemon=True
        )
        self._thread.start()
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
