"""Benchmark: the behavioural features per transaction, replayed (training) and in batches with stored states (serving).

    python -m benchmarks.bench_behaviour [--accounts 10000] [--events 200000]

Serving is timed as the scorer will run it: the batch's accounts' states decoded from the base64
text a Cosmos DB document holds (`state_codec`), features and changed states computed, the new
states encoded to text again. Single-threaded.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from shared.behaviour import features as behaviour
from shared.behaviour import state_codec
from shared.generation.generator import TransactionGenerator


def main(argv: Sequence[str] | None = None) -> None:
    """Print µs per transaction for replay and for serving at a few batch sizes, and the state size."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_behaviour", description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args(argv)
    cols = TransactionGenerator(seed=1, accounts=args.accounts, start=datetime(2026, 1, 5, tzinfo=UTC)).columns(
        args.events
    )
    payments = behaviour.Payments.of(cols["id"], cols["account_id"], cols["t_ms"], cols)
    started = time.perf_counter()
    behaviour.replay(payments)
    print(f"replay: {(time.perf_counter() - started) / len(payments) * 1e6:.2f} µs per transaction")

    # Warm the states on the first half, then time the second half batch by batch.
    half = len(payments) // 2
    store: dict[str, str] = {}
    _, states = behaviour.score_batch_features(payments.take(np.arange(half)), {})
    store.update(zip(states, state_codec.to_texts(list(states.values())), strict=True))
    for size in (1, 100, 1000):
        stop = min(len(payments), half + max(20_000 // max(size // 10, 1), size * 20))
        batches = [np.arange(s, min(s + size, stop)) for s in range(half, stop, size)]
        timed = dict(store)
        features_s = json_s = 0.0
        for rows in batches:
            batch = payments.take(rows)
            t0 = time.perf_counter()
            loaded = state_codec.load({a: timed.get(a) for a in set(batch.account.tolist())})
            t1 = time.perf_counter()
            _, new = behaviour.score_batch_features(batch, loaded)
            t2 = time.perf_counter()
            timed.update(zip(new, state_codec.to_texts(list(new.values())), strict=True))
            t3 = time.perf_counter()
            features_s += t2 - t1
            json_s += (t1 - t0) + (t3 - t2)
        n = sum(r.size for r in batches)
        print(
            f"serving, batch {size:>4}: features and new states {features_s / n * 1e6:6.1f} µs, "
            f"state text decode+encode {json_s / n * 1e6:6.1f} µs per transaction ({n:,} transactions)"
        )
    sizes = [len(s) for s in store.values()]
    full = [len(s) for s in store.values() if len(state_codec.decode(s)["id"]) == behaviour.STATE_LIMIT]
    print(
        f"state per account: mean {np.mean(sizes):,.0f} bytes of base64 text, "
        f"{np.mean(full) if full else float('nan'):,.0f} when full ({behaviour.STATE_LIMIT} payments)"
    )


if __name__ == "__main__":
    main()
