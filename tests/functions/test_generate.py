"""GenerateTransactions / GenerateTransactionsOnTimer called through their real entry points."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from unittest.mock import ANY

import azure.functions as func
import pytest

from devhost.bindings import Out
from shared import contract as c

pytestmark = pytest.mark.unit

Lookup = Callable[[str], Callable[..., Any]]


def _request(method: str = "POST", params: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(method=method, url="/api/transactions", params=params or {}, body=b"")


def test_post_sends_count_events(user_function: Lookup) -> None:
    """POST ?count=25 sets 25 contract-valid JSON events on the Event Hubs output and says so."""
    out: Out[list[str]] = Out()
    response = user_function("GenerateTransactions")(_request(params={"count": "25"}), out, Out())
    assert response.status_code == 200
    assert json.loads(response.get_body())["sent"] == 25
    bodies = out.get()
    assert len(bodies) == 25
    for body in bodies:
        c.validate(json.loads(body))
    assert len({json.loads(b)["id"] for b in bodies}) == 25


def test_missing_count_uses_default(user_function: Lookup) -> None:
    """No count means a modest default batch, not an error."""
    out: Out[list[str]] = Out()
    response = user_function("GenerateTransactions")(_request(), out, Out())
    assert response.status_code == 200
    assert len(out.get()) == json.loads(response.get_body())["sent"] == 100


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "1.5", "1001", "99999999999999999999"])
def test_bad_count_is_400_with_code(user_function: Lookup, raw: str) -> None:
    """A bad count is a 400 with a stable code, a helpful message, no traceback, and nothing sent."""
    out: Out[list[str]] = Out()
    response = user_function("GenerateTransactions")(_request(params={"count": raw}), out, Out())
    assert response.status_code == 400
    error = json.loads(response.get_body())["error"]
    assert error["code"] == "invalid_count"
    assert "1000" in error["message"]
    assert "Traceback" not in response.get_body().decode()
    assert not out.was_set


def test_limit_comes_from_setting(user_function: Lookup, monkeypatch: pytest.MonkeyPatch) -> None:
    """GENERATE_MAX_COUNT bounds count."""
    monkeypatch.setenv("GENERATE_MAX_COUNT", "10")
    fn = user_function("GenerateTransactions")
    assert fn(_request(params={"count": "11"}), Out(), Out()).status_code == 400
    assert fn(_request(params={"count": "10"}), Out(), Out()).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_has_stable_code(user_function: Lookup, method: str) -> None:
    """Only POST generates; other methods get 405 with an error code and an Allow header."""
    out: Out[list[str]] = Out()
    response = user_function("GenerateTransactions")(_request(method=method), out, Out())
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert json.loads(response.get_body())["error"]["code"] == "method_not_allowed"
    assert not out.was_set


def test_seeded_generation_is_reproducible(user_function: Lookup, monkeypatch: pytest.MonkeyPatch) -> None:
    """With GENERATOR_SEED, a fresh process generates the same ids (a replayed run is idempotent)."""
    import functions.generate as generate

    monkeypatch.setenv("GENERATOR_SEED", "5")
    ids = []
    for _ in range(2):
        generate._generator.cache_clear()
        out: Out[list[str]] = Out()
        user_function("GenerateTransactions")(_request(params={"count": "5"}), out, Out())
        ids.append([json.loads(b)["id"] for b in out.get()])
    generate._generator.cache_clear()
    assert ids[0] == ids[1]


def test_history_mode_stores_labelled_documents(user_function: Lookup) -> None:
    """mode=history writes labelled, contract-valid documents to the history output and sends nothing."""
    out: Out[list[str]] = Out()
    history: Out[func.DocumentList] = Out()
    response = user_function("GenerateTransactions")(_request(params={"count": "30", "mode": "history"}), out, history)
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"sent": 30, "labelled_fraud": ANY, "mode": "history"}
    docs = [d.data for d in history.get()]
    assert len(docs) == 30
    assert all(c.validate(d).is_fraud is not None for d in docs)
    assert not out.was_set


def test_unknown_mode_is_400(user_function: Lookup) -> None:
    """Only live and history modes exist."""
    out: Out[list[str]] = Out()
    response = user_function("GenerateTransactions")(_request(params={"mode": "archive"}), out, Out())
    assert response.status_code == 400
    assert json.loads(response.get_body())["error"]["code"] == "invalid_mode"
    assert not out.was_set


def _timer() -> func.TimerRequest:
    from azure.functions.timer import TimerRequest

    return TimerRequest(past_due=False)


def test_timer_is_off_by_default(user_function: Lookup) -> None:
    """Without GENERATOR_TIMER_COUNT the timer sends nothing."""
    out: Out[list[str]] = Out()
    user_function("GenerateTransactionsOnTimer")(_timer(), out)
    assert not out.was_set


def test_timer_sends_configured_count(user_function: Lookup, monkeypatch: pytest.MonkeyPatch) -> None:
    """GENERATOR_TIMER_COUNT events per tick when configured."""
    monkeypatch.setenv("GENERATOR_TIMER_COUNT", "7")
    out: Out[list[str]] = Out()
    user_function("GenerateTransactionsOnTimer")(_timer(), out)
    assert len(out.get()) == 7
