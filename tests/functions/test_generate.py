"""GenerateTransactions / GenerateTransactionsOnTimer through the worker engine, with host-shaped requests."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import ANY

import pytest

from devhost.worker import Worker
from shared.contract import schema as c
from shared.generation import sender as event_sender
from tests.fakes.event_hubs import FakeEventHub
from tests.invoke import HttpReply, http, timer

pytestmark = pytest.mark.unit


def _post(worker: Worker, method: str = "POST", params: dict[str, str] | None = None) -> HttpReply:
    return http(worker, "GenerateTransactions", method, "/api/transactions", params=params)


def _out() -> list[str] | None:
    """What reached the event hub (the conftest's fake, sent to by the SDK sender); None when nothing was sent."""
    from tests.fakes.event_hubs import FakeEventHub

    hub = event_sender.get_sender()
    assert isinstance(hub, FakeEventHub)
    return [b.decode() for b in hub.sent()] or None


def test_post_sends_count_events(functions_worker: Worker) -> None:
    """POST ?count=25 sets 25 contract-valid JSON events on the Event Hubs output and says so."""
    response = _post(functions_worker, params={"count": "25"})
    out: Any = _out()
    assert response.status_code == 200
    assert json.loads(response.body)["sent"] == 25
    bodies = out
    assert len(bodies) == 25
    for body in bodies:
        c.validate(json.loads(body))
    assert len({json.loads(b)["id"] for b in bodies}) == 25


def test_missing_count_uses_default(functions_worker: Worker) -> None:
    """No count means a modest default batch, not an error."""
    response = _post(functions_worker)
    out: Any = _out()
    assert response.status_code == 200
    assert len(out) == json.loads(response.body)["sent"] == 100


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "1.5", "1001", "99999999999999999999"])
def test_bad_count_is_400_with_code(functions_worker: Worker, raw: str) -> None:
    """A bad count is a 400 with a stable code, a helpful message, no traceback, and nothing sent."""
    response = _post(functions_worker, params={"count": raw})
    out: Any = _out()
    assert response.status_code == 400
    error = json.loads(response.body)["error"]
    assert error["code"] == "invalid_count"
    assert "1000" in error["message"]
    assert "Traceback" not in response.body.decode()
    assert out is None


def test_limit_comes_from_setting(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """GENERATE_MAX_COUNT bounds count."""
    monkeypatch.setenv("GENERATE_MAX_COUNT", "10")
    assert _post(functions_worker, params={"count": "11"}).status_code == 400
    assert _post(functions_worker, params={"count": "10"}).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_has_stable_code(functions_worker: Worker, method: str) -> None:
    """Only POST generates; other methods get 405 with an error code and an Allow header."""
    response = _post(functions_worker, method=method)
    out: Any = _out()
    assert response.status_code == 405
    assert response.header("Allow") == "POST"
    assert json.loads(response.body)["error"]["code"] == "method_not_allowed"
    assert out is None


def test_seeded_generation_is_reproducible(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """With GENERATOR_SEED, a fresh process generates the same ids (a replayed run is idempotent)."""
    import functions.generate as generate

    monkeypatch.setenv("GENERATOR_SEED", "5")
    ids = []
    for _ in range(2):
        generate._generator.cache_clear()
        before = len(_out() or [])
        _post(functions_worker, params={"count": "5"})
        ids.append([json.loads(b)["id"] for b in (_out() or [])[before:]])
    generate._generator.cache_clear()
    assert ids[0] == ids[1]


def test_history_mode_stores_labelled_documents(functions_worker: Worker) -> None:
    """mode=history writes labelled, contract-valid documents to the history output and sends nothing."""
    response = _post(functions_worker, params={"count": "30", "mode": "history"})
    assert response.status_code == 200
    assert json.loads(response.body) == {
        "sent": 30,
        "transactions": 30,
        "events": 0,
        "labelled_fraud": ANY,
        "mode": "history",
    }
    docs = response.invocation.documents("history")
    out: Any = _out()
    assert len(docs) == 30
    assert all(c.validate(d).is_fraud is not None for d in docs)
    assert out is None


def test_unknown_mode_is_400(functions_worker: Worker) -> None:
    """Only live and history modes exist."""
    response = _post(functions_worker, params={"mode": "archive"})
    out: Any = _out()
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["code"] == "invalid_mode"
    assert out is None


def test_timer_is_off_by_default(functions_worker: Worker) -> None:
    """Without GENERATOR_TIMER_COUNT the timer sends nothing."""
    assert timer(functions_worker).outputs == {}


def test_timer_sends_configured_count(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """GENERATOR_TIMER_COUNT events per tick when configured."""
    monkeypatch.setenv("GENERATOR_TIMER_COUNT", "7")
    timer(functions_worker)
    bodies = _out() or []
    assert len(bodies) == 7
    for body in bodies:
        c.validate(json.loads(body))


def test_concurrent_calls_share_one_stream(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls arriving at once (the worker's thread pool) draw whole, disjoint pieces of the one seeded stream."""
    import threading

    import functions.generate as generate
    from shared.generation.generator import TransactionGenerator

    monkeypatch.setenv("GENERATOR_SEED", "11")
    generate._generator.cache_clear()

    def call() -> None:
        assert _post(functions_worker, params={"count": "200"}).status_code == 200

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [json.loads(b)["id"] for b in _out() or []]
    generate._generator.cache_clear()
    expected = [r["id"] for r in TransactionGenerator(seed=11).generate(1200)]
    assert sorted(ids) == sorted(expected)


def test_an_account_always_goes_to_one_partition(functions_worker: Worker, event_hub: FakeEventHub) -> None:
    """The SDK sender puts each account's transactions on the partition partition key = account_id gives."""
    from shared.contract.partitions import partition_for_key

    for _ in range(3):
        assert _post(functions_worker, params={"count": "300"}).status_code == 200
    seen: dict[str, set[str]] = {}
    for partition, bodies in event_hub.partitions.items():
        for body in bodies:
            account = json.loads(body)["account_id"]
            seen.setdefault(account, set()).add(partition)
            assert partition == partition_for_key(account, event_hub.partition_ids())
    assert len(seen) > 50
    assert all(len(partitions) == 1 for partitions in seen.values())


def test_event_hubs_down_is_503_with_a_code(functions_worker: Worker, event_hub: FakeEventHub) -> None:
    """The hub unreachable: a 503 with a stable code, never a false count."""
    event_hub.fail = True
    response = _post(functions_worker, params={"count": "10"})
    assert response.status_code == 503
    assert json.loads(response.body)["error"]["code"] == "event_hubs_unavailable"


def test_binding_mode_uses_the_output_binding(functions_worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """GENERATOR_SENDER=binding: the events go on the Event Hubs output, nothing through the SDK."""
    from shared.settings import get_settings

    monkeypatch.setenv("GENERATOR_SENDER", "binding")
    get_settings.cache_clear()
    response = _post(functions_worker, params={"count": "12"})
    out: Any = response.invocation.outputs.get("out")
    assert len(out) == 12
    assert _out() is None
