"""The embedded document store: Cosmos DB containers as SQLite tables, with a change feed.

The local runner writes what the functions set on their Cosmos DB outputs here, with the output
binding's semantics: an upsert keyed by (partition key value, id), so a replayed batch overwrites.
Each write takes the next log sequence number, which gives the change feed Cosmos DB has (latest
version of each item, in write order) and lets a lease remember how far the publisher got.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from shared.contract.partitions import COSMOS_PARTITION_KEY_PATHS

PARTITION_KEYS: dict[str, str] = {
    name: path.strip("/") for name, path in COSMOS_PARTITION_KEY_PATHS.items() if name != "leases"
}
"""Partition key property per container, as provisioned in Azure (the lease container is this store's `leases`)."""

BYTES_PER_TRANSACTION = 1_500
"""File bytes per stored transaction, for disk checks: 1,435 measured (60,000 scored documents: 86 MB), rounded up."""

Row = tuple[str | None, str, bytes]


class SQLiteStore:
    """Containers of JSON documents in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path, partition_keys: Mapping[str, str] = PARTITION_KEYS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._partition_keys = dict(partition_keys)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # WAL + NORMAL: durable across a crash of this process, one fsync per checkpoint, not per write.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, position INTEGER NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS lsn (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER)")
        self._db.execute("INSERT OR IGNORE INTO lsn VALUES (0, 0)")
        for container in self._partition_keys:
            self._create(container)
        # Reads get their own connection: with WAL they never wait for a write in progress, so the
        # runner's writer thread and the change-feed reader run side by side.
        self._read_lock = threading.Lock()
        self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    def _create(self, container: str) -> None:
        table = self._table(container)
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(pk TEXT, id TEXT NOT NULL, lsn INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (pk, id))"
        )
        self._db.execute(f'CREATE INDEX IF NOT EXISTS "c_{container}_lsn" ON {table} (lsn)')

    def _table(self, container: str) -> str:
        if container not in self._partition_keys:
            raise KeyError(f"unknown container {container!r}")
        return f'"c_{container}"'

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def upsert(self, container: str, documents: Sequence[Mapping[str, Any]]) -> None:
        """Write documents as the Cosmos DB output binding does: insert or replace by (partition key, id)."""
        self.upsert_rows(container, self.rows(container, documents))

    def rows(self, container: str, documents: Sequence[Mapping[str, Any]]) -> list[Row]:
        """Documents as (partition key value, id, JSON body) rows, ready for `upsert_rows`."""
        pk = self._partition_keys[container]
        return [(None if d.get(pk) is None else str(d[pk]), str(d["id"]), orjson.dumps(d)) for d in documents]

    def upsert_rows(self, container: str, rows: Sequence[Row]) -> None:
        """Upsert prepared rows in one transaction, each taking the next log sequence number."""
        if not rows:
            return
        table = self._table(container)
        with self._transaction() as db:
            (last,) = db.execute("SELECT value FROM lsn").fetchone()
            db.executemany(
                f"INSERT INTO {table} (pk, id, lsn, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (pk, id) DO UPDATE SET lsn = excluded.lsn, body = excluded.body",
                [(pk, doc_id, last + i + 1, body) for i, (pk, doc_id, body) in enumerate(rows)],
            )
            db.execute("UPDATE lsn SET value = ?", (last + len(rows),))

    def process_writer(self) -> SQLiteWriterProcess:
        """A writer in its own process for this file (see `SQLiteWriterProcess`)."""
        return SQLiteWriterProcess(self.path, self._partition_keys)

    def changes(self, container: str, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Up to `limit` documents changed after log position `after`, oldest first, and the new position."""
        table = self._table(container)
        with self._read_lock:
            rows = self._reader.execute(
                f"SELECT lsn, body FROM {table} WHERE lsn > ? ORDER BY lsn LIMIT ?", (after, limit)
            ).fetchall()
        if not rows:
            return [], after
        return [orjson.loads(body) for _, body in rows], rows[-1][0]

    def lease(self, name: str) -> int:
        """The change-feed position a consumer last committed (0 if it never ran)."""
        with self._read_lock:
            row = self._reader.execute("SELECT position FROM leases WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def commit_lease(self, name: str, position: int) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO leases VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (name, position),
            )

    def count(self, container: str) -> int:
        with self._read_lock:
            (n,) = self._reader.execute(f"SELECT COUNT(*) FROM {self._table(container)}").fetchone()
        return int(n)

    def ids(self, container: str) -> list[str]:
        with self._read_lock:
            return [row[0] for row in self._reader.execute(f"SELECT id FROM {self._table(container)}")]

    def read_all(self, container: str) -> list[dict[str, Any]]:
        with self._read_lock:
            rows = self._reader.execute(f"SELECT body FROM {self._table(container)} ORDER BY lsn").fetchall()
        return [orjson.loads(body) for (body,) in rows]

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._db.close()
            self._reader.close()


# -- a writer process ------------------------------------------------------------------------------

_worker_store: SQLiteStore | None = None


def _exit_with(parent: int) -> None:
    """Exit once `parent` is gone, however it went (SIGKILL included): nobody is left to wait for the writes."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _worker_open(path: Path, partition_keys: Mapping[str, str], parent: int) -> None:
    global _worker_store
    # Ctrl-C reaches the whole process group; the parent decides when the writer stops (it closes the pool).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    _worker_store = SQLiteStore(path, partition_keys)


def _worker_ready() -> bool:
    return _worker_store is not None


def _worker_upsert(container: str, rows: Sequence[Row]) -> float:
    assert _worker_store is not None
    _worker_store.upsert_rows(container, rows)
    return time.time()


def _worker_commit_lease(name: str, position: int) -> float:
    assert _worker_store is not None
    _worker_store.commit_lease(name, position)
    return time.time()


class SQLiteWriterProcess:
    """Upserts and lease commits for one SQLite file, run in order by a single worker process.

    The local runner's scoring loop is CPU-bound Python; a writer thread would wait for the GIL
    between every row it binds, so writes happen in a process of their own (spawned, so it loads
    neither the model nor the functions). Callers serialise documents first (`SQLiteStore.rows`),
    so only bytes cross the pipe. One worker means the writes land in submission order.
    """

    def __init__(self, path: Path, partition_keys: Mapping[str, str]) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_open,
            initargs=(path, dict(partition_keys), os.getpid()),
        )
        # Start the writer now and wait until it has opened the file: spawned lazily at the first write,
        # a stop (Ctrl-C, SIGTERM) arriving while it still read its start-up data from the pipe left it
        # printing a traceback (EOFError) as the parent closed the pool.
        if not self._pool.submit(_worker_ready).result(timeout=120):
            raise RuntimeError(f"the SQLite writer process did not open {path}")

    def upsert_rows(self, container: str, rows: Sequence[Row]) -> Future[float]:
        """Write the rows; the future gives the wall-clock time they were committed."""
        return self._pool.submit(_worker_upsert, container, list(rows))

    def commit_lease(self, name: str, position: int) -> Future[float]:
        return self._pool.submit(_worker_commit_lease, name, position)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
