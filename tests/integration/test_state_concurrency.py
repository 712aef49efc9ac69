"""Concurrent batches touching one account never lose a payment, with the state in a Cosmos-protocol server.

Two partitions' batches of the same accounts run at once on the worker engine's thread pool, their
states read and written with the Cosmos DB SDK against `@vercel/cosmosdb-server` (which honours
`If-Match` on replace and refuses a create of an existing id, as Cosmos DB does). Before conditional
writes, 30 rounds in 30 lost payments this way. A second store object over the same container
stands for another instance of the app: its writes race ours and neither may overwrite the other.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from devhost.cosmos_store import CosmosStore
from devhost.worker import Worker
from shared.behaviour import features as behaviour
from shared.behaviour import store as state_store
from shared.behaviour.store import CosmosStateStore, cosmos_container
from shared.settings import get_settings
from tests.functions.test_state_concurrency import assert_state_holds_every_payment, deliver_concurrently, payments

pytestmark = pytest.mark.integration

ACCOUNTS = ["acct-a", "acct-b", "acct-c"]


@pytest.mark.parametrize("round_", range(3))
def test_two_partitions_one_account_lose_nothing(
    functions_worker: Worker, cosmos_state: CosmosStore, round_: int
) -> None:
    """Both partitions at once through the worker: every payment scored once, each state has every recent payment."""
    records = payments(round_, n=240)
    assert deliver_concurrently(functions_worker, records) == len(records)
    store = state_store.get_state_store()
    assert store is not None
    snapshot = store.read(ACCOUNTS)
    for account in ACCOUNTS:
        assert_state_holds_every_payment(records, snapshot.states.get(account))


def test_two_instances_cannot_overwrite_each_other(cosmos_state: CosmosStore) -> None:
    """Two stores (two app instances) read one state, both write: exactly one wins, the other is told to retry."""
    import os

    codes = {name: [1, 1] for name in behaviour.PAYMENT_FIELDS}
    two_payments = behaviour.Payments.of(["p1", "p2"], ["acct-a", "acct-a"], [1, 2], codes)

    first = CosmosStateStore(cosmos_container(get_settings(), os.environ))
    second = CosmosStateStore(cosmos_container(get_settings(), os.environ))
    _, one = behaviour.score_batch_features(two_payments.take(np.arange(1)), {})
    _, both = behaviour.score_batch_features(two_payments, {})
    state, grown = one["acct-a"], both["acct-a"]
    assert first.write({"acct-a": state}, first.read(["acct-a"]), "now") == []
    seen_by_first, seen_by_second = first.read(["acct-a"]), second.read(["acct-a"])
    results: list[list[str]] = []
    barrier = threading.Barrier(2)

    def write(store: CosmosStateStore, snapshot: state_store.Snapshot) -> None:
        barrier.wait()
        results.append(store.write({"acct-a": grown}, snapshot, "now"))

    threads = [
        threading.Thread(target=write, args=(first, seen_by_first)),
        threading.Thread(target=write, args=(second, seen_by_second)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [[], ["acct-a"]]
    # Both would also refuse to create a state someone else created in between.
    assert second.write({"acct-b": state}, state_store.Snapshot(), "now") == []
    assert first.write({"acct-b": state}, state_store.Snapshot(), "now") == ["acct-b"]
