"""Benchmark of the local pipeline (issue: local run): sustained events/s and enqueue→stored latency.

Runs the app's functions end to end through `devhost.runner.LocalPipeline` with the embedded SQLite
store, as fast as the pipeline consumes, for a fixed count, and prints where the time goes. In the
same run it measures a floor: the same generator and store with no scoring or publishing (events
written as they are), so the ratio says what the functions cost on top of moving the data.

    python -m benchmarks.bench_pipeline [--events 200000] [--partitions 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from benchmarks.machine import machine
from devhost.runner import LocalPipeline, RunOptions, host_event_hub_options
from devhost.store import SQLiteStore
from shared.generator import TransactionGenerator

TARGET_EVENTS_PER_S = 20_000
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args(argv)
    host = host_event_hub_options()

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        directory = Path(tmp)
        base = floor(args.events, host["max_batch"], directory)
        options = RunOptions(
            events=args.events, partitions=args.partitions, max_batch=host["max_batch"], prefetch=host["prefetch"]
        )
        with LocalPipeline(SQLiteStore(directory / "pipeline.sqlite"), options) as pipeline:
            summary = pipeline.run()

    s = summary.as_dict()
    rate, p50, p99 = s["events_per_s"], s["latency_p50_s"], s["latency_p99_s"]
    print(f"machine: {machine()}")
    print(f"events: {args.events:,}, partitions {args.partitions}, batch {host['max_batch']}, store SQLite (embedded)")
    print(f"pipeline:  {rate:>10,.0f} events/s sustained   p50 {p50 * 1000:6.0f} ms   p99 {p99 * 1000:6.0f} ms")
    print(f"floor:     {base:>10,.0f} events/s (generate + serialize + store, no functions)")
    print(f"ratio pipeline/floor: {rate / base:.2f}")
    print(f"ratio pipeline/target ({TARGET_EVENTS_PER_S:,} ev/s): {rate / TARGET_EVENTS_PER_S:.2f}")
    print(f"p99 vs target ({TARGET_P99_S:.0f} s): {'met' if p99 <= TARGET_P99_S else 'missed'}")
    print("where the time goes (seconds, share of the run):")
    total = s["elapsed_s"]
    stages = dict(s["stage_seconds"])
    for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:<24} {seconds:8.2f}  {seconds / total:6.1%}")
    other = total - sum(stages.values())
    print(f"  {'loop and waiting':<24} {other:8.2f}  {other / total:6.1%}")
    print("  (SQLite writes run in a writer process, in parallel with the above)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
