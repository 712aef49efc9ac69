"""The app's HTTP functions over real HTTP on loopback: the host's routing, key check and answers, in the engine.

Scores are not asserted anywhere here: a request that reaches ScoreRequest gets its 200 with one
result per record, or its 503 model_unavailable when the bundled model cannot load, and both prove
the routing, the key and the relay.
"""

from __future__ import annotations

import http.client
import json
import re
import shlex
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from devhost.functions_host import FunctionsHost, FunctionsServer, route_prefix
from devhost.outputs import BindingOutputs
from devhost.runner import LocalPipeline, RunOptions
from devhost.store import SQLiteStore
from devhost.stream import EventStream

if TYPE_CHECKING:
    from devhost.worker import Worker
    from tests.fakes.event_hubs import FakeEventHub

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KEY = "local-test-key"
RECORD = {
    "id": 4,
    "amount": 95.55,
    "old_balance": 142590.44,
    "income": 2979.71,
    "credit": 0,
    "marital_status": 1,
    "children": 2,
    "month": 10,
    "day_of_week": "monday",
    "category_recipient": "food_store",
    "transaction_type": "onsite",
    "transaction_method": "other",
    "foreign_transaction": 1,
}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str, method: str, target: str, headers: Mapping[str, str] | None = None, body: bytes | None = None
) -> Answer:
    """One request over a fresh TCP connection, sent as given (no client-side tidying of the target)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        chunked = "chunked" in (headers or {}).get("Transfer-Encoding", "")
        connection.request(method, target, body=body, headers=dict(headers or {}), encode_chunked=chunked)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "store.sqlite")
    yield opened
    opened.close()


@pytest.fixture
def server(functions_worker: Worker, store: SQLiteStore) -> Iterator[FunctionsServer]:
    """The app's HTTP functions on a free loopback port, outputs written to a local stream and store."""
    sink = BindingOutputs(functions_worker, EventStream(4), store)
    with FunctionsServer(FunctionsHost(functions_worker, KEY, sink=sink), port=0) as running:
        yield running


def test_functions_come_from_the_engine_metadata(server: FunctionsServer) -> None:
    """Every HTTP function is served under host.json's route prefix, with the auth level its binding declares."""
    described = {f.name: f.describe() for f in server.host.functions}
    assert described["GenerateTransactions"] == "GenerateTransactions: any method /api/transactions (function)"
    assert described["ScoreRequest"] == "ScoreRequest: any method /api/score (function)"
    # Functions the app adds later are served too; the triggers that are not HTTP never are.
    assert not {"ScoreTransactions", "PublishToPowerBI", "GenerateTransactionsOnTimer"} & described.keys()
    assert all(f.route.template.startswith("api/") for f in server.host.functions)
    assert route_prefix() == "api"


def test_a_function_key_is_required_as_the_host_requires_it(server: FunctionsServer, event_hub: FakeEventHub) -> None:
    """No key, a wrong key or an empty one: 401 with an empty body; the header or ?code= with the key: the function."""
    for headers, target in [
        ({}, "/api/transactions?count=5"),
        ({"x-functions-key": "wrong"}, "/api/transactions?count=5"),
        ({"x-functions-key": ""}, f"/api/transactions?count=5&code={KEY}"),  # the header wins when sent
        ({}, "/api/transactions?count=5&code=wrong"),
    ]:
        answer = call(server.url, "POST", target, headers)
        assert (answer.status, answer.body) == (401, b""), (headers, target)
    assert len(event_hub.sent()) == 0
    by_header = call(server.url, "POST", "/api/transactions?count=5", {"x-functions-key": KEY})
    by_code = call(server.url, "POST", f"/API/Transactions?count=7&code={KEY}")
    assert (by_header.status, by_header.json()["transactions"]) == (200, 5)
    assert (by_code.status, by_code.json()["transactions"]) == (200, 7)
    assert by_header.headers["content-type"] == "application/json"
    assert len(event_hub.sent()) == 12


def test_routing_answers_as_the_host_does(server: FunctionsServer) -> None:
    """Unknown routes are a bare 404, key or not; a wrong method reaches the function, which answers its own 405."""
    for target in ("/api/nothing", "/api", "/", "/transactions", f"/api/score/extra?code={KEY}"):
        answer = call(server.url, "POST", target, {"x-functions-key": KEY})
        assert (answer.status, answer.body) == (404, b""), target
    wrong_method = call(server.url, "GET", "/api/transactions", {"x-functions-key": KEY})
    assert wrong_method.status == 405
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    bad_count = call(server.url, "POST", "/api/transactions?count=0", {"x-functions-key": KEY})
    assert (bad_count.status, bad_count.json()["error"]["code"]) == (400, "invalid_count")


def test_score_request_relays_the_function_answer(server: FunctionsServer) -> None:
    """POST /api/score with the Azure ML shape gets ScoreRequest's own answer: one result per record, or its 503."""
    body = json.dumps({"data": [RECORD, {**RECORD, "id": 5}, {"id": 6, "amount": "not a number"}]}).encode()
    answer = call(server.url, "POST", "/api/score", {"x-functions-key": KEY, "Content-Type": "application/json"}, body)
    if answer.status == 503:
        assert answer.json()["error"]["code"] == "model_unavailable"
    else:
        assert answer.status == 200
        assert [r["id"] for r in answer.json()["results"]] == [4, 5, 6]
        assert "error" in answer.json()["results"][2]
    wrong_type = call(server.url, "POST", "/api/score", {"x-functions-key": KEY, "Content-Type": "text/plain"}, body)
    assert (wrong_type.status, wrong_type.json()["error"]["code"]) == (415, "unsupported_media_type")
    chunked = call(
        server.url,
        "POST",
        "/api/score",
        {"x-functions-key": KEY, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        iter([body[:10], body[10:]]),  # type: ignore[arg-type]  # http.client sends an iterable chunked
    )
    assert chunked.status == answer.status


def test_history_mode_writes_the_cosmos_output_to_the_store(server: FunctionsServer, store: SQLiteStore) -> None:
    """mode=history sets the function's Cosmos DB output; the local host writes it to the history container."""
    answer = call(server.url, "POST", "/api/transactions?count=25&mode=history", {"x-functions-key": KEY})
    assert (answer.status, answer.json()["mode"]) == (200, "history")
    assert store.count("history") == 25


def test_admin_api_status_and_timer_run(server: FunctionsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """/admin needs the key; host status answers; POST /admin/functions/<timer> runs it (202); others are refused."""
    assert call(server.url, "GET", "/admin/host/status").status == 401
    status = call(server.url, "GET", "/admin/host/status", {"x-functions-key": KEY})
    assert (status.status, status.json()["state"]) == (200, "Running")
    monkeypatch.setenv("GENERATOR_TIMER_COUNT", "0")
    run = call(
        server.url, "POST", "/admin/functions/GenerateTransactionsOnTimer", {"x-functions-key": KEY}, b'{"input": ""}'
    )
    assert (run.status, run.body) == (202, b"")
    no_body = call(server.url, "POST", "/admin/functions/GenerateTransactionsOnTimer", {"x-functions-key": KEY})
    assert no_body.status == 400
    missing = call(server.url, "POST", "/admin/functions/Nope", {"x-functions-key": KEY}, b'{"input": ""}')
    assert missing.status == 404
    event_triggered = call(server.url, "POST", "/admin/functions/ScoreTransactions", {"x-functions-key": KEY}, b"{}")
    assert event_triggered.status == 501


def test_transactions_posted_after_a_run_are_scored_and_stored(tmp_path: Path) -> None:
    """While `serve` runs after a run, a POST /api/transactions reaches the stream and each one is stored."""
    store = SQLiteStore(tmp_path / "pipeline.sqlite")
    with LocalPipeline(store, RunOptions(events=200, partitions=2)) as pipeline:
        pipeline.run()
        stop = threading.Event()
        serving = threading.Thread(target=pipeline.serve, args=(stop,))
        serving.start()
        try:
            from devhost.worker import worker

            with FunctionsServer(FunctionsHost(worker(), KEY, sink=pipeline.outputs), port=0) as server:
                answer = call(server.url, "POST", "/api/transactions?count=50", {"x-functions-key": KEY})
                assert (answer.status, answer.json()["transactions"]) == (200, 50)
                deadline = time.monotonic() + 60
                while store.count("scored") + store.count("rejected") < 250 and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            stop.set()
            serving.join(timeout=30)
        assert store.count("scored") + store.count("rejected") == 250
    store.close()


# -- the repository's own examples, sent as written --------------------------------------------------


def _http_blocks(text: str) -> Iterator[tuple[str, str, str, dict[str, str], bytes]]:
    """(title, method, url, headers, body) of each `###` request in a .http file, variables left in."""
    for block in re.split(r"^###", text, flags=re.MULTILINE)[1:]:
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        title = block.splitlines()[0].strip()
        request = next((i for i, line in enumerate(lines) if re.match(r"^[A-Z]+ ", line)), None)
        if request is None:
            continue
        method, url = lines[request].split(" ", 1)
        headers, i = {}, request + 1
        while i < len(lines) and lines[i].strip():
            name, value = lines[i].split(":", 1)
            headers[name.strip()] = value.strip()
            i += 1
        body = "\n".join(lines[i + 1 :]).strip().encode()
        yield title, method, url.strip(), headers, body


def test_every_local_request_in_test_http_answers_as_documented(server: FunctionsServer) -> None:
    """Each request of test.http against `{{local}}`, with the key the file names, answers what its title says."""
    text = (ROOT / "test.http").read_text()
    variables = dict(re.findall(r"^@(\w+)\s*=\s*(.*)$", text, flags=re.MULTILINE))
    assert variables["local"] == "http://localhost:7071", "test.http names the port make demo serves on"
    sent = 0
    for title, method, url, headers, body in _http_blocks(text):
        if "{{local}}" not in url:
            continue  # the Azure requests at the end need a deployed app
        expected = re.search(r"\(answers (\d{3})", title)
        assert expected, f"the title of {title!r} says what it answers"
        headers = {k: v.replace("{{localKey}}", KEY) for k, v in headers.items()}
        answer = call(server.url, method, url.replace("{{local}}", ""), headers, body or None)
        if answer.status == 503 and "503 model_unavailable" in title:
            assert answer.json()["error"]["code"] == "model_unavailable"
        else:
            assert answer.status == int(expected[1]), (title, answer)
        sent += 1
    assert sent >= 10


def _curl_commands(readme: str) -> list[str]:
    """Every curl command in the README's bash blocks aimed at the local port, its lines joined as bash joins them."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL):
        pending = ""
        for line in block.splitlines():
            pending = f"{pending}\n{line}" if pending else line
            if pending.endswith("\\"):
                continue
            try:
                words = shlex.split(pending.replace("\\\n", " "), comments=True)
            except ValueError:  # a quote still open: the command goes on
                continue
            if words[:1] == ["curl"] and any("localhost:7071" in w for w in words):
                commands.append(shlex.join(words))
            pending = ""
    return commands


def _as_request(command: str, env: Mapping[str, str]) -> tuple[str, str, dict[str, str], bytes | None]:
    """A curl command line as (method, target, headers, body), its shell variables expanded from `env`."""
    words = [re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env[m[1] or m[2]], w) for w in shlex.split(command)]
    method, headers, body, url = "GET", {}, None, ""
    i = 1
    while i < len(words):
        word = words[i]
        if word == "-X":
            method, i = words[i + 1], i + 2
        elif word == "-H":
            name, value = words[i + 1].split(":", 1)
            headers[name.strip()] = value.strip()
            i += 2
        elif word in ("-d", "--data"):
            body, i = words[i + 1].encode(), i + 2
            method = "POST" if method == "GET" else method
        else:
            url, i = word, i + 1
    parts = urllib.parse.urlsplit(url)
    return method, parts.path + (f"?{parts.query}" if parts.query else ""), headers, body


def test_the_readme_curl_examples_work_locally_as_written(server: FunctionsServer) -> None:
    """Each README curl aimed at localhost:7071, with $KEY set as the README says, gets the documented answer."""
    commands = _curl_commands((ROOT / "README.md").read_text())
    assert len(commands) >= 2
    for command in commands:
        method, target, headers, body = _as_request(command, {"KEY": KEY})
        answer = call(server.url, method, target, headers, body)
        if answer.status == 503:
            assert answer.json()["error"]["code"] == "model_unavailable", command
        else:
            assert answer.status == 200, (command, answer)


FIXTURE_APP = textwrap.dedent(
    """
    import azure.functions as func

    app = func.FunctionApp()


    @app.function_name("Labels")
    @app.route(route="labels/{id:int}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def labels(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(f"{req.route_params['id']}|{req.params.get('x', '')}", status_code=200)
    """
)
FIXTURE_HOST = """
import sys
from pathlib import Path
from devhost.functions_host import FunctionsHost, FunctionsServer
from devhost.worker import Worker
server = FunctionsServer(FunctionsHost(Worker(Path(sys.argv[1])), "k", prefix="v1"), port=0).start()
print(server.url, flush=True)
sys.stdin.read()
server.stop()
"""


def test_a_new_http_function_is_served_from_its_metadata(tmp_path: Path) -> None:
    """Another app's HTTP function (constraint, methods, anonymous, another prefix) is served with no change here."""
    (tmp_path / "function_app.py").write_text(FIXTURE_APP)
    host = subprocess.Popen(
        [sys.executable, "-c", FIXTURE_HOST, str(tmp_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None
        url = host.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        ok = call(url, "GET", "/v1/labels/42?x=y")
        assert (ok.status, ok.body) == (200, b"42|y")
        assert call(url, "GET", "/v1/labels/abc").status == 404  # the int constraint
        assert call(url, "POST", "/v1/labels/42").status == 404  # a method the binding leaves out: 404, as on Azure
        assert call(url, "GET", "/api/labels/42").status == 404  # the prefix is this app's own
    finally:
        assert host.stdin is not None
        host.stdin.close()
        host.wait(timeout=30)
