"""The local pipeline: the app's own functions, with this process playing the Functions host.

Generate → partitioned stream → ScoreTransactions → store → change feed → PublishToPowerBI, each
function invoked through Azure's worker engine (`devhost.worker`) with the messages the host sends,
and the bindings reproduced with their Azure semantics: the Event Hubs trigger reads each partition in
order in batches of at most `maxEventBatchSize` (from host.json), the Cosmos DB outputs upsert by
id, and the change-feed trigger delivers persisted documents after a lease position. Its parts live
beside it (`writes`, `summary`, `retry`, `stream`, `store`, `outputs`); what stays here is the one
loop and the host's side of each binding, which change together. After a run, `serve` keeps the
loop going for events that arrive another way (an HTTP caller of POST /api/transactions).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from devhost.host_messages import cosmos_feed_input, eventhub_input, http_input
from devhost.outputs import BindingOutputs
from devhost.retry import RetryPolicy
from devhost.store import SQLiteStore
from devhost.stream import EventStream, Partition, StoredEvent, StreamSender
from devhost.summary import RunSummary
from devhost.worker import WorkerError, worker
from devhost.writes import ProcessWrites, Store, ThreadWrites, Writes
from shared import caches
from shared.generation import sender as event_sender

if TYPE_CHECKING:
    from devhost.label_history import History

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
LEASE_NAME = "PublishToPowerBI"


class Observer(Protocol):
    """Receives what the pipeline does (the live dashboard implements it)."""

    def record_generated(self, count: int) -> None: ...
    def record_published(self, rows: Sequence[Mapping[str, Any]]) -> None: ...
    def record_rejected(self, count: int, reasons: Mapping[str, int] | None = None) -> None: ...
    def record_latencies(self, seconds: Sequence[float]) -> None: ...


def host_event_hub_options(host_json: Path = ROOT / "host.json") -> dict[str, int]:
    """Batch size and prefetch the host would use, read from host.json (extension defaults otherwise)."""
    options = json.loads(host_json.read_text()).get("extensions", {}).get("eventHubs", {})
    return {
        "max_batch": int(options.get("maxEventBatchSize", 100)),
        "prefetch": int(options.get("prefetchCount", 300)),
    }


@dataclass(frozen=True, slots=True)
class _PendingWrite:
    partition: Partition
    next_sequence: int
    events: list[StoredEvent]
    scored: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    future: Future[float]


@dataclass(frozen=True)
class RunOptions:
    events: int = 10_000
    """Transactions to generate (in `records_per_event` per event)."""
    rate: float | None = None
    """Transactions per second to generate; None generates as fast as the pipeline consumes."""
    partitions: int = 4
    duration_s: float | None = None
    """Stop generating after this many seconds even if `events` were not all sent."""
    max_batch: int = 1000
    prefetch: int = 2000
    chunk: int = 1000
    """Transactions per GenerateTransactions call (bounded by GENERATE_MAX_COUNT)."""
    publish_batch: int | None = None
    """Change-feed documents per PublishToPowerBI invocation; None takes the trigger's maxItemsPerInvocation."""
    publish_retry: RetryPolicy | None = None
    """Override PublishToPowerBI's own retry policy (tests use short intervals)."""
    score_retry: RetryPolicy | None = None
    """Override ScoreTransactions' own retry policy (tests use short intervals)."""
    publish_drain_s: float = 60.0
    """After generation ends, how long to keep retrying a failing publish before reporting rows unpublished."""
    retain_per_partition: int = 10_000
    """Events kept per partition for replays, like a hub's retention: bounded so memory stays flat."""
    records_per_event: int = 1
    """Transactions per event the generator packs (GENERATOR_RECORDS_PER_EVENT); 1 sends bare transactions."""
    behaviour_state: str | None = None
    """BEHAVIOUR_STATE for the run. None: `cosmos` when the store is Cosmos DB and `CosmosDBConnection` is set
    (the function reads and writes the profiles container itself, as on Azure), otherwise `memory` (the
    states live in the worker process)."""


def _merchant_frauds_explain(doc: Mapping[str, Any]) -> bool:
    """Whether a top-three reason is a merchant window holding confirmed frauds.

    Not any merchant reason: "no confirmed outcomes at this merchant" is one too, and explains
    flags even with no label history at all.
    """
    features = doc.get("behaviour") or {}
    for reason in doc.get("reasons", ()):
        name = str(reason.get("field", ""))
        if name.startswith("merchant_"):
            window = name.rsplit("_", 1)[-1]
            labelled = features.get(f"merchant_labelled_{window}", 0.0)
            if labelled * features.get(f"merchant_fraud_rate_{window}", 0.0) >= 0.5:
                return True
    return False


class LocalPipeline:
    """Runs the app's functions end to end against a `Store`, reporting to an optional `Observer`."""

    def __init__(self, store: Store, options: RunOptions, observer: Observer | None = None) -> None:
        self.store = store
        self.options = options
        self.observer = observer
        self.stream = EventStream(options.partitions, options.retain_per_partition)
        self.summary = RunSummary()
        # The host hands the worker its app settings as environment variables; these two are the
        # local host's own choices (how many partitions its stream has, what the generator packs).
        os.environ["GENERATOR_RECORDS_PER_EVENT"] = str(options.records_per_event)
        os.environ["EVENT_HUB_PARTITION_COUNT"] = str(options.partitions)
        database = getattr(store, "database_name", None)
        cosmos = database is not None and bool(os.environ.get("CosmosDBConnection"))  # noqa: SIM112
        os.environ["BEHAVIOUR_STATE"] = options.behaviour_state or ("cosmos" if cosmos else "memory")
        if database is not None:
            os.environ["COSMOS_DATABASE"] = database
        # The settings above changed: the worker process reads them again, with a fresh state store.
        caches.reset("settings", "state store")
        # This process plays Event Hubs: the generators' SDK sender appends to the local stream's
        # partitions, by partition id, as the producer client would send to the hub's.
        event_sender.install(StreamSender(self.stream))
        self._worker = worker()
        self.outputs = BindingOutputs(self._worker, self.stream, store)
        """Writes the Event Hubs and Cosmos DB outputs of invocations outside the scoring loop."""
        self._stop = threading.Event()
        self._writes: Writes = ProcessWrites(store) if isinstance(store, SQLiteStore) else ThreadWrites(store)
        self._pending: deque[_PendingWrite] = deque()
        self._max_pending = 2 * options.partitions
        self._retry = options.publish_retry or RetryPolicy.of("PublishToPowerBI")
        self._score_retry = options.score_retry or RetryPolicy.of("ScoreTransactions")
        self._attempts: Counter[str] = Counter()
        """Per partition: failed attempts of its oldest unstored batch (reset when one is stored)."""
        self._retry_at: dict[str, float] = {}
        (trigger,) = self._worker.bindings("PublishToPowerBI")
        self._publish_batch = options.publish_batch or int(trigger.get("maxItemsPerInvocation", 100))
        self._publish_attempts = 0
        self._publish_retry_at = 0.0
        self._lease = store.lease(LEASE_NAME)
        self.flagged_for_merchant = 0
        """Flagged payments explained by confirmed frauds at their merchant (`_merchant_frauds_explain`)."""

    def close(self) -> None:
        """Finish outstanding writes and stop the writer; the pipeline cannot run after this."""
        while self._pending:
            self._settle(block=True)
        self._writes.close()
        event_sender.install(None)

    def __enter__(self) -> LocalPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stop(self) -> None:
        """Stop generating (from another thread); what was generated is still scored, stored and published."""
        self._stop.set()

    # -- the host's part for each binding -------------------------------------------------------

    def _generate_chunk(self, count: int) -> int:
        t0 = time.perf_counter()
        result = self._worker.invoke("GenerateTransactions", *http_input(params={"count": str(count)}))
        if result.returned["status_code"] != 200:
            raise RuntimeError(
                f"GenerateTransactions answered {result.returned['status_code']}: {result.returned['body']!r}"
            )
        reply = orjson.loads(result.returned["body"])
        # GENERATOR_SENDER=binding sets `out`: the host spreads the output binding's events round-robin.
        self.outputs.deliver("GenerateTransactions", result)
        self.summary.generated += reply["transactions"]
        self.summary.events += reply["events"]
        self.summary.stage_seconds["generate"] += time.perf_counter() - t0
        if self.observer:
            self.observer.record_generated(reply["transactions"])
        return int(reply["transactions"])

    def _score_batch(self, partition: Partition, batch: list[StoredEvent]) -> None:
        """Invoke ScoreTransactions on one delivery and hand its outputs to the writer thread."""
        t0 = time.perf_counter()
        message = eventhub_input(
            [e.body for e in batch],
            partition=partition.id,
            first_sequence_number=batch[0].sequence_number,
            enqueued=[datetime.fromtimestamp(e.enqueued_at, UTC) for e in batch],
        )
        t1 = time.perf_counter()
        try:
            result = self._worker.invoke("ScoreTransactions", *message)
        except WorkerError:
            self._failed(partition, "ScoreTransactions failed")
            return
        t2 = time.perf_counter()
        scored_docs, rejected_docs = result.documents("scored"), result.documents("rejected")
        # The host writes the outputs after the function returns, while the next invocation runs;
        # a writer thread does the same here (SQLite works outside the GIL), so storing overlaps scoring.
        future = self._writes.upsert(scored_docs, rejected_docs)
        self._pending.append(
            _PendingWrite(partition, batch[-1].sequence_number + 1, batch, scored_docs, rejected_docs, future)
        )
        stages = self.summary.stage_seconds
        stages["deliver (host)"] += t1 - t0
        stages["score (worker + function)"] += t2 - t1
        stages["store (hand-off)"] += time.perf_counter() - t2

    def _failed(self, partition: Partition, what: str) -> None:
        """An invocation of this partition failed (in the function or writing its outputs): retry per policy.

        As the host does with ScoreTransactions' `@retry`: the checkpoint stays, the batch is delivered
        again after the policy's backoff, and the partition's later batches (already scored, not yet
        stored) are dropped, to be delivered again after it. Other partitions go on.
        """
        self._pending = deque(w for w in self._pending if w.partition is not partition)
        partition.delivered = partition.checkpoint
        self._attempts[partition.id] += 1
        attempt = self._attempts[partition.id]
        if not self._score_retry.allows(attempt):
            raise RuntimeError(f"{what} on partition {partition.id} past its retry policy")
        delay = self._score_retry.delay_s(attempt)
        self._retry_at[partition.id] = time.monotonic() + delay
        self.summary.retries += 1
        logger.warning("%s on partition %s; retry %d in %.1f s", what, partition.id, attempt, delay)

    def _settle(self, block: bool) -> bool:
        """Commit checkpoints for writes that finished, oldest first; with `block`, wait for the oldest."""
        settled = False
        while self._pending and (block or self._pending[0].future.done()):
            write = self._pending.popleft()
            try:
                stored_at = write.future.result()
            except Exception:  # the output writes failed, so the invocation failed, as the host sees it
                logger.debug("storing partition %s's batch failed", write.partition.id, exc_info=True)
                self._failed(write.partition, "storing ScoreTransactions' outputs failed")
                block = False
                continue
            self._attempts.pop(write.partition.id, None)
            t0 = time.perf_counter()
            # Checkpoint only after the outputs are stored, as the host does.
            write.partition.checkpoint = write.next_sequence
            self._account(write, stored_at)
            self.summary.stage_seconds["bookkeeping"] += time.perf_counter() - t0
            settled = True
            block = False
        return settled

    def _account(self, write: _PendingWrite, stored_at: float) -> None:
        latencies = [stored_at - e.enqueued_at for e in write.events]
        # One latency per transaction: each event's counts as often as it held documents.
        per_event = Counter(d["sequence_number"] for docs in (write.scored, write.rejected) for d in docs)
        s = self.summary
        s.latency.add(latencies, [per_event.get(e.sequence_number, 0) for e in write.events])
        s.scored += len(write.scored)
        s.rejected += len(write.rejected)
        for d in write.scored:
            if d["is_flagged"]:
                s.flagged += 1
                s.true_positives += d["is_fraud"] == 1
                self.flagged_for_merchant += _merchant_frauds_explain(d)
            s.labelled_fraud += d["is_fraud"] == 1
        reasons = Counter(f"{d['field']}:{d['reason']}" for d in write.rejected)
        s.rejected_reasons.update(reasons)
        if self.observer:
            self.observer.record_latencies(latencies)
            if write.rejected:
                self.observer.record_rejected(len(write.rejected), reasons)

    def _consume(self) -> bool:
        progressed = False
        now = time.monotonic()
        for p in self.stream.partitions:
            if len(self._pending) >= self._max_pending:
                self._settle(block=True)
            if self._retry_at.get(p.id, 0.0) > now:
                continue  # waiting out the retry policy's backoff
            batch = p.deliver(self.options.max_batch)
            if batch:
                self._score_batch(p, batch)
                progressed = True
        return progressed

    def _publish_changes(self) -> int:
        """Deliver the next change-feed batch to PublishToPowerBI, with the function's retry policy.

        As on Azure: the lease advances only when the invocation succeeds; a raised invocation is
        retried after the policy's exponential backoff (scoring goes on meanwhile); once the
        retries are spent the batch is skipped and counted as unpublished.
        """
        from shared.publishing.rows import to_row

        if time.monotonic() < self._publish_retry_at:
            return 0
        t0 = time.perf_counter()
        position = self._lease
        docs, new_position = self.store.changes("scored", position, self._publish_batch)
        if not docs:
            return 0
        t1 = time.perf_counter()
        try:
            self._worker.invoke("PublishToPowerBI", *cosmos_feed_input(docs))
        except Exception:  # a failed invocation (WorkerError), as the host sees it: retry per policy
            self._publish_attempts += 1
            if self._publish_attempts <= self._retry.max_retries:
                delay = self._retry.delay_s(self._publish_attempts)
                logger.warning(
                    "PublishToPowerBI failed; retry %d/%d in %.1f s (scoring continues)",
                    self._publish_attempts,
                    self._retry.max_retries,
                    delay,
                )
                self._publish_retry_at = time.monotonic() + delay
                return 0
            logger.exception("PublishToPowerBI failed past its retries; skipping %d rows", len(docs))
            self.summary.unpublished += len(docs)
        else:
            self.summary.published += len(docs)
            if self.observer:
                self.observer.record_published([{**to_row(d), "reasons": d.get("reasons", [])} for d in docs])
        self._publish_attempts = 0
        # The lease is persisted by the writer thread, in order after the writes before it, so the
        # reader never waits for the store's write lock; this process reads its own copy.
        self._lease = new_position
        self._writes.commit_lease(LEASE_NAME, new_position)
        stages = self.summary.stage_seconds
        stages["change feed read"] += t1 - t0
        stages["publish (worker + function)"] += time.perf_counter() - t1
        return len(docs)

    def _drain_publishing(self) -> None:
        """Publish what is left, waiting out retries for at most `publish_drain_s` (its time: `drain_s`)."""
        started = time.monotonic()
        deadline = started + self.options.publish_drain_s
        said = False
        try:
            while time.monotonic() < deadline:
                if self._publish_changes():
                    continue
                if time.monotonic() >= self._publish_retry_at:
                    return  # nothing left to publish
                if not said:
                    # Otherwise the end of a run with a failing publish is a silent wait.
                    logger.warning(
                        "publishing is failing (see above): the run is over, and PublishToPowerBI's @retry policy is "
                        "waited out for up to %.0f s more before the rest is left unpublished (Ctrl-C stops now)",
                        deadline - time.monotonic(),
                    )
                    said = True
                time.sleep(min(0.05, max(self._publish_retry_at - time.monotonic(), 0.0)))
        finally:
            self.summary.drain_s += time.monotonic() - started

    # -- the run ---------------------------------------------------------------------------------

    def label_history(self, days: int) -> History:
        """Before `run`: `days` of the generator's stream before now, its known labels imported, aggregated once.

        The live run then continues the same stream, so merchant risk has a past to read
        (devhost/label_history.py says why and how).
        """
        from devhost import label_history

        return label_history.load(self._worker, days)

    def warm_up(self) -> None:
        """Load the model before the clock starts, as a warm Functions instance has (an empty batch loads it)."""
        self._worker.invoke("ScoreTransactions", *eventhub_input([]))

    def run(self, progress: Callable[[int], None] | None = None) -> RunSummary:
        """Generate `events` (at `rate`), score and store them all, publish the change feed; return the summary."""
        opts = self.options
        self.warm_up()
        started = time.perf_counter()
        deadline = None if opts.duration_s is None else started + opts.duration_s
        # Keep a full batch per partition queued and one being stored, bounded by prefetch: deep
        # enough for full batches, shallow enough that queueing does not dominate latency.
        # Per partition, since partitions are stored (and so checkpointed) independently.
        target_backlog = 2 * min(opts.max_batch, opts.prefetch)
        done_before = 0
        while True:
            now = time.perf_counter()
            generating = (
                self.summary.generated < opts.events
                and (deadline is None or now < deadline)
                and not self._stop.is_set()
            )
            while generating and self.stream.max_backlog() < target_backlog:
                allowed = opts.events - self.summary.generated
                if opts.rate is not None:
                    allowed = min(allowed, int((now - started) * opts.rate) - self.summary.generated)
                if allowed <= 0:
                    break
                self._generate_chunk(min(opts.chunk, allowed))
            progressed = self._consume()
            progressed = self._settle(block=False) or progressed
            self._publish_changes()
            done = self.summary.scored + self.summary.rejected
            if progress and done != done_before:
                progress(done - done_before)
                done_before = done
            finished_generating = (
                self.summary.generated >= opts.events
                or (deadline is not None and time.perf_counter() >= deadline)
                or self._stop.is_set()
            )
            if finished_generating and self.stream.backlog() == 0:
                break
            if not progressed:
                time.sleep(0.002)
        self.summary.elapsed_s = time.perf_counter() - started
        self._drain_publishing()
        return self.summary

    def serve(self, stop: threading.Event) -> None:
        """After `run`: deliver, store and publish whatever else reaches the stream, until `stop` is set."""
        while not stop.is_set():
            progressed = self._consume()
            progressed = self._settle(block=False) or progressed
            progressed = bool(self._publish_changes()) or progressed
            if not progressed:
                stop.wait(0.02)

    def replay(self) -> RunSummary:
        """Redeliver every retained event (a consumer restarted from old checkpoints) and drain again."""
        self.stream.rewind()
        while self._consume() or self._pending:
            self._settle(block=True)
        self._drain_publishing()
        return self.summary
