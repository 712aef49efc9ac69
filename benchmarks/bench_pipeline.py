"""Benchmark of the local pipeline: sustained transactions/s and enqueue→stored latency, bare and in envelopes.

Runs the app's functions end to end through `devhost.runner.LocalPipeline` with the embedded SQLite
store, as fast as the pipeline consumes, for a fixed count of transactions, once per records-per-event
setting (1: one transaction per event; 100: `{"records": [...]}` envelopes), every function inside
the worker engine, and prints where the time goes. In the same run it measures a floor: the same
generator and store with no scoring or publishing (transactions written as they are), so the ratio
says what the functions cost on top of moving the data.

    python -m benchmarks.bench_pipeline [--events 200000] [--partitions 4] [--records-per-event 1,100]

The shares of "where the time goes" are of the whole measured run: generating to the last transaction
stored, then publishing what was left (the drain), so the stages add up to it and "loop and waiting"
is what the loop spent between them. Options and app settings are checked before anything runs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks.machine import machine
from devhost.cli import Parser, UsageError, app_settings, check_disk, fail, integer
from devhost.runner import LocalPipeline, RunOptions, host_event_hub_options
from devhost.store import BYTES_PER_TRANSACTION, SQLiteStore
from shared.generation.generator import TransactionGenerator

PROG = "python -m benchmarks.bench_pipeline"

TARGETS_TX_PER_S = {1: 20_000, 100: 50_000}
"""Sustained transactions/s targets by records per event (the envelope target from the envelopes issue)."""
TARGET_P99_S = 1.0


def floor(events: int, batch: int, directory: Path) -> float:
    """Events/s for generate → serialize → store with nothing in between (no scoring, no publishing)."""
    store = SQLiteStore(directory / "floor.sqlite")
    generator = TransactionGenerator(seed=1)
    started = time.perf_counter()
    for start in range(0, events, batch):
        records = generator.generate(min(batch, events - start))
        bodies = [orjson.dumps(r) for r in records]
        store.upsert("scored", [orjson.loads(b) for b in bodies])
    return events / (time.perf_counter() - started)


def run(events: int, partitions: int, records_per_event: int, directory: Path) -> dict[str, Any]:
    """One pipeline run; its summary."""
    host = host_event_hub_options()
    options = RunOptions(
        events=events,
        partitions=partitions,
        max_batch=host["max_batch"],
        prefetch=host["prefetch"],
        records_per_event=records_per_event,
    )
    with LocalPipeline(SQLiteStore(directory / f"pipeline-{records_per_event}.sqlite"), options) as pipeline:
        summary: dict[str, Any] = pipeline.run().as_dict()
    return summary


def _sizes(raw: str) -> list[int]:
    """`--records-per-event`: a comma-separated list of whole numbers from 1 to 2,000."""
    try:
        return [integer(1, 2000)(x.strip()) for x in raw.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be whole numbers from 1 to 2,000 separated by commas, got {raw!r}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(PROG, __doc__.splitlines()[0])
    parser.add_argument("--events", type=integer(1), default=200_000, help="transactions per run")
    parser.add_argument("--partitions", type=integer(1, 1024), default=4, help="event stream partitions")
    parser.add_argument("--records-per-event", type=_sizes, default="1,100", help="comma-separated; one run each")
    args = parser.parse_args(argv)
    host = host_event_hub_options()
    sizes: list[int] = args.records_per_event
    try:
        app_settings({**os.environ, "BEHAVIOUR_STATE": "memory"})
        # Every run and the floor keep their store until the end.
        check_disk(
            args.events * (len(sizes) + 1) * BYTES_PER_TRANSACTION,
            Path(tempfile.gettempdir()),
            f"--events {args.events:,} x {len(sizes) + 1} runs",
            "lower --events, or set TMPDIR to a folder on a bigger disk",
        )
    except UsageError as exc:
        fail(PROG, str(exc))

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        directory = Path(tmp)
        base = floor(args.events, 1000, directory)
        results = {n: run(args.events, args.partitions, n, directory) for n in sizes}

    print(f"machine: {machine()}")
    print(
        f"transactions: {args.events:,} per run, partitions {args.partitions}, host.json batch {host['max_batch']} "
        f"events, prefetch {host['prefetch']}, store SQLite (embedded); every function in the worker engine"
    )
    print(f"floor:     {base:>10,.0f} tx/s (generate + serialize + store, no functions)")
    for n, s in results.items():
        rate, p50, p99 = s["transactions_per_s"], s["latency_p50_s"], s["latency_p99_s"]
        target = TARGETS_TX_PER_S.get(n)
        print()
        print(
            f"{n} record(s) per event: {rate:>10,.0f} tx/s sustained in {s['events']:,} events   "
            f"p50 {p50 * 1000:6.0f} ms   p99 {p99 * 1000:6.0f} ms   stored {s['scored'] + s['rejected']:,}"
        )
        print(f"  ratio to floor: {rate / base:.2f}")
        if target:
            verdict = "met" if rate >= target and p99 <= TARGET_P99_S else "missed"
            print(f"  target >= {target:,} tx/s and p99 <= {TARGET_P99_S:.0f} s: {verdict} ({rate / target:.2f}x)")
        print(f"  where the time goes (seconds, share of the {s['elapsed_s'] + s['drain_s']:.1f} s run and drain):")
        total = s["elapsed_s"] + s["drain_s"]
        stages = dict(s["stage_seconds"])
        for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
            print(f"    {stage:<28} {seconds:8.2f}  {seconds / total:6.1%}")
        other = total - sum(stages.values())
        print(f"    {'loop and waiting':<28} {other:8.2f}  {other / total:6.1%}")
    if len(results) > 1:
        one = next(iter(results.values()))
        for n, s in list(results.items())[1:]:
            print(f"ratio {n} per event / 1 per event: {s['transactions_per_s'] / one['transactions_per_s']:.2f}")
    print("(SQLite writes run in a writer process, in parallel with the above)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
