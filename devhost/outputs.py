"""The host's part after an invocation: what a function set on its Event Hubs and Cosmos DB outputs, written.

The local runner writes ScoreTransactions' documents itself (in order, off the scoring loop, before
it checkpoints); every other invocation (the generators, whether the runner or an HTTP caller
started them, and any function added later) has its outputs written here, by binding type, read from
the engine's metadata: an `eventHub` output's events are appended to the local stream, spread over
its partitions as the host spreads a binding's events; a `cosmosDB` output's documents are upserted
into the container its `containerName` names (`%SETTING%` resolved from the environment, as the
host resolves it, else the binding's name).
"""

from __future__ import annotations

import os
import re
from typing import Any

import orjson

from devhost.stream import EventStream
from devhost.worker import Invocation, Worker
from devhost.writes import Store

_SETTING = re.compile(r"^%([^%]+)%$")


def resolve(value: str, fallback: str) -> str:
    """A binding property: `%NAME%` becomes app setting NAME (its fallback when unset), anything else as is."""
    match = _SETTING.match(value.strip())
    if match is None:
        return value
    return os.environ.get(match[1], "").strip() or fallback


def _event_bodies(value: Any) -> list[bytes]:
    items = value if isinstance(value, list) else [value]
    return [v.encode() if isinstance(v, str) else v if isinstance(v, bytes) else orjson.dumps(v) for v in items]


class BindingOutputs:
    """Writes one invocation's Event Hubs and Cosmos DB outputs as the host would (an `OutputSink`)."""

    def __init__(self, worker: Worker, stream: EventStream, store: Store) -> None:
        self._worker = worker
        self._stream = stream
        self._store = store

    def deliver(self, function: str, invocation: Invocation) -> None:
        """Write every output the function set; raise what the store or stream raises (the invocation failed)."""
        for binding in self._worker.bindings(function):
            if str(binding.get("direction", "")).upper() != "OUT":
                continue
            value = invocation.outputs.get(str(binding["name"]))
            if value is None:
                continue  # never set: the host writes nothing
            kind = str(binding.get("type", ""))
            if kind == "eventHub":
                self._stream.send(_event_bodies(value))
            elif kind == "cosmosDB":
                container = resolve(str(binding.get("containerName", "")), str(binding["name"]))
                documents = value if isinstance(value, list) else [value]
                self._store.upsert(container, documents)
