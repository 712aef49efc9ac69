"""A Cosmos DB outage in the middle of a local run: nothing lost, nothing duplicated, every partition resumes.

The local runner plays the Functions host with ScoreTransactions' own `@retry` policy (read from the
worker engine's metadata, as the host receives it; only its intervals are shortened here): when the
host's writes of the function's outputs fail, the invocation has failed, the partition's checkpoint
stays, and the batch is delivered again after the backoff. The outage is real at the TCP level: a
proxy in front of `@vercel/cosmosdb-server` (which keeps its data in memory, so it is blocked rather
than restarted) drops every connection and refuses new ones for a few seconds.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from azure.cosmos import CosmosClient

from devhost.cosmos_store import REJECTED, SCORED, CosmosStore
from devhost.retry import RetryPolicy
from devhost.runner import LocalPipeline, RunOptions
from tests.integration.cosmos_server import CosmosServer

pytestmark = pytest.mark.integration


class BlockingProxy:
    """A TCP proxy on loopback that can be switched off: open connections dropped, new ones closed at once."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.blocked = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.blocked.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target))
            for s in (client, upstream):  # no Nagle delay on small request/response pairs
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()

    def block(self) -> None:
        self.blocked.set()
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def unblock(self) -> None:
        self.blocked.clear()

    def close(self) -> None:
        self._closed = True
        self._listener.close()


@pytest.fixture
def blocked_store(
    cosmos_server: CosmosServer, cosmos_client: CosmosClient
) -> Iterator[tuple[CosmosStore, BlockingProxy]]:
    """A store whose every request goes through the proxy, with few SDK retries so failures surface quickly."""
    proxy = BlockingProxy(int(cosmos_server.endpoint.rsplit(":", 1)[1].rstrip("/")))
    client = CosmosClient(
        f"https://127.0.0.1:{proxy.port}/",
        cosmos_server.key,
        connection_verify=False,
        # The server names its own address as the account's write location: without this the SDK
        # would go around the proxy after its first request.
        enable_endpoint_discovery=False,
        retry_total=1,
        retry_connect=1,
        retry_read=1,
        retry_backoff_max=1,
        connection_timeout=2,
    )
    database = f"test-{uuid.uuid4().hex}"
    yield CosmosStore(client, database), proxy
    proxy.close()
    cosmos_client.delete_database(database)


def test_an_outage_mid_run_loses_and_duplicates_nothing(blocked_store: tuple[CosmosStore, BlockingProxy]) -> None:
    """Writes fail for three seconds mid-run: retried per policy, then every transaction stored exactly once."""
    store, proxy = blocked_store
    options = RunOptions(
        events=6000,
        rate=1500,
        partitions=2,
        max_batch=200,
        chunk=300,
        behaviour_state="memory",
        score_retry=RetryPolicy(max_retries=-1, minimum_s=0.2, maximum_s=1.0),
        publish_drain_s=5.0,
    )
    with LocalPipeline(store, options) as pipeline:
        pipeline.warm_up()

        def outage() -> None:
            time.sleep(1.0)
            proxy.block()
            time.sleep(3.0)
            proxy.unblock()

        t = threading.Thread(target=outage)
        t.start()
        summary = pipeline.run()
        t.join()
    assert summary.retries > 0
    assert summary.scored + summary.rejected == summary.generated == 6000
    assert store.count(SCORED) == summary.scored
    assert store.count(REJECTED) == summary.rejected == 0
    ids = store.ids(SCORED)
    assert len(ids) == len(set(ids)) == 6000
    assert {p.checkpoint for p in pipeline.stream.partitions} == {p.next_sequence for p in pipeline.stream.partitions}
