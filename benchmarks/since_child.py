"""One side of bench_since: ScoreTransactions through one source tree's worker, timed per invocation.

`benchmarks/bench_since.py` runs this file in a fresh process whose working directory and
`sys.path[0]` are the tree measured (the baseline's worktree or the current checkout), started with
`python -P` so this file's own folder is not on the path either: the trees share the package names
`shared`, `functions` and `devhost`, so one process must only ever see one of them. That is also
why it uses only what every tree since the baseline has: `devhost.worker` (the engine driver),
`devhost.host_messages.eventhub_input` and the app's settings from the environment. With
`--merchants` (trees with merchant risk) it fills the memory merchant store before the timed part;
with `--split` it wraps names inside the invocation to say where the time goes, in a run whose
times are not compared.

The records come as JSON Lines: the first `--warm` are played untimed (they fill the account
states), the rest are timed. Each event body is built from the lines' own bytes, so both trees
score byte-identical events when given the same file. The timed invocations run in lockstep with
the other side's process: this one says `ready` on stdout after the warm-up, then runs one
invocation per `go` line on stdin and answers `ok`, so the parent can alternate the two sides
invocation by invocation while the waiting one sits idle (anything the app prints goes to stderr).
The figures are one JSON file (`--out`), written after the last invocation.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

FUNCTION = "ScoreTransactions"
PARTITION = "0"
WARM_STAMP = "2026-01-01T00:00:00.000Z"
ENGINE_STEPS = (
    ("from_incoming_proto", "engine: convert"),
    ("run_sync_func", "engine: function"),
    ("to_outgoing_param_binding", "engine: encode outputs"),
)
"""The engine's own steps (azure_functions_runtime.handle_event, the venv's, so the same for both trees)."""
PHASES = (
    ("shared.scoring.batch", "decode", "decode events"),
    ("shared.scoring.batch", "validate_batch", "validate"),
    ("shared.scoring.batch", "event_time_faults", "event time"),
    ("shared.scoring.batch", "features_with_state", "account state"),
    ("shared.scoring.batch", "merchant_features", "merchant risk"),
    ("shared.scoring.batch", "encode", "encode matrix"),
    ("shared.scoring.model", "FraudModel.predict_proba", "predict"),
    ("shared.scoring.model", "FraudModel.contributions", "reasons"),
    ("shared.scoring.batch", "reason_lists", "reasons"),
    ("shared.scoring.batch", "scored_documents", "documents"),
    ("shared.scoring.batch", "rejected_documents", "documents"),
)
"""`score_batch`'s steps, by the names it calls; a tree without a name (merchant risk before it existed) skips it."""


def events(lines: Sequence[bytes], per_event: int) -> list[tuple[bytes, datetime, list[str]]]:
    """(body, enqueued time, record ids) per event: `{"records": [...]}` of the lines as they are (bare at 1).

    An event is enqueued when its newest payment happened: no earlier than its payments, and as
    close to them as a producer sending at once would put it.
    """
    import orjson

    out = []
    for start in range(0, len(lines), per_event):
        chunk = lines[start : start + per_event]
        records = [orjson.loads(line) for line in chunk]
        body = chunk[0] if per_event == 1 else b'{"records":[' + b",".join(chunk) + b"]}"
        newest = max(r["timestamp"] for r in records)
        out.append((body, datetime.fromisoformat(newest), [r["id"] for r in records]))
    return out


def wrap(owner: Any, name: str, slot: str, into: dict[str, float]) -> Callable[[], None]:
    """Replace `owner.name` by a version that adds its seconds to `into[slot]`; returns what undoes it.

    Standard library only, as this whole file (it runs inside any tree), so `bench_state` uses it too.
    """
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into[slot] = into.get(slot, 0.0) + time.perf_counter() - started

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


@contextmanager
def split(into: dict[str, float]) -> Iterator[list[str]]:
    """Time the engine's steps and `score_batch`'s phases while the block runs; yields the phases found."""
    import importlib

    import azure_functions_runtime.handle_event as engine

    restore = [wrap(engine, name, slot, into) for name, slot in ENGINE_STEPS]
    found = []
    for module_name, dotted, slot in PHASES:
        owner: Any = importlib.import_module(module_name)
        *path, name = dotted.split(".")
        for part in path:
            owner = getattr(owner, part)
        if hasattr(owner, name):
            restore.append(wrap(owner, name, slot, into))
            found.append(slot)
    try:
        yield list(dict.fromkeys(found))
    finally:
        for undo in restore:
            undo()


def fill_merchants(timed: Sequence[dict[str, Any]]) -> int:
    """A full merchant state for every merchant the timed payments name, in the memory store (trees with it)."""
    from benchmarks.bench_state import merchant_states
    from shared.behaviour.merchant_store import get_merchant_store

    store = get_merchant_store()
    if store is None:
        raise RuntimeError("MERCHANT_STATE is off in this process: no merchant store to fill")
    states = merchant_states(timed)
    for merchant_id, state in states.items():
        if not store.write(merchant_id, state, None, WARM_STAMP):
            raise RuntimeError(f"the merchant state of {merchant_id!r} could not be written")
    return len(states)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", type=Path, required=True, help="the source tree measured")
    p.add_argument("--records", type=Path, required=True, help="JSON Lines: warm-up records, then timed ones")
    p.add_argument("--warm", type=int, required=True, help="leading records played untimed")
    p.add_argument("--per-event", type=int, required=True)
    p.add_argument("--per-delivery", type=int, required=True, help="events per invocation")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--merchants", action="store_true", help="fill the memory merchant store before the timed part")
    p.add_argument("--split", action="store_true", help="time the steps inside each invocation")
    args = p.parse_args(argv)

    protocol, sys.stdout = sys.stdout, sys.stderr
    tree = args.tree.resolve()
    os.chdir(tree)
    sys.path.insert(0, str(tree))
    import orjson

    from devhost.host_messages import eventhub_input
    from devhost.worker import decode_typed_data, protos, worker

    lines = args.records.read_bytes().splitlines()
    warm_events = events(lines[: args.warm], args.per_event)
    timed_events = events(lines[args.warm :], args.per_event)
    engine = worker()
    success = protos().StatusResult.Success
    sequence = 0

    def deliveries(evs: list[tuple[bytes, datetime, list[str]]]) -> Iterator[tuple[bytes, list[str]]]:
        nonlocal sequence
        for start in range(0, len(evs), args.per_delivery):
            part = evs[start : start + args.per_delivery]
            inputs, metadata = eventhub_input(
                [e[0] for e in part], partition=PARTITION, first_sequence_number=sequence, enqueued=[e[1] for e in part]
            )
            sequence += len(part)
            yield engine.invocation_request(FUNCTION, inputs, metadata), [i for e in part for i in e[2]]

    def outcome(answer: bytes, ids: list[str]) -> tuple[list[dict[str, Any]], int]:
        """The scored documents and the count rejected; every id sent must come back scored exactly once."""
        response = protos().InvocationResponse.FromString(answer)
        if response.result.status != success:
            raise RuntimeError(f"invocation failed: {response.result.exception.message}")
        out = {b.name: decode_typed_data(b.data) or [] for b in response.output_data}
        scored, rejected = out.get("scored", []), out.get("rejected", [])
        if rejected or sorted(d["id"] for d in scored) != sorted(ids):
            first = rejected[0].get("reason") if rejected else None
            raise RuntimeError(f"{len(scored)} of {len(ids)} scored, {len(rejected)} rejected (first: {first!r})")
        return scored, len(rejected)

    warm_seconds = time.perf_counter()
    for wire, ids in deliveries(warm_events):
        outcome(engine.invoke_bytes(wire), ids)
    warm_seconds = time.perf_counter() - warm_seconds
    merchants = fill_merchants([orjson.loads(line) for line in lines[args.warm :]]) if args.merchants else 0
    gc.collect()  # the warm-up's garbage is not the timed part's
    protocol.write("ready\n")
    protocol.flush()

    seconds: list[float] = []
    sizes: list[int] = []
    scored_count = rejected_count = 0
    histories: Counter[str] = Counter()
    steps: dict[str, float] = {}
    timing: AbstractContextManager[list[str]] = split(steps) if args.split else nullcontext([])
    with timing as found:
        for wire, ids in deliveries(timed_events):
            if sys.stdin.readline().strip() != "go":
                raise RuntimeError("stdin closed before the last timed invocation")
            started = time.perf_counter()
            answer = engine.invoke_bytes(wire)
            seconds.append(time.perf_counter() - started)
            scored, rejected = outcome(answer, ids)
            sizes.append(len(ids))
            scored_count += len(scored)
            rejected_count += rejected
            for doc in scored:
                for key in ("account_history", "merchant_history"):
                    if key in doc:
                        histories[f"{key}={doc[key]}"] += 1
            protocol.write("ok\n")
            protocol.flush()

    # The check that this process saw one tree only: every module of the app's packages came from it.
    files = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
    foreign = sorted(
        name
        for name, file in files.items()
        if name.split(".")[0] in ("shared", "functions", "devhost", "benchmarks", "function_app")
        and file is not None
        and not Path(file).resolve().is_relative_to(tree)
    )
    if foreign:
        raise RuntimeError(f"modules imported from outside {tree}: {', '.join(foreign[:5])}")
    result = {
        "tree": str(tree),
        "python": sys.version.split()[0],
        "warm_records": args.warm,
        "warm_seconds": warm_seconds,
        "seconds": seconds,
        "transactions": sizes,
        "scored": scored_count,
        "rejected": rejected_count,
        "merchants": merchants,
        "histories": dict(histories),
        "steps": steps,
        "phases": found,
    }
    args.out.write_bytes(orjson.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
