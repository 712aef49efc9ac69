"""Concurrent batches touching one account never lose a payment from its state (memory store, through the worker).

The worker runs sync functions on a thread pool, so batches of two partitions carrying payments of
one account are scored at the same time. Before conditional writes, each batch read the same state
and the later write replaced the earlier one: 9 rounds in 30 lost payments. Now a write only lands
on the version it read, and a loser reads and scores again (shared/behaviour/store.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from devhost.worker import Worker
from shared.behaviour import features as behaviour
from shared.behaviour import store as state_store
from shared.behaviour.state_codec import id_hex
from shared.contract.timestamps import parse_ms
from tests.invoke import score

ROUNDS = 6
PAYMENTS = 400
"""Per round: 400 payments of three accounts, alternately to two partitions (each account on both), batches of 20."""


def payments(
    round_: int, n: int = PAYMENTS, accounts: Sequence[str] = ("acct-a", "acct-b", "acct-c")
) -> list[dict[str, Any]]:
    """Payments of a few accounts a second apart, in event-time order."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return [
        {
            "id": f"r{round_}-p{i}",
            "timestamp": (start + timedelta(seconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "account_id": accounts[i % len(accounts)],
            "amount": 10.0 + i % 7,
            "old_balance": 5000.0 - i,
            "income": 3000.0,
            "credit": 0,
            "marital_status": 1,
            "children": 0,
            "month": 11,
            "day_of_week": "monday",
            "category_recipient": "food_store",
            "transaction_type": "onsite",
            "transaction_method": "card",
            "foreign_transaction": 0,
        }
        for i in range(n)
    ]


def deliver_concurrently(worker: Worker, records: list[dict[str, Any]], batch: int = 20) -> int:
    """Even records to partition 0, odd to partition 1, each partition's batches in order, both at once."""
    streams = [records[0::2], records[1::2]]
    scored = [0, 0]
    barrier = threading.Barrier(2)

    def run(p: int) -> None:
        barrier.wait()
        mine = streams[p]
        for k in range(0, len(mine), batch):
            docs, rejected = score(
                worker, [orjson.dumps(r) for r in mine[k : k + batch]], partition=str(p), first_sequence_number=k
            )
            assert rejected == []
            scored[p] += len(docs)

    threads = [threading.Thread(target=run, args=(p,)) for p in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(scored)


def assert_state_holds_every_payment(records: list[dict[str, Any]], state: dict[str, Any] | None) -> None:
    """The state is exactly the account's payments from its oldest kept one on: no gap, the latest included."""
    assert state is not None
    account = next(r["account_id"] for r in records if id_hex(r["id"]) == state["id"][0])
    mine = [r for r in records if r["account_id"] == account]
    kept = list(zip(state["t_ms"], state["id"], strict=True))
    oldest = kept[0][0]
    expected = sorted((parse_ms(r["timestamp"]), r["id"]) for r in mine if parse_ms(r["timestamp"]) >= oldest)
    assert kept == [(t, id_hex(id_)) for t, id_ in expected]
    assert len(kept) >= behaviour.STATE_LIMIT


@pytest.fixture
def slow_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads take a few milliseconds, as a remote store's do, so that the two partitions' batches overlap."""
    original = state_store.MemoryStateStore.read

    def slow(self: state_store.MemoryStateStore, accounts: Sequence[str]) -> state_store.Snapshot:
        snapshot = original(self, accounts)
        time.sleep(0.003)
        return snapshot

    monkeypatch.setattr(state_store.MemoryStateStore, "read", slow)


@pytest.mark.usefixtures("slow_reads")
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_partitions_one_account_lose_nothing(functions_worker: Worker, round_: int) -> None:
    """Both partitions' batches at once: every payment scored once, and each state has every recent payment."""
    state_store.reset()
    records = payments(round_)
    assert deliver_concurrently(functions_worker, records) == len(records)
    store = state_store.get_state_store()
    assert store is not None
    snapshot = store.read(["acct-a", "acct-b", "acct-c"])
    for account in ("acct-a", "acct-b", "acct-c"):
        assert_state_holds_every_payment(records, snapshot.states.get(account))
