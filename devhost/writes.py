"""Where the local host writes the outputs, in order and off the scoring loop: a thread or the SQLite writer process."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from devhost.store import SQLiteStore


class Store(Protocol):
    """What the runner needs from a document store: the Cosmos DB binding semantics."""

    def upsert(self, container: str, documents: Sequence[Mapping[str, Any]], /) -> object: ...
    def changes(self, container: str, after: int, limit: int, /) -> tuple[list[dict[str, Any]], int]: ...
    def lease(self, name: str, /) -> int: ...
    def commit_lease(self, name: str, position: int, /) -> None: ...
    def count(self, container: str, /) -> int: ...


class Writes(Protocol):
    """Where the runner's output writes happen, in submission order, off the scoring loop."""

    def upsert(self, scored: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> Future[float]: ...
    def commit_lease(self, name: str, position: int) -> object: ...
    def close(self) -> None: ...


class ThreadWrites:
    """One writer thread: for stores whose writes wait on the network (Cosmos DB), not on the CPU."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")

    def _upsert(self, scored: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> float:
        self._store.upsert("scored", scored)
        self._store.upsert("rejected", rejected)
        return time.time()

    def upsert(self, scored: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> Future[float]:
        return self._pool.submit(self._upsert, scored, rejected)

    def commit_lease(self, name: str, position: int) -> object:
        return self._pool.submit(self._store.commit_lease, name, position)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class ProcessWrites:
    """The embedded store's writes in a writer process: the scoring loop only serialises documents."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._process = store.process_writer()

    def upsert(self, scored: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> Future[float]:
        done = self._process.upsert_rows("scored", self._store.rows("scored", scored))
        if rejected:
            # One worker runs submissions in order, so this one finishing means both are stored.
            done = self._process.upsert_rows("rejected", self._store.rows("rejected", rejected))
        return done

    def commit_lease(self, name: str, position: int) -> object:
        return self._process.commit_lease(name, position)

    def close(self) -> None:
        self._process.close()
