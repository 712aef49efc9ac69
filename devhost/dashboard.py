"""The local live dashboard's HTTP server: `/api/stats` (one `DashboardState.snapshot()`) and the page, on loopback.

The page in `devhost/static` polls `/api/stats`; nothing else is served, and only on a loopback
address, since there is no authentication. Other methods get a 405 that points to the port the
app's HTTP functions answer on (a `POST /api/score` sent here by mistake says where to go).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from devhost.dashboard_state import DashboardState
from shared.loopback import is_loopback_host

logger = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
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


class _Handler(BaseHTTPRequestHandler):
    """GET `/`, `/static/<file>` and `/api/stats`; nothing else."""

    server: _Server
    server_version = "fraud-dashboard"
    sys_version = ""

    def do_GET(self) -> None:
        self._respond(head_only=False)

    def do_HEAD(self) -> None:
        self._respond(head_only=True)

    def _not_allowed(self) -> None:
        body = (
            b"405: the dashboard only serves GET. The app's HTTP functions (POST /api/transactions, "
            b"POST /api/score) answer on the functions port make demo printed, 7071 by default.\n"
        )
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Type", _TEXT)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_PATCH = do_DELETE = _not_allowed  # noqa: N815 - http.server dispatches on these names

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
