"""Benchmark (part of `make bench`): what per-account behaviour state costs per transaction, through the worker.

    python -m benchmarks.bench_state [--accounts 5000] [--history 40] [--batch 5000] [--repeats 3]

`ScoreTransactions` runs in the worker engine (devhost.worker) on the same transactions with
BEHAVIOUR_STATE off (history unknown: the baseline), memory (states in the process) and cosmos
(states read from a `@vercel/cosmosdb-server` on loopback with the Cosmos DB SDK, as on Azure; the
server is the one the integration tests start, so `make setup` must have installed it), at 1 and
100 records per event. Every account starts with a full stored history (its state after `--history`
payments each, put in the store before timing), as in steady state. Inside each invocation, the
state reads (`History.states`) and the features (`behaviour.score_batch_features`) are timed by
wrapping those names for the run; the rest of the difference to `off` is the new states' shaping
and, with Cosmos DB, encoding the `profiles` output. The host's writes of that output
are timed apart (they happen after the function returns, outside its time).

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
    host_writes: float = 0.0
    profiles: int = 0
    profile_bytes: int = 0


@contextmanager
def instrumented(t: Timings) -> Iterator[None]:
    """Time `History.states` (every store) and `behaviour.score_batch_features` while the block runs."""
    from shared import behaviour, history

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
        timed(history.MemoryHistory, "states", "reads"),
        timed(history.CosmosHistory, "states", "reads"),
        timed(behaviour, "score_batch_features", "features"),
    ]
    try:
        yield
    finally:
        for undo in restore:
            undo()


def bodies_of(records: Sequence[dict[str, Any]], per_event: int) -> list[bytes]:
    from shared.envelopes import pack_envelopes

    if per_event == 1:
        return [orjson.dumps(r) for r in records]
    return [e.body for e in pack_envelopes(records, per_event, ["0"])]


def warm_states(warm: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every account's state after its warm-up payments, as profile documents (the same for every mode)."""
    from shared import behaviour
    from shared.columnar import validate_batch
    from shared.history import profile_document

    states: dict[Any, dict[str, Any]] = {}
    # In batches, as serving built them: a state keeps its latest batch whole, so one batch of everything
    # would leave a busy account with all its payments instead of STATE_LIMIT of them.
    for start in range(0, len(warm), 5000):
        valid = validate_batch(warm[start : start + 5000])
        payments = behaviour.Payments.of(
            valid.ids, valid.account_ids, behaviour.timestamps_ms(valid.timestamps), valid.numbers
        )
        _, new = behaviour.score_batch_features(payments, states)
        states.update(new)
    return [profile_document(account, state, "2026-01-01T00:00:00.000Z") for account, state in states.items()]


def run_mode(
    mode: str, profiles: list[dict[str, Any]], batches: list[list[dict[str, Any]]], per_event: int, store: Any | None
) -> Timings:
    """Start from the warm states, then time each batch, with BEHAVIOUR_STATE=`mode`."""
    from devhost.host_messages import eventhub_input
    from devhost.worker import worker
    from shared import history
    from shared.settings import get_settings

    os.environ["BEHAVIOUR_STATE"] = mode
    get_settings.cache_clear()
    history.reset()
    engine = worker()
    if mode == "memory":
        store_in_process = history.get_history()
        assert store_in_process is not None
        store_in_process.remember(profiles)
    elif store is not None:
        store.upsert("profiles", profiles)
    sequence = 0
    timings = Timings()
    for records in batches:
        bodies = bodies_of(records, per_event)
        message = eventhub_input(bodies, partition="0", first_sequence_number=sequence)
        sequence += len(bodies)
        with instrumented(timings):
            result = engine.invoke("ScoreTransactions", *message)
        timings.totals.append(result.seconds)
        written = result.documents("profiles")
        timings.profiles += len(written)
        timings.profile_bytes += sum(len(orjson.dumps(p)) for p in written)
        if store is not None and written:
            started = time.perf_counter()
            store.upsert("profiles", written)  # the host's write of the output binding
            timings.host_writes += time.perf_counter() - started
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
    from shared.generator import TransactionGenerator
    from tests.integration.cosmos_server import CosmosServer

    os.environ["REQUIRE_SERVICES"] = "1"  # a missing server is an error here, never a skip
    # The local server's certificate is self-signed; checks are skipped for loopback only (shared/history.py).
    warnings.filterwarnings("ignore", message="Unverified HTTPS request is being made to host '127.0.0.1'")
    generator = TransactionGenerator(seed=17, accounts=args.accounts)
    warm = generator.generate(args.accounts * args.history)
    profiles = warm_states(warm)
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
        f"{'output':>7} {'host write':>11} {'state bytes/account':>20}"
    )
    run_mode("off", [], [generator.generate(500)], 1, None)  # loads the model, untimed, as a warm worker has
    with CosmosServer() as server:
        connection = f"AccountEndpoint={server.endpoint};AccountKey={server.key};"
        os.environ["CosmosDBConnection"] = connection  # noqa: SIM112 - the app setting's own name
        summary: dict[tuple[int, str], Timings] = {}
        for per_event in (1, 100):
            for mode in ("off", "memory", "cosmos"):
                store = None
                if mode == "cosmos":
                    database = f"bench-{uuid.uuid4().hex[:8]}"
                    os.environ["COSMOS_DATABASE"] = database
                    store = CosmosStore(server.client(), database)
                t = run_mode(mode, profiles, batches, per_event, store)
                summary[(per_event, mode)] = t
                off = summary[(per_event, "off")]
                us = sum(t.totals) / n * 1e6
                base = sum(off.totals) / n * 1e6
                reads, feats = t.reads / n * 1e6, t.features / n * 1e6
                output = us - base - reads - feats if mode != "off" else 0.0
                size = t.profile_bytes / t.profiles if t.profiles else 0.0
                print(
                    f"{per_event:>13} {mode:<7} {us:7.1f} {us - base:+8.1f} {reads:7.1f} {feats:9.1f} {output:7.1f} "
                    f"{t.host_writes / n * 1e6:11.1f} {size:20,.0f}"
                )
    cosmos = summary[(100, "cosmos")]
    size = cosmos.profile_bytes / max(cosmos.profiles, 1)
    read_ru, write_ru = ru(size)
    print()
    print(
        f"request units per transaction (estimated from the state's measured size, {size:,.0f} bytes, and "
        f"Microsoft's table): read {read_ru * accounts_per_tx:.2f} + write {write_ru * accounts_per_tx:.2f} = "
        f"{(read_ru + write_ru) * accounts_per_tx:.2f} RU ({accounts_per_tx:.2f} accounts per transaction: one "
        "point read and one upsert per distinct account per batch)"
    )
    print(
        "(µs through the worker: request bytes in, response bytes out; the host's writes to cosmosdb-server on "
        "loopback are not Azure's latency, only this machine's)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
