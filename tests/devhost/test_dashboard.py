"""The dashboard's HTTP server: the snapshot and the page on loopback, nothing else."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from devhost.dashboard import DashboardServer
from devhost.dashboard_state import DashboardState
from tests.devhost.test_dashboard_state import make_row

pytestmark = pytest.mark.unit


@pytest.fixture
def server() -> Iterator[DashboardServer]:
    state = DashboardState(model_version="v-http")
    state.record_published([make_row(0.9, is_fraud=1), make_row(0.2, is_fraud=0)])
    state.record_rejected(1, {"invalid_json": 1})
    with DashboardServer(state) as running:
        yield running


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, dict(response.headers), response.read()


def raw_get(server: DashboardServer, path: str) -> int:
    """Send `path` byte for byte (urllib may tidy it up first) and return the status."""
    host, port = server.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_stats_endpoint_serves_the_snapshot_uncached(server: DashboardServer) -> None:
    """/api/stats is the snapshot as JSON with Cache-Control: no-store."""
    status, headers, body = fetch(server.url + "api/stats?ts=1")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    stats = json.loads(body)
    assert stats["totals"]["scored"] == 2
    assert stats["model_version"] == "v-test"
    assert stats["rejected_by_reason"] == {"invalid_json": 1}
    assert stats["latest_flagged"][0]["probability"] == pytest.approx(0.9)


def test_page_and_static_files_are_served(server: DashboardServer) -> None:
    """/ is index.html, and it links only files the server actually serves, with the right types."""
    status, headers, page = fetch(server.url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    html = page.decode()
    assert 'data-testid="scored-count"' in html
    assert "http://" not in html
    assert "https://" not in html
    for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        assert f"/static/{name}" in html
        status, headers, body = fetch(server.url + "static/" + name)
        assert status == 200
        assert headers["Content-Type"].startswith(kind)
        assert body


@pytest.mark.parametrize(
    "path",
    [
        "/static/../dashboard.py",
        "/static/%2e%2e/dashboard.py",
        "/static/..%2fdashboard.py",
        "/static/..%5cdashboard.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/",
        "/static/missing.js",
        "/static/index.html/..",
        "/dashboard.py",
        "/api/other",
    ],
)
def test_anything_else_is_404(server: DashboardServer, path: str) -> None:
    """Nothing outside devhost/static is reachable, however the path is spelled."""
    assert raw_get(server, path) == 404


def test_urllib_traversal_attempt_is_404(server: DashboardServer) -> None:
    """The same traversal through urllib, as a browser-like client would send it."""
    with pytest.raises(urllib.error.HTTPError) as caught:
        fetch(server.url + "static/../dashboard.py")
    assert caught.value.code == 404
    caught.value.close()


def test_requests_leave_stderr_quiet(server: DashboardServer, capfd: pytest.CaptureFixture[str]) -> None:
    """No per-request log lines: the page polls twice a second."""
    for _ in range(3):
        fetch(server.url + "api/stats")
    raw_get(server, "/nope")
    assert capfd.readouterr().err == ""


def test_binds_loopback_only_and_releases_the_port() -> None:
    """A non-loopback host is refused; after stop() the url is gone and stop() is idempotent."""
    for host in ("0.0.0.0", "192.168.1.10", "example.org", ""):
        with pytest.raises(ValueError, match="loopback"):
            DashboardServer(DashboardState(), host=host)
    server = DashboardServer(DashboardState(), host="localhost").start()
    assert server.url.startswith("http://127.0.0.1:")
    assert fetch(server.url + "api/stats")[0] == 200
    server.stop()
    server.stop()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


def test_a_post_sent_here_by_mistake_says_where_the_functions_are(server: DashboardServer) -> None:
    """POST /api/score to the dashboard is a 405 pointing at the functions port, not http.server's HTML 501."""
    host, port = server.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("POST", "/api/score", body=b'{"data": []}', headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        body = response.read().decode()
    finally:
        connection.close()
    assert response.status == 405
    assert response.getheader("Allow") == "GET, HEAD"
    assert "7071" in body
    assert response.getheader("Content-Type", "").startswith("text/plain")


def test_the_page_says_when_it_is_no_longer_live(server: DashboardServer) -> None:
    """The heading's live note and the latency window are on the page, and the script rewrites the note on finish."""
    _, _, page = fetch(server.url)
    _, _, script = fetch(server.url + "static/dashboard.js")
    assert b'data-testid="live-note"' in page
    assert b'data-testid="latency-window"' in page
    assert b'finished: "\xc2\xb7 run over, not live"' in script
    assert b"lat.window" in script
