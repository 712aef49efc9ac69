"""ScoreTransactions' guarantees, each through the worker engine: nothing lost, nothing overwritten, nothing hidden.

Every test here failed before the change it names (README: Reliability): an exception anywhere
in scoring, a stored state from another version, a reused id, a payment dated 0001-01-01, a batch
past the memory bound, a mistaken envelope. Each now ends as documents the host writes.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

import functions.score as score_module
from devhost.worker import ROOT, Worker
from shared.behaviour import features as behaviour
from shared.behaviour import store as state_store
from shared.generation.generator import TransactionGenerator
from shared.scoring import bundled
from shared.settings import get_settings
from tests.functions.test_state_concurrency import payments
from tests.invoke import score

pytestmark = pytest.mark.unit

Documents = list[dict[str, Any]]


def _records(n: int, seed: int = 11, accounts: int = 30) -> list[dict[str, Any]]:
    return TransactionGenerator(seed=seed, accounts=accounts).generate(n)


def _bodies(records: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(r) for r in records]


def _raw(doc: dict[str, Any]) -> bytes:
    if doc["raw_body"] is not None:
        return str(doc["raw_body"]).encode()
    return base64.b64decode(doc["raw_body_base64"])


def test_an_exception_inside_scoring_rejects_every_event_with_its_raw_body(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever raises in our code (here: score_batch), each event becomes `internal_error` with its whole body.

    Before: the invocation failed, the host checkpointed past it (no retry policy) and the batch was lost.
    """

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(score_module, "score_batch", broken)
    bodies = [*_bodies(_records(5)), b"\xff not json", orjson.dumps({"records": _records(300, seed=2)})]
    with caplog.at_level(logging.ERROR, logger="functions.score"):
        scored, rejected = score(functions_worker, bodies, partition="2", first_sequence_number=40)
    assert scored == []
    assert [d["reason"] for d in rejected] == ["internal_error"] * len(bodies)
    assert [_raw(d) for d in rejected] == bodies
    assert [d["sequence_number"] for d in rejected] == list(range(40, 40 + len(bodies)))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None


def test_score_transactions_retries_indefinitely_with_backoff(functions_worker: Worker) -> None:
    """The host receives an exponential-backoff policy with no retry limit (-1) for ScoreTransactions."""
    options = functions_worker.metadata["ScoreTransactions"].retry_options
    assert options.max_retry_count == -1
    assert options.retry_strategy == 0  # exponential_backoff
    assert options.minimum_interval.ToTimedelta() == timedelta(seconds=2)
    assert options.maximum_interval.ToTimedelta() == timedelta(minutes=5)


def test_a_state_write_failure_fails_the_invocation_for_the_retry(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state that cannot be written fails the invocation (the retry policy runs it again): never half-scored."""
    from devhost.worker import WorkerError

    def down(self: Any, states: Any, snapshot: Any, now: str) -> list[str]:
        raise state_store.StateWriteError("writing account states failed: ServiceRequestError")

    monkeypatch.setattr(state_store.MemoryStateStore, "write", down)
    with pytest.raises(WorkerError, match="StateWriteError"):
        score(functions_worker, _bodies(_records(10)))


@pytest.mark.parametrize(
    "stored",
    [
        {"v": behaviour.STATE_VERSION + 1, "id": [], "t_ms": []},  # a later deploy's format
        {"v": behaviour.STATE_VERSION, "id": ["x"], "t_ms": [1]},  # columns missing
        "not a state",
        {"v": behaviour.STATE_VERSION, "id": ["x", "y"], "t_ms": [1], **{f: [0] for f in behaviour.PAYMENT_FIELDS}},
        {"v": behaviour.STATE_VERSION, "id": [7], "t_ms": [1], **{f: [0] for f in behaviour.PAYMENT_FIELDS}},
        {"v": behaviour.STATE_VERSION, "id": ["x"], "t_ms": [1], **{f: [99] for f in behaviour.PAYMENT_FIELDS}},
        {
            "v": behaviour.STATE_VERSION,
            "id": ["x"] * (behaviour.STATE_HARD_LIMIT + 1),
            "t_ms": [1] * (behaviour.STATE_HARD_LIMIT + 1),
            **{f: [0] * (behaviour.STATE_HARD_LIMIT + 1) for f in behaviour.PAYMENT_FIELDS},
        },
    ],
    ids=["other-version", "missing-columns", "not-a-dict", "unequal-lengths", "wrong-types", "bad-codes", "too-big"],
)
def test_an_unusable_stored_state_counts_as_no_state_and_is_rewritten(functions_worker: Worker, stored: Any) -> None:
    """Before: it raised out of score_batch for every batch that touched the account, forever."""
    records = _records(40, accounts=1)
    account = records[0]["account_id"]
    store = state_store.get_state_store()
    assert isinstance(store, state_store.MemoryStateStore)
    store.put(account, stored)
    before = state_store.unusable_states.total
    scored, rejected = score(functions_worker, _bodies(records))
    assert (len(scored), rejected) == (40, [])
    assert state_store.unusable_states.total == before + 1
    assert scored[0]["behaviour"]["history_count"] == 0  # as no state
    state = store.read([account]).states[account]  # read back usable: the unusable one was rewritten
    assert len(state["id"]) == 40


def test_a_bad_setting_refuses_the_app_at_indexing() -> None:
    """One bad value anywhere refuses the app with the setting's name (events wait in the hub), not every batch."""
    env = {"PATH": "/usr/bin:/bin", "POWERBI_TIMEOUT_SECONDS": "ten", "BEHAVIOUR_STATE": "memory"}
    done = subprocess.run(
        [sys.executable, "-m", "devhost.worker"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "POWERBI_TIMEOUT_SECONDS must be a number, got 'ten'" in done.stderr


def test_a_model_whose_features_do_not_match_is_model_unavailable(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An artifact with another feature order rejects every event as `model_unavailable` (loaded once, remembered)."""
    import hashlib
    import json

    import joblib

    from shared.scoring.model import ARTIFACT_NAME, METADATA_NAME, LazyModel

    payload = joblib.load(ROOT / "model" / ARTIFACT_NAME)
    payload["feature_spec"] = {
        **payload["feature_spec"],
        "feature_names": list(reversed(payload["feature_spec"]["feature_names"])),
    }
    joblib.dump(payload, tmp_path / ARTIFACT_NAME)
    metadata = json.loads((ROOT / "model" / METADATA_NAME).read_text())
    metadata["artifact"]["sha256"] = hashlib.sha256((tmp_path / ARTIFACT_NAME).read_bytes()).hexdigest()
    (tmp_path / METADATA_NAME).write_text(json.dumps(metadata))
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    get_settings.cache_clear()
    loads: list[int] = []

    def load() -> Any:
        loads.append(1)
        return bundled.load_bundled_model()

    monkeypatch.setattr(bundled, "bundled_model", LazyModel(load))
    for _ in range(2):
        scored, rejected = score(functions_worker, _bodies(_records(3)))
        assert scored == []
        assert [d["reason"] for d in rejected] == ["model_unavailable"] * 3
    assert loads == [1]


def test_a_reused_id_with_other_content_is_a_conflict_and_a_redelivery_is_not(functions_worker: Worker) -> None:
    """Before: the later transaction silently replaced the earlier one (amount 10 replaced by 9,000)."""
    records = _records(20, accounts=2)
    first, _ = score(functions_worker, _bodies(records))
    assert len(first) == 20
    again, rejected = score(functions_worker, _bodies(records))  # a true redelivery
    assert rejected == []
    assert [d["fraud_probability"] for d in again] == [d["fraud_probability"] for d in first]
    reused = {**records[3], "amount": 9000.0}
    scored, rejected = score(functions_worker, _bodies([reused]))
    assert scored == []
    assert [(d["field"], d["reason"]) for d in rejected] == [("id", "id_conflict")]


def test_event_time_far_from_enqueued_time_is_rejected_and_keeps_states_bounded(functions_worker: Worker) -> None:
    """A payment dated 0001-01-01 (or in 9999) is `too_late` (`too_early`); 200 batches of them leave the state small.

    Before: one such payment per batch kept every payment after it, 2,021 payments (89 KiB) after 200 batches.
    """
    records = payments(0, n=400, accounts=["acct-old"])
    account = "acct-old"
    for k in range(200):
        ancient = {**records[2 * k], "id": f"ancient-{k}", "timestamp": "0001-01-01T00:00:00Z"}
        future = {**records[2 * k], "id": f"future-{k}", "timestamp": "9999-01-01T00:00:00Z"}
        scored, rejected = score(functions_worker, _bodies([records[2 * k], records[2 * k + 1], ancient, future]))
        assert len(scored) == 2
        assert [d["reason"] for d in rejected] == ["too_late", "too_early"]
    store = state_store.get_state_store()
    assert store is not None
    states = store.read([account]).states
    assert len(states[account]["id"]) <= behaviour.STATE_LIMIT + behaviour.WINDOW
    assert len(states.blob(account)) < 4096


def test_the_hard_bound_holds_whatever_the_batch(functions_worker: Worker) -> None:
    """One batch of 1,000 payments of one account: the state keeps at most STATE_HARD_LIMIT of them."""
    records = payments(1, n=1000, accounts=["acct-busy"])
    scored, _ = score(functions_worker, _bodies(records))
    assert len(scored) == 1000
    store = state_store.get_state_store()
    assert store is not None
    state = store.read(["acct-busy"]).states["acct-busy"]
    assert len(state["id"]) == behaviour.STATE_HARD_LIMIT


def test_past_the_invocation_limit_events_are_rejected_whole_for_re_driving(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX_TRANSACTIONS_PER_INVOCATION bounds memory: later events are `invocation_limit`, their bodies whole."""
    monkeypatch.setenv("MAX_TRANSACTIONS_PER_INVOCATION", "250")
    get_settings.cache_clear()
    records = _records(600)
    bodies = [orjson.dumps({"records": records[i : i + 100]}) for i in range(0, 600, 100)]
    scored, rejected = score(functions_worker, bodies)
    assert len(scored) == 200  # two envelopes fit; the third would pass 250
    assert [d["reason"] for d in rejected] == ["invocation_limit"] * 4
    assert [_raw(d) for d in rejected] == bodies[2:]
    assert all(d["record_index"] is None for d in rejected)


def test_a_rejected_envelope_keeps_its_whole_body(functions_worker: Worker) -> None:
    """An envelope rejected whole (here: an extra key) keeps all of its body, not the first 16 KiB."""
    body = orjson.dumps({"records": _records(2000), "batch": 7})
    assert len(body) > 500_000
    scored, rejected = score(functions_worker, [body])
    assert scored == []
    (doc,) = rejected
    assert doc["reason"] == "invalid_envelope"
    assert _raw(doc) == body
    assert doc["raw_body_bytes"] == len(body)
    assert not doc["raw_body_truncated"]


def test_a_body_of_control_characters_stays_under_the_item_limit(functions_worker: Worker) -> None:
    """Escaped, 900 KB of control characters would be 5.4 MB of JSON: kept as base64 instead, still whole."""
    body = b"\x01" * 900_000
    _, (doc,) = score(functions_worker, [body])
    assert doc["raw_body"] is None
    assert _raw(doc) == body
    assert len(orjson.dumps(doc)) < 2 * 1024 * 1024


def test_each_scored_document_says_whether_history_was_read(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`account_history`: read with a store, off without one (unavailable is tests/integration's store-down case)."""
    records = _records(5)
    scored, _ = score(functions_worker, _bodies(records))
    assert {d["account_history"] for d in scored} == {"read"}
    monkeypatch.setenv("BEHAVIOUR_STATE", "off")
    get_settings.cache_clear()
    scored, _ = score(functions_worker, _bodies(_records(5, seed=12)))
    assert {d["account_history"] for d in scored} == {"off"}


def test_an_unreachable_store_is_counted_and_warned_once(
    functions_worker: Worker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The store down: documents say `unavailable`, a counter grows, one warning line (no traceback per batch)."""
    from shared.scoring import account_state as scoring

    def down(self: Any, accounts: Any) -> Any:
        raise state_store.StateUnavailableError("reading 5 profiles failed: ServiceRequestError")

    monkeypatch.setattr(state_store.MemoryStateStore, "read", down)
    before = scoring.state_unavailable.total
    with caplog.at_level(logging.WARNING):
        for seed in range(3):
            scored, _ = score(functions_worker, _bodies(_records(5, seed=20 + seed)))
            assert {d["account_history"] for d in scored} == {"unavailable"}
    assert scoring.state_unavailable.total == before + 15
    lines = [r for r in caplog.records if "history unknown" in r.getMessage()]
    assert len(lines) <= 1
    assert all(r.exc_info is None for r in caplog.records)


def test_now_is_the_default_enqueued_time_so_recent_payments_pass() -> None:
    """A guard for the tests above: generated payments start at now, inside the event-time bounds."""
    first = datetime.fromisoformat(_records(1)[0]["timestamp"])
    assert abs(first - datetime.now(UTC)) < timedelta(hours=1)
