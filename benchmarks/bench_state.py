"""Benchmark (part of `make bench`): what per-account behaviour state costs per transaction, through the worker.

    python -m benchmarks.bench_state [--accounts 5000] [--history 40] [--batch 5000] [--repeats 3]

`ScoreTransactions` runs in the worker engine (devhost.worker) on the same transactions with
BEHAVIOUR_STATE off (history unknown: the baseline), memory (states in the process) and cosmos
(states read and conditionally written with the Cosmos DB SDK, as on Azure, to a
`@vercel/cosmosdb-server` on loopback; the server is the one the integration tests start, so
`make setup` must have installed it), at 1 and 100 records per event. Every account starts with a
full stored history (its state after `--history` payments each, written before timing with the
store's own `History.write`), as in steady state. Inside each invocation, the state reads
(`History.read`), the features (`behaviour.score_batch_features`) and the conditional writes
(`History.write`) are timed by wrapping those names for the run; the rest of the difference to
`off` is shaping the new states and the documents. The function writes the states itself (there is
no `profiles` output binding any more), so the writes are inside the invocation's time.

States written per batch are counted from the store, not from the function: every account's
version is read before and after each invocation (`History.read(...).versions`: the memory store's
version counter, Cosmos DB's `_etag` through the SDK) and the changed ones counted; their size is
the profile document's (`state_store.profile_document`) as read back.

Request units are not measured (cosmosdb-server charges none): they are estimated per transaction
from the measured document sizes and Microsoft's published per-operation figures (point read of a
1 KB item 1.00 RU, 2 KB 1.04, 4 KB 1.14; write 4.95, 6.29, 6.67; "Understand request unit
consumption", learn.microsoft.com/azure/cosmos-db/understand-request-unit-consumption).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from benchmarks.machine import machine

WARM_STAMP = "2026-01-01T00:00:00.000Z"
"""`updated_at` of the warm-up states (and of the documents whose size is measured)."""
# (KB, read RU, write RU) from Microsoft's table; interpolated linearly between its points.
RU_TABLE = ((1.0, 1.00, 4.95), (2.0, 1.04, 6.29), (4.0, 1.14, 6.67), (8.0, 1.33, 7.04), (16.0, 1.67, 9.52))


def ru(size_bytes: float) -> tuple[float, float]:
    """(read RU, write RU) of one document of this size, from the published table."""
    kb = max(size_bytes / 1024.0, 1.0)
    sizes = [row[0] for row in RU_TABLE]
    return float(np.interp(kb, sizes, [r[1] for r in RU_TABLE])), float(np.interp(kb, sizes, [r[2] for r in RU_TABLE]))


@dataclass
class Timings:
    """Per-invocation seconds, and the wrapped steps' total seconds."""

    totals: list[float] = field(default_factory=list)
    reads: float = 0.0
    features: float = 0.0
    writes: float = 0.0
    states_written: int = 0
    """Accounts whose stored version changed across the invocations (read back from the store)."""
    state_bytes: int = 0


@contextmanager
def instrumented(t: Timings) -> Iterator[None]:
    """Time `History.read`, `History.write` (every store) and `behaviour.score_batch_features` while the block runs."""
    from shared.behaviour import features as behaviour
    from shared.behaviour import store as state_store

    def timed(owner: Any, name: str, slot: str) -> Callable[[], None]:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                setattr(t, slot, getattr(t, slot) + time.perf_counter() - started)

        setattr(owner, name, wrapper)
        return lambda: setattr(owner, name, original)

    restore = [
        timed(state_store.MemoryStateStore, "read", "reads"),
        timed(state_store.CosmosStateStore, "read", "reads"),
        timed(state_store.MemoryStateStore, "write", "writes"),
        timed(state_store.CosmosStateStore, "write", "writes"),
        timed(behaviour, "score_batch_features", "features"),
    ]
    try:
        yield
    finally:
        for undo in restore:
            undo()


def bodies_of(records: Sequence[dict[str, Any]], per_event: int) -> list[bytes]:
    from shared.contract.envelopes import pack_envelopes

    if per_event == 1:
        return [orjson.dumps(r) for r in records]
    return [e.body for e in pack_envelopes(records, per_event, ["0"])]


def warm_states(warm: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every account's state after its warm-up payments (the same for every mode)."""
    from shared.behaviour import features as behaviour
    from shared.contract.batch import validate_batch

    states: dict[str, dict[str, Any]] = {}
    # In batches, as serving built them: a state keeps its latest batch whole, so one batch of everything
    # would leave a busy account with all its payments instead of STATE_LIMIT of them.
    for start in range(0, len(warm), 5000):
        valid = validate_batch(warm[start : start + 5000])
        payments = behaviour.Payments.of(
            valid.ids, valid.account_ids, behaviour.timestamps_ms(valid.timestamps), valid.numbers
        )
        _, new = behaviour.score_batch_features(payments, states)
        states.update(new)
    return states


def run_mode(
    mode: str, states: dict[str, dict[str, Any]], batches: list[list[dict[str, Any]]], per_event: int
) -> Timings:
    """Store the warm states, then time each batch, with BEHAVIOUR_STATE=`mode`.

    With `cosmos`, COSMOS_DATABASE must name a database whose containers exist (devhost.cosmos_store).
    """
    from devhost.host_messages import eventhub_input
    from devhost.worker import worker
    from shared.behaviour import store as state_store
    from shared.settings import get_settings

    os.environ["BEHAVIOUR_STATE"] = mode
    get_settings.cache_clear()
    state_store.reset()
    engine = worker()
    store = state_store.get_state_store()
    if store is not None and states:
        # The store's own conditional write, against a read of the same accounts (none stored yet).
        conflicts = store.write(states, store.read(list(states)), WARM_STAMP)
        if conflicts:
            raise RuntimeError(f"{len(conflicts)} warm states could not be written (first: {conflicts[0]!r})")
    sequence = 0
    timings = Timings()
    for records in batches:
        bodies = bodies_of(records, per_event)
        message = eventhub_input(bodies, partition="0", first_sequence_number=sequence)
        sequence += len(bodies)
        accounts = list(dict.fromkeys(r["account_id"] for r in records))
        before = store.read(accounts).versions if store is not None else {}
        with instrumented(timings):
            result = engine.invoke("ScoreTransactions", *message)
        timings.totals.append(result.seconds)
        if store is not None:
            after = store.read(accounts)
            written = [a for a in accounts if a in after.versions and after.versions[a] != before.get(a)]
            timings.states_written += len(written)
            timings.state_bytes += sum(
                len(orjson.dumps(state_store.profile_document(a, after.states[a], WARM_STAMP)))
                for a in written
                if a in after.states
            )
    return timings


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_state", description=__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, default=5000)
    p.add_argument("--history", type=int, default=40, help="payments per account before the timed batches")
    p.add_argument("--batch", type=int, default=5000, help="transactions per invocation")
    p.add_argument("--repeats", type=int, default=3, help="timed invocations per configuration")
    args = p.parse_args(argv)

    import uuid

    from devhost.cosmos_store import CosmosStore
    from shared.generation.generator import TransactionGenerator
    from tests.integration.cosmos_server import CosmosServer

    os.environ["REQUIRE_SERVICES"] = "1"  # a missing server is an error here, never a skip
    # The local server's certificate is self-signed; checks are skipped for loopback only (shared/behaviour/store.py).
    warnings.filterwarnings("ignore", message="Unverified HTTPS request is being made to host '127.0.0.1'")
    generator = TransactionGenerator(seed=17, accounts=args.accounts)
    warm = generator.generate(args.accounts * args.history)
    states = warm_states(warm)
    batches = [generator.generate(args.batch) for _ in range(args.repeats)]
    n = args.batch * args.repeats
    accounts_per_tx = statistics.fmean(len({r["account_id"] for r in b}) / len(b) for b in batches)

    print(f"machine: {machine()}")
    print(
        f"ScoreTransactions through azure-functions-runtime; {args.accounts:,} accounts with {args.history} payments "
        f"of history each, then {args.repeats} invocations of {args.batch:,} transactions ({accounts_per_tx:.2f} "
        "distinct accounts per transaction)"
    )
    print(
        f"{'records/event':>13} {'state':<7} {'µs/tx':>7} {'vs off':>8} {'reads':>7} {'features':>9} "
        f"{'writes':>7} {'rest':>7} {'states/batch':>12} {'state bytes/account':>20}"
    )
    run_mode("off", {}, [generator.generate(500)], 1)  # loads the model, untimed, as a warm worker has
    with CosmosServer() as server:
        connection = f"AccountEndpoint={server.endpoint};AccountKey={server.key};"
        os.environ["CosmosDBConnection"] = connection  # noqa: SIM112 - the app setting's own name
        summary: dict[tuple[int, str], Timings] = {}
        for per_event in (1, 100):
            for mode in ("off", "memory", "cosmos"):
                if mode == "cosmos":
                    database = f"bench-{uuid.uuid4().hex[:8]}"
                    os.environ["COSMOS_DATABASE"] = database
                    CosmosStore(server.client(), database)  # creates the database and its containers
                t = run_mode(mode, states, batches, per_event)
                summary[(per_event, mode)] = t
                off = summary[(per_event, "off")]
                us = sum(t.totals) / n * 1e6
                base = sum(off.totals) / n * 1e6
                reads, feats, writes = t.reads / n * 1e6, t.features / n * 1e6, t.writes / n * 1e6
                rest = us - base - reads - feats - writes if mode != "off" else 0.0
                size = t.state_bytes / t.states_written if t.states_written else 0.0
                print(
                    f"{per_event:>13} {mode:<7} {us:7.1f} {us - base:+8.1f} {reads:7.1f} {feats:9.1f} {writes:7.1f} "
                    f"{rest:7.1f} {t.states_written / args.repeats:12,.0f} {size:20,.0f}"
                )
    cosmos = summary[(100, "cosmos")]
    size = cosmos.state_bytes / max(cosmos.states_written, 1)
    read_ru, write_ru = ru(size)
    print()
    print(
        f"request units per transaction (estimated from the state's measured size, {size:,.0f} bytes, and "
        f"Microsoft's table): read {read_ru * accounts_per_tx:.2f} + write {write_ru * accounts_per_tx:.2f} = "
        f"{(read_ru + write_ru) * accounts_per_tx:.2f} RU ({accounts_per_tx:.2f} accounts per transaction: one "
        "point read and one conditional write per distinct account per batch)"
    )
    print(
        "(µs through the worker: request bytes in, response bytes out; the state reads and writes to "
        "cosmosdb-server on loopback are not Azure's latency, only this machine's; states/batch: accounts whose "
        "stored version changed, read back from the store)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
