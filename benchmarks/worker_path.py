"""ScoreTransactions through Azure's worker engine, with where the time goes inside it.

What is timed is the engine's whole part of an invocation: the `InvocationRequest` bytes the host
would send in, the `InvocationResponse` bytes out (devhost.worker `invoke_bytes`). Inside that, the
engine's own three steps are timed by wrapping the names its `invocation_request` calls (benchmark
only; the app never patches the engine): `from_incoming_proto` (turning the host's messages into
`azure.functions` objects: for Event Hubs, one `EventHubEvent` per event, each enqueued time parsed
by the library), `run_sync_func` (our function, on the engine's thread pool) and
`to_outgoing_param_binding` (the outputs to protobuf). The rest is protobuf parsing and
serialising, the hop to the engine's event loop and back, and the thread-pool hand-off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devhost.host_messages import eventhub_input
from devhost.worker import Worker


@dataclass
class Split:
    """Seconds spent per engine step over a run, and per-invocation totals."""

    convert: float = 0.0
    function: float = 0.0
    encode: float = 0.0
    totals: list[float] = field(default_factory=list)
    transactions: int = 0

    def per_transaction_us(self) -> dict[str, float]:
        total = sum(self.totals)
        n = max(self.transactions, 1)
        rest = total - self.convert - self.function - self.encode
        return {
            "total": total / n * 1e6,
            "input conversion": self.convert / n * 1e6,
            "function": self.function / n * 1e6,
            "output encoding": self.encode / n * 1e6,
            "rest": rest / n * 1e6,
        }


@contextmanager
def instrumented(split: Split) -> Iterator[None]:
    """Time the engine's conversion, function and encoding steps while the block runs."""
    import azure_functions_runtime.handle_event as engine

    names = {"from_incoming_proto": "convert", "run_sync_func": "function", "to_outgoing_param_binding": "encode"}
    originals = {name: getattr(engine, name) for name in names}

    def timed(original: Callable[..., Any], slot: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                setattr(split, slot, getattr(split, slot) + time.perf_counter() - started)

        return wrapper

    for name, slot in names.items():
        setattr(engine, name, timed(originals[name], slot))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(engine, name, original)


def request_bytes(
    worker: Worker, bodies: Sequence[bytes], enqueued: Sequence[datetime], first_sequence_number: int
) -> bytes:
    """The host's InvocationRequest for one delivery, as bytes (built outside the timed region)."""
    inputs, metadata = eventhub_input(bodies, enqueued=enqueued, first_sequence_number=first_sequence_number)
    return worker.invocation_request("ScoreTransactions", inputs, metadata)


def invoke_timed(worker: Worker, wire: bytes, split: Split, transactions: int) -> bytes:
    """One invocation from request bytes to response bytes, added to `split`."""
    started = time.perf_counter()
    answer = worker.invoke_bytes(wire)
    split.totals.append(time.perf_counter() - started)
    split.transactions += transactions
    return answer
