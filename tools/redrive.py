"""Re-send the event bodies ScoreTransactions rejected, once the fault behind them is fixed.

Why: the scorer never drops an event. What it cannot score (a bad field, a model that failed its
integrity check, an internal error) goes to the Cosmos DB `rejected` container with its reason and
its raw body. After the fix (a producer corrected, a model redeployed), this command reads those
documents and sends their bodies back to the event hub, byte for byte, to be scored like any event.

    python -m tools.redrive --endpoint https://<account>.documents.azure.com:443/ \\
        --namespace <ns>.servicebus.windows.net --reason model_unavailable --dry-run
    python -m tools.redrive --endpoint https://<account>.documents.azure.com:443/ \\
        --namespace <ns>.servicebus.windows.net --reason invalid_value --reason internal_error \\
        --since 2026-11-21T09:00:00Z --delete-sent
    python -m tools.redrive --field timestamp --event-hub transactions --delete-sent

Where from and to: `--endpoint` reads the account with DefaultAzureCredential (azure-identity);
without it, the connection string in `CosmosDBConnection` (the app's own setting). `--namespace`
sends with DefaultAzureCredential; without it, the connection string in `EVENT_HUB_CONNECTION_STRING`
(then `$EventHubConnection__fullyQualifiedNamespace`). Connection strings are read from the
environment only, never from the command line, so they stay out of shell history and the process
list. Certificate checks are skipped only for a loopback Cosmos endpoint (emulators and the test
server use self-signed certificates).

What is chosen: `--reason` and `--field` (each repeatable, any of the values), `--since` (rejected at
or after; a date, or a time with or without zone, UTC if none), in `--database`/`--container`
(default `fraud`/`rejected`, or $COSMOS_DATABASE / $COSMOS_REJECTED_CONTAINER). Only documents
rejected before the run started are read, so a body rejected again while the run goes on is not
picked up and re-sent in a loop. The queries are plain parameterised `SELECT ... WHERE`, read page by
page (`--page-size`): no OFFSET/LIMIT, which the local test server lacks.

What is sent: `raw_body` as UTF-8, or `raw_body_base64` decoded, unchanged. A record of an envelope
(`record_index` set) was stored alone and goes back as a bare event. A document whose body was cut
when stored (`raw_body_truncated`: larger than a rejected document keeps) cannot be re-driven whole:
it is skipped, counted and left in place, as is one whose stored body does not match its
`raw_body_bytes`, and one too large for a batch. A body that is a JSON object with a string
`account_id` is sent with that as its partition key, so an account's re-sent payments land on one
partition (the one `tools.send_events --partition-key account_id` picks); others go without a key.
Bodies are grouped by key (a batch holds one key only) and, within a page, put back in the order
they were first enqueued. `create_batch()` batches are filled until the SDK says one is full, which
is then sent and a new one started.

Re-running: without `--delete-sent` the documents stay, and a second run sends them again. That is
harmless: scored documents are upserted by transaction id, and the behaviour state counts a payment
id once. With `--delete-sent`, each document is deleted once the batch holding its body was sent,
so a second run does not send it again; a failed send stops the run and deletes nothing of that
batch. A body rejected again gets a new rejected document (its id comes from its new position).

`--dry-run` reads and plans, sends and deletes nothing, and says what would go. The last line sums
up: read, sent, skipped (truncated), deleted, by reason (sent of read).

The azure packages are imported only when real clients are built, so tests drive `run` with
stand-ins.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from shared.scoring.documents import utc_iso
from tools.redrive_clients import sdk_container, sdk_producer
from tools.redrive_plan import PlannedBatch, Redrive, iso_utc, plan, select_query
from tools.redrive_types import (
    COSMOS_CONNECTION_ENV,
    EVENT_HUB_CONNECTION_ENV,
    BatchLike,
    ClosableContainer,
    ContainerLike,
    ProducerLike,
    StoreError,
)
from tools.send_events import NAMESPACE_ENV, SendError

logger = logging.getLogger(__name__)

DEFAULT_DATABASE: Final = "fraud"
DEFAULT_CONTAINER: Final = "rejected"
DEFAULT_PAGE_SIZE: Final = 200
"""Documents read, planned and sent at a time: bounds memory whatever the backlog (a document can hold
a body of up to 1 MiB, so a page of the largest is a few hundred MB)."""


# ---- pure: query, decoding, planning -----------------------------------------------------------------


# ---- running: read, send, delete ---------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What to re-drive and how; `until` None means "when the run starts"."""

    reasons: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    dry_run: bool = False
    delete_sent: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    max_batch_bytes: int | None = None
    """Batch ceiling passed to `create_batch`; None for the SDK's (the link's maximum)."""


@dataclass
class RedriveStats:
    """What a run did, filled in as it goes so an interrupted run can still report."""

    dry_run: bool = False
    read: int = 0
    sent: int = 0
    sent_bytes: int = 0
    batches: int = 0
    partition_keys: set[str | None] = field(default_factory=set)
    truncated: int = 0
    unreadable: int = 0
    oversized: int = 0
    labels: int = 0
    """Rejected labels (`kind: label`): they belong to POST /api/labels, not to the transactions' hub."""
    deleted: int = 0
    read_by_reason: Counter[str] = field(default_factory=Counter)
    sent_by_reason: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        """The closing line (and, when documents were left behind, why)."""
        verb = "would send" if self.dry_run else "sent"
        sent = f"{verb} {self.sent:,}"
        if self.dry_run:
            sent += f" ({self.sent_bytes:,} bytes, {len(self.partition_keys):,} partition-key groups)"
        else:
            sent += f" in {self.batches:,} batches"
        parts = [f"read {self.read:,}", sent, f"skipped {self.truncated:,} (truncated)"]
        if self.unreadable:
            parts.append(f"unreadable {self.unreadable:,}")
        if self.oversized:
            parts.append(f"too large for a batch {self.oversized:,}")
        if self.labels:
            parts.append(f"labels left for POST /api/labels {self.labels:,}")
        parts.append(f"deleted {self.deleted:,}")
        reasons = ", ".join(f"{r} {self.sent_by_reason[r]:,} of {n:,}" for r, n in sorted(self.read_by_reason.items()))
        head = "dry run: " if self.dry_run else ""
        line = f"{head}{', '.join(parts)}; by reason ({verb} of read): {reasons or '-'}"
        lines = [line]
        if self.truncated:
            lines.append(
                f"truncated: {self.truncated:,} cannot be re-driven whole (the body was cut when stored); "
                "left in the container"
            )
        return "\n".join(lines)


class _Sender:
    """Fills SDK batches from one planned batch, sends each when full, and deletes what it sent."""

    def __init__(
        self,
        producer: ProducerLike,
        container: ContainerLike,
        options: Options,
        make_event: Callable[[bytes], Any],
        stats: RedriveStats,
    ) -> None:
        self._producer = producer
        self._container = container
        self._options = options
        self._make_event = make_event
        self._stats = stats

    def _new(self, key: str | None) -> BatchLike:
        return self._producer.create_batch(partition_key=key, max_size_in_bytes=self._options.max_batch_bytes)

    def _flush(self, batch: BatchLike, items: list[Redrive]) -> None:
        self._producer.send_batch(batch)  # SendError propagates: nothing of this batch is deleted
        self._stats.batches += 1
        self._stats.sent += len(items)
        self._stats.sent_by_reason.update(item.reason for item in items)
        if self._options.delete_sent:
            for item in items:
                self._container.delete_item(item=item.doc_id, partition_key=item.doc_id)
                self._stats.deleted += 1

    def _add(self, batch: BatchLike, item: Redrive) -> bool:
        try:
            batch.add(self._make_event(item.body))
        except ValueError:  # the SDK's "batch is full"
            return False
        return True

    def send(self, planned: PlannedBatch) -> None:
        batch = self._new(planned.partition_key)
        in_batch: list[Redrive] = []
        for item in planned.items:
            if not self._add(batch, item):
                if in_batch:
                    self._flush(batch, in_batch)
                    batch, in_batch = self._new(planned.partition_key), []
                if not self._add(batch, item):
                    logger.warning("%s: a %d-byte body fits no batch; skipped", item.doc_id, len(item.body))
                    self._stats.oversized += 1
                    continue
            in_batch.append(item)
        if in_batch:
            self._flush(batch, in_batch)


def run(
    container: ContainerLike,
    producer: ProducerLike | None,
    options: Options,
    *,
    make_event: Callable[[bytes], Any] = bytes,
    stats: RedriveStats | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RedriveStats:
    """Read the chosen rejected documents page by page and re-send their bodies (or, dry, count them).

    `SendError` and `StoreError` propagate; `stats` holds what was done before them.
    """
    stats = stats if stats is not None else RedriveStats()
    stats.dry_run = options.dry_run
    if producer is None and not options.dry_run:
        raise ValueError("a producer is needed unless this is a dry run")
    until = options.until if options.until is not None else utc_iso(now())
    query, parameters = select_query(options.reasons, options.fields, options.since, until)
    logger.info("query: %s", query)
    docs = container.query_items(
        query, parameters=parameters, enable_cross_partition_query=True, max_item_count=options.page_size
    )
    sender = None if producer is None else _Sender(producer, container, options, make_event, stats)
    for page in itertools.batched(docs, options.page_size, strict=False):
        stats.read += len(page)
        stats.read_by_reason.update(str(doc.get("reason")) for doc in page)
        # A rejected label re-sent to the transactions' hub would be rejected again there, as not a
        # transaction: labels are fixed and re-posted to POST /api/labels, so they stay where they are.
        transactions = [doc for doc in page if doc.get("kind") != "label"]
        stats.labels += len(page) - len(transactions)
        planned = plan(transactions)
        stats.truncated += len(planned.truncated)
        stats.unreadable += len(planned.unreadable)
        for doc_id in planned.truncated:
            logger.warning("%s: body truncated when rejected; cannot be re-driven whole, left in place", doc_id)
        for doc_id, why in planned.unreadable:
            logger.warning("%s: %s; left in place", doc_id, why)
        if options.dry_run or sender is None:
            items = planned.items
            stats.sent += len(items)
            stats.sent_bytes += sum(len(item.body) for item in items)
            stats.sent_by_reason.update(item.reason for item in items)
            stats.partition_keys.update(batch.partition_key for batch in planned.batches)
            continue
        for batch in planned.batches:
            sender.send(batch)
    return stats


# ---- the real clients (azure-cosmos, azure-eventhub, azure-identity), imported only here -------------


# ---- the command line --------------------------------------------------------------------------------


def _since(text: str) -> str:
    try:
        return iso_utc(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None


def parser() -> argparse.ArgumentParser:
    """Command-line options; defaults come from the same environment names the app uses."""
    p = argparse.ArgumentParser(prog="python -m tools.redrive", description=(__doc__ or "").splitlines()[0])
    source = p.add_argument_group("rejected documents (--endpoint, else $CosmosDBConnection)")
    source.add_argument("--endpoint", help="https://<account>.documents.azure.com:443/, with DefaultAzureCredential")
    source.add_argument(
        "--database", default=os.environ.get("COSMOS_DATABASE") or DEFAULT_DATABASE, help="(default %(default)s)"
    )
    source.add_argument(
        "--container",
        default=os.environ.get("COSMOS_REJECTED_CONTAINER") or DEFAULT_CONTAINER,
        help="(default %(default)s)",
    )
    source.add_argument("--reason", action="append", default=None, help="re-drive this reason (repeatable; any of)")
    source.add_argument("--field", action="append", default=None, help="re-drive this field (repeatable; any of)")
    source.add_argument("--since", type=_since, help="rejected at or after this ISO 8601 time (UTC if no zone)")
    source.add_argument(
        "--page-size",
        type=int,
        default=DEFAULT_PAGE_SIZE,
        help="documents read and sent at a time (default %(default)s)",
    )
    target = p.add_argument_group(f"destination (--namespace, else ${EVENT_HUB_CONNECTION_ENV}, else ${NAMESPACE_ENV})")
    target.add_argument("--namespace", help="<namespace>.servicebus.windows.net, with DefaultAzureCredential")
    target.add_argument(
        "--event-hub",
        default=os.environ.get("EVENT_HUB_NAME", "transactions"),
        help="event hub name (default %(default)s)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would be sent; send and delete nothing")
    p.add_argument("--delete-sent", action="store_true", help="delete each document once its batch was sent")
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    container_factory: Callable[[argparse.Namespace], ClosableContainer] = sdk_container,
    producer_factory: Callable[[argparse.Namespace], tuple[ProducerLike, Callable[[bytes], Any]]] = sdk_producer,
    out: TextIO = sys.stdout,
) -> int:
    """Parse arguments, re-drive, print the summary; 0 when the run completed, 1 when a send or the store failed."""
    p = parser()
    args = p.parse_args(argv)
    if not (args.endpoint or os.environ.get(COSMOS_CONNECTION_ENV)):
        p.error(f"give --endpoint, or a connection string in ${COSMOS_CONNECTION_ENV}")
    has_destination = args.namespace or os.environ.get(EVENT_HUB_CONNECTION_ENV) or os.environ.get(NAMESPACE_ENV)
    if not (args.dry_run or has_destination):
        p.error(f"give --namespace, or a connection string in ${EVENT_HUB_CONNECTION_ENV}")
    if args.page_size < 1:
        p.error("--page-size must be >= 1")
    options = Options(
        reasons=tuple(args.reason or ()),
        fields=tuple(args.field or ()),
        since=args.since,
        dry_run=args.dry_run,
        delete_sent=args.delete_sent,
        page_size=args.page_size,
    )
    container = container_factory(args)
    producer: ProducerLike | None = None
    stats = RedriveStats(dry_run=args.dry_run)
    code = 0
    try:
        make_event: Callable[[bytes], Any] = bytes
        if not args.dry_run:
            producer, make_event = producer_factory(args)
        run(container, producer, options, make_event=make_event, stats=stats)
    except (SendError, StoreError) as exc:
        logger.error("stopping: %s", exc)  # noqa: TRY400  # the SDK's message is the whole story
        code = 1
    except KeyboardInterrupt:
        code = 1
    finally:
        if producer is not None:
            producer.close()
        container.close()
    print(stats.summary(), file=out)
    return code


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
