"""Benchmark: peak memory of one ScoreTransactions invocation through the worker, at and far past the invocation limit.

    python -m benchmarks.bench_memory [--worst-events 100]

Why: before `MAX_TRANSACTIONS_PER_INVOCATION`, one delivery of 100 events holding envelopes under
1 MB (265,000 transactions) peaked at 2,255 MB in the worker engine and answered with a 271 MB
response. A Flex Consumption instance has 2,048 MB: "The 2,048-MB instance memory size is the
default and should be used for most scenarios", and "Instance resources are shared between your
function code and the Functions host" (learn.microsoft.com/azure/azure-functions/flex-consumption-plan,
"Instance memory"; infra/main.bicep defaults `instanceMemoryMB` to 2048). So one large delivery could
take the instance down, and the retry policy would redeliver it to the next one. Past the limit
(default 50,000 transactions) the scorer rejects further events whole as `body:invocation_limit`,
raw bodies kept for re-driving, and drops their decoded values at once (shared/scoring/batch.py `_decode`).

Each case runs in a fresh process (`--child`), so its peak is its own: `VmHWM` from
/proc/self/status, the high-water mark of the process's resident memory. Not `ru_maxrss`: Linux
carries that across exec, so a child would start with this parent's peak. In the child the worker
engine (devhost.worker) is started and warmed with one small batch (BEHAVIOUR_STATE=memory: states
in the process), the case's bodies are read from a file and wrapped in the host's message
(devhost.host_messages.eventhub_input), then `worker.invoke("ScoreTransactions", ...)` runs once:

- (a) baseline: the warmed worker alone (each case's increment is over its own process's peak at
  this point);
- (b) at the limit: 50,000 generated transactions, packed into as few envelopes under 1,048,576
  bytes as hold them evenly (5,000 generated records are ~1.9 MB, so more than ten envelopes);
- (c) worst case: 100 envelopes just under 1,048,576 bytes, each of as many minimal valid records as
  fit (short ids, one timestamp, the shortest category values: ~290 bytes a record);
- (b') the worst case's leading envelopes that fit within the limit, alone: what (c) scores without
  what it rejects, so (c) - (b') is what the excess costs. (b') and (b) differ in the flagged share:
  the minimal record scores above the threshold, and reasons are computed for every flagged row.

The peak is read when the engine has answered (response bytes out), and again after this process
decoded the response (`Invocation` parses every document, the host's work on Azure, where the host
is a separate process sharing the same instance memory). The request (the bodies, as the test
host holds them and as the worker receives them) is inside both. Every case checks that each
transaction sent comes back as exactly one scored document or inside one rejected one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from base64 import b64decode
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any, Final

import orjson

from benchmarks.machine import machine
from shared.contract.envelopes import envelope_body

ROOT: Final = Path(__file__).resolve().parents[1]
FLEX_INSTANCE_MB: Final = 2048
"""Memory of a Flex Consumption instance at the default size (see the module docstring)."""
EVENT_BYTES: Final = 1_048_576
"""Event Hubs' largest event (Standard and Premium); every body here stays under it."""
MAX_RECORDS: Final = 5000
"""MAX_RECORDS_PER_ENVELOPE's default: a fuller envelope would be rejected whole as too_many_records."""
WARM_TRANSACTIONS: Final = 500


def status_mb(field: str) -> float:
    """A memory line of /proc/self/status (VmHWM, VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} is not in /proc/self/status (this benchmark needs Linux)")


def generated_bodies(records: Sequence[dict[str, Any]]) -> list[bytes]:
    """`records` in the fewest envelopes that each stay under `EVENT_BYTES`, records spread evenly over them."""
    encoded = [orjson.dumps(r) for r in records]
    for events in range(math.ceil(len(encoded) / MAX_RECORDS), len(encoded) + 1):
        per = math.ceil(len(encoded) / events)
        bodies = [envelope_body(encoded[i : i + per]) for i in range(0, len(encoded), per)]
        if max(map(len, bodies)) < EVENT_BYTES:
            return bodies
    raise AssertionError("unreachable: one record per envelope always fits")


def minimal_record(n: int, timestamp: str) -> dict[str, Any]:
    """A valid transaction with the fewest bytes: base-36 id, 10,000 short account ids, one timestamp."""
    return {
        "id": _base36(n),
        "timestamp": timestamp,
        "account_id": f"a{n % 10_000}",
        "amount": 1.0,
        "old_balance": 0.0,
        "income": 0.0,
        "credit": 0,
        "marital_status": 0,
        "children": 0,
        "foreign_transaction": 0,
        "month": 1,
        "day_of_week": "monday",
        "category_recipient": "other",
        "transaction_type": "atm",
        "transaction_method": "card",
    }


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def minimal_bodies(events: int, timestamp: str) -> list[bytes]:
    """`events` envelopes, each of as many minimal records as fit under `EVENT_BYTES` (at most `MAX_RECORDS`)."""
    frame = len(envelope_body([]))
    bodies, n = [], 0
    for _ in range(events):
        encoded: list[bytes] = []
        size = frame
        while len(encoded) < MAX_RECORDS:
            record = orjson.dumps(minimal_record(n, timestamp))
            grown = size + len(record) + (1 if encoded else 0)
            if grown >= EVENT_BYTES:
                break
            encoded.append(record)
            size, n = grown, n + 1
        bodies.append(envelope_body(encoded))
    return bodies


def records_in(body: bytes) -> int:
    """Transactions an event holds: an envelope's records, else one."""
    value = orjson.loads(body)
    if isinstance(value, dict) and isinstance(value.get("records"), list):
        return len(value["records"])
    return 1


# -- the child: one case in a fresh process -----------------------------------------------------------


def child(warm_path: Path, case_path: Path | None) -> dict[str, Any]:
    """Warm the worker, then invoke ScoreTransactions once on the case's bodies; what it took and returned."""
    from devhost.host_messages import eventhub_input
    from devhost.worker import worker
    from shared.settings import get_settings

    engine = worker()
    warm = warm_path.read_bytes().split(b"\n")
    warmed = engine.invoke("ScoreTransactions", *eventhub_input(warm, first_sequence_number=0))
    out: dict[str, Any] = {"limit": get_settings().max_transactions_per_invocation, "warm_mb": status_mb("VmHWM")}
    if case_path is None:
        bodies, result = warm, warmed
        out |= {"before_mb": out["warm_mb"], "engine_mb": out["warm_mb"], "peak_mb": out["warm_mb"]}
    else:
        bodies = case_path.read_bytes().split(b"\n")
        message = eventhub_input(bodies, first_sequence_number=0)
        out["before_mb"] = status_mb("VmHWM")
        answer = engine.invoke_bytes

        def probed(wire: bytes) -> bytes:
            response = answer(wire)
            out["engine_mb"] = status_mb("VmHWM")  # the engine has answered; this process has not decoded it
            return response

        engine.invoke_bytes = probed  # type: ignore[method-assign]
        result = engine.invoke("ScoreTransactions", *message)
        out["peak_mb"] = status_mb("VmHWM")
    # Counted after the peaks are read: nothing below is part of the invocation.
    scored, rejected = result.documents("scored"), result.documents("rejected")
    held = [records_in(b) for b in bodies]
    rejected_tx = 0
    whole_kept = 0
    reasons: Counter[str] = Counter()
    for doc in rejected:
        reasons[f"{doc['field']}:{doc['reason']}"] += 1
        if doc["record_index"] is None:
            position = doc["sequence_number"]
            rejected_tx += held[position]
            raw = doc["raw_body"].encode() if doc["raw_body"] is not None else b64decode(doc["raw_body_base64"])
            whole_kept += raw == bodies[position] and not doc["raw_body_truncated"]
        else:
            rejected_tx += 1
    return out | {
        "events": len(bodies),
        "request_bytes": sum(map(len, bodies)),
        "transactions": sum(held),
        "scored": len(scored),
        "flagged": sum(bool(doc["is_flagged"]) for doc in scored),
        "rejected_documents": len(rejected),
        "rejected_transactions": rejected_tx,
        "whole_rejections": sum(doc["record_index"] is None for doc in rejected),
        "whole_rejections_raw_kept": whole_kept,
        "reasons": dict(reasons),
        "response_bytes": result.response.ByteSize(),
        "seconds": result.seconds,
    }


# -- the parent: build the bodies, run each case, print the table ------------------------------------


@dataclass(frozen=True)
class Case:
    """One row: a label and the bodies of its one big invocation (None: the warmed worker alone)."""

    label: str
    bodies: list[bytes] | None
    description: str


def describe(bodies: Sequence[bytes]) -> str:
    """How many envelopes, of how many records, of how many bytes (a range where they differ)."""
    held = [records_in(b) for b in bodies]
    sizes = [len(b) for b in bodies]
    return (
        f"{len(bodies)} envelope{'s' if len(bodies) != 1 else ''} of {_span(held)} records ({sum(held):,} in all), "
        f"{_span(sizes)} bytes each"
    )


def _span(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def run_child(warm_path: Path, case_path: Path | None) -> dict[str, Any]:
    env = {**os.environ, "BEHAVIOUR_STATE": "memory", "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "benchmarks.bench_memory", "--child", str(warm_path), str(case_path or "-")]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the case's process failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory", description=__doc__.splitlines()[0])
    p.add_argument("--worst-events", type=int, default=100, help="events of the worst case (default 100)")
    p.add_argument("--child", nargs=2, metavar=("WARM", "CASE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        warm, case = args.child
        print(json.dumps(child(Path(warm), None if case == "-" else Path(case))))
        return 0

    from shared.generation.generator import TransactionGenerator
    from shared.settings import get_settings

    started = time.perf_counter()
    limit = get_settings().max_transactions_per_invocation  # the children see the same environment
    generator = TransactionGenerator(seed=2026)
    warm = generated_bodies(generator.generate(WARM_TRANSACTIONS))
    at_limit = generated_bodies(generator.generate(limit))
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    worst = minimal_bodies(args.worst_events, timestamp)
    counts = list(accumulate(map(records_in, worst)))
    within = bisect_right(counts, limit)  # the worst case's leading envelopes that fit the limit: what it scores
    cases = [
        Case("(a) baseline, warmed", None, f"{describe(warm)} (the warm-up batch, scored first in every case)"),
        Case("(b) at the limit", at_limit, describe(at_limit)),
        Case(
            "(b') limit, minimal",
            worst[:within],
            f"the worst case's first {within} envelopes alone: what it scores, without what it rejects",
        ),
        Case("(c) worst case", worst, describe(worst)),
    ]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        warm_path = Path(tmp) / "warm.jsonl"
        warm_path.write_bytes(b"\n".join(warm))  # orjson never writes a raw newline inside a body
        for i, case in enumerate(cases):
            case_path = None
            if case.bodies is not None:
                case_path = Path(tmp) / f"case{i}.jsonl"
                case_path.write_bytes(b"\n".join(case.bodies))
            results.append(run_child(warm_path, case_path))

    print(f"machine: {machine()}")
    print(
        f"ScoreTransactions through azure-functions-runtime, BEHAVIOUR_STATE=memory, one invocation per fresh process; "
        f"MAX_TRANSACTIONS_PER_INVOCATION {results[0]['limit']:,}; peaks are VmHWM"
    )
    for case in cases:
        print(f"{case.label}: {case.description}")
    print(
        f"{'case':<22} {'events':>6} {'request MB':>10} {'peak MB':>8} {'increment':>9} {'decoded MB':>10} "
        f"{'tx in':>8} {'scored':>7} {'flagged':>7} {'rejected':>8} {'response MB':>11} {'seconds':>7} {'peak/2048':>9}"
    )
    for case, r in zip(cases, results, strict=True):
        print(
            f"{case.label:<22} {r['events']:>6} {r['request_bytes'] / 2**20:>10.1f} {r['engine_mb']:>8.0f} "
            f"{r['engine_mb'] - r['warm_mb']:>+9.0f} {r['peak_mb']:>10.0f} {r['transactions']:>8,} {r['scored']:>7,} "
            f"{r['flagged']:>7,} {r['rejected_transactions']:>8,} {r['response_bytes'] / 2**20:>11.1f} "
            f"{r['seconds']:>7.2f} {r['engine_mb'] / FLEX_INSTANCE_MB:>9.2f}"
        )
    print()
    ok = True
    for case, r in zip(cases, results, strict=True):
        holds = r["transactions"] == r["scored"] + r["rejected_transactions"]
        ok &= holds and r["whole_rejections_raw_kept"] == r["whole_rejections"]
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items())) or "none"
        print(
            f"{case.label}: in {r['transactions']:,} = scored {r['scored']:,} "
            f"+ rejected {r['rejected_transactions']:,} "
            f"({r['rejected_documents']} rejected documents: {reasons}; raw body kept whole in "
            f"{r['whole_rejections_raw_kept']} of {r['whole_rejections']} whole-event rejections): "
            f"{'holds' if holds else 'DOES NOT HOLD'}"
        )
    print(
        "(peak MB: the process's high-water mark when the engine had answered, request bytes in to response bytes "
        "out; increment: over the same process's peak after its warm-up; decoded MB: after this process also parsed "
        "the response, the host's work on Azure; peak/2048: of a default Flex Consumption instance, which the host "
        "shares)"
    )
    print(
        f"(benchmark took {time.perf_counter() - started:.0f} s; reproduce: "
        ".venv/bin/python -m benchmarks.bench_memory)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
